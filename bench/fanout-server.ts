/**
 * The server process of the fan-out benches (fan-out, burst, rate sweep,
 * reconnect storm, many topics): one variant (patchwire, bare, better-sse or
 * probe) behind one `node:http` server on 127.0.0.1, driven by the
 * orchestrator over IPC. Not meant to be run by hand; the benches spawn it as
 *
 *   node --expose-gc --import tsx bench/fanout-server.ts <variant> [--heartbeat-ms 1000] [--listeners L] [--track-sockets] [--redis-url URL --redis-prefix P]
 *
 * What it measures, in its own process so that nothing else shares its heap
 * or its CPU accounting:
 * - memory: `global.gc()` twice, then `process.memoryUsage()`; the
 *   orchestrator subtracts the reading taken before any stream connected.
 * - CPU per broadcast: `process.cpuUsage()` (user + system, so the kernel's
 *   loopback TCP work done inside `write` counts) from just before the
 *   publish call until a `setImmediate` queued right after it. That window
 *   holds the synchronous fan-out and the work it defers to `nextTick`,
 *   microtasks and `setImmediate` (Node's HTTP writes uncork on `nextTick`),
 *   but no timer, so a heartbeat tick never lands in it.
 * - CPU over a window: raw `process.cpuUsage()` readings on request, for the
 *   idle (heartbeat-only) measurement and the rate phases.
 * - bursts (`count` publishes in one turn) and many topics (one publish per
 *   topic, in one turn or one per turn) are timed like one broadcast, from
 *   before the first publish call until a `setImmediate` queued after the
 *   last (patchwire's coalesced flush is a `setImmediate` queued during the
 *   first publish, so it runs inside the window).
 * - peak memory while a storm lasts: `process.memoryUsage()` every 20 ms,
 *   no GC.
 * - heap snapshots on request (`heap-per-stream.ts`), after two GCs.
 *
 * `--track-sockets` keeps every connection in a `Set` so that `drop` can
 * destroy them all at once (a server-side cut); it costs memory per stream,
 * so the fan-out bench, which measures memory, does not set it.
 *
 * With `--redis-url`, the patchwire handler uses the Redis broker and the
 * publish comes from another process; the CPU window then starts when the
 * payload reaches the handler's broker listener (the broker is wrapped for
 * that) and the report's `t0` is that arrival time.
 */
import http from 'node:http'
import net from 'node:net'
import { setImmediate as nextCheck } from 'node:timers/promises'
import { writeHeapSnapshot } from 'node:v8'
import type { Broker } from '../src/broker/broker.ts'
import { benchOps, streamTopic, TOPIC } from './protocol.js'
import type { BroadcastReport, ServerCommand, ServerReport } from './protocol.js'
import { RatePublisher } from './rate-publisher.js'
import type { Variant, VariantOptions } from './variants/variant.js'
import { reportToOrchestrator } from './peer.js'

const [variantName, ...rest] = process.argv.slice(2)
const heartbeatMs = Number(option('--heartbeat-ms') ?? 1000)
const redisUrl = option('--redis-url')

function option(name: string): string | undefined {
  const i = rest.indexOf(name)
  return i === -1 ? undefined : rest[i + 1]
}

const send = reportToOrchestrator<ServerReport>()

const options: VariantOptions = { heartbeatMs }
let arrivals = 0
let lastSeq = 0
const rate = new RatePublisher()
const sockets = rest.includes('--track-sockets') ? new Set<net.Socket>() : undefined
let memoryWatch: { timer: NodeJS.Timeout; rss: number; heapUsed: number; external: number; samples: number } | undefined
if (redisUrl !== undefined) options.broker = timedBroker(await redisBroker(redisUrl, option('--redis-prefix') ?? 'bench:'))

const variant = await loadVariant(variantName ?? '', options)
const server = http.createServer((req, res) => variant.handle(req, res))
// Extra listening ports feed the same HTTP server: Linux's connect() finds
// ephemeral ports slowly once one destination holds half the range, so the
// orchestrator asks for one port per ~12 000 streams.
const extra = Array.from({ length: Number(option('--listeners') ?? 1) - 1 }, () => net.createServer((socket) => server.emit('connection', socket)))
if (sockets !== undefined) {
  for (const listener of [server, ...extra]) {
    listener.on('connection', (socket: net.Socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
  }
}
const ports = await Promise.all([server, ...extra].map(listen))
send({ type: 'listening', ports })

process.on('message', (command: ServerCommand) => {
  switch (command.type) {
    case 'memory':
      void memory()
      break
    case 'broadcast':
      broadcast(command.seq)
      break
    case 'burst':
      burst(command.seq, command.count)
      break
    case 'topics':
      void topics(command.seq, command.topics, command.spread)
      break
    case 'rate':
      rate.start(command.firstSeq, command.rate, command.durationMs, publishSeq, send)
      break
    case 'stop-rate':
      rate.stop()
      break
    case 'drop':
      drop()
      break
    case 'position':
      void position()
      break
    case 'watch-memory':
      watchMemory(command.on)
      break
    case 'heap-snapshot':
      void heapSnapshot(command.path)
      break
    case 'cpu': {
      const usage = process.cpuUsage()
      send({ type: 'cpu', cpuUs: usage.user + usage.system, t: process.hrtime.bigint() })
      break
    }
    case 'streams':
      send({ type: 'streams', count: variant.streams() })
      break
  }
})

function listen(listener: net.Server): Promise<number> {
  return new Promise((resolve) => {
    listener.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
      const address = listener.address()
      if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
      resolve(address.port)
    })
  })
}

function broadcast(seq: number): void {
  const ops = benchOps(seq)
  const cpu = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  variant.publish(TOPIC, ops)
  lastSeq = seq
  setImmediate(() => send(fanOutReport(seq, t0, cpu)))
}

/** `count` publishes in one turn; the report carries the last seq, the one whose delivery ends the burst. */
function burst(seq: number, count: number): void {
  const ops = Array.from({ length: count }, (_, i) => benchOps(seq + i))
  const cpu = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (const op of ops) variant.publish(TOPIC, op)
  lastSeq = seq + count - 1
  setImmediate(() => send(fanOutReport(lastSeq, t0, cpu)))
}

/** One publish on each of `count` topics: all in this turn, or one per turn (each its own flush). */
async function topics(seq: number, count: number, spread: boolean): Promise<void> {
  const ops = benchOps(seq)
  const names = Array.from({ length: count }, (_, i) => streamTopic(i))
  const cpu = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  if (spread) {
    for (const name of names) {
      variant.publish(name, ops)
      await nextCheck()
    }
  } else {
    for (const name of names) variant.publish(name, ops)
  }
  setImmediate(() => send(fanOutReport(seq, t0, cpu)))
}

function publishSeq(seq: number): void {
  variant.publish(TOPIC, benchOps(seq))
  lastSeq = seq
}

function drop(): void {
  if (sockets === undefined) throw new Error('drop needs --track-sockets')
  const t = process.hrtime.bigint()
  const count = sockets.size
  for (const socket of sockets) socket.destroy()
  send({ type: 'dropped', t, sockets: count, seq: lastSeq })
}

async function position(): Promise<void> {
  if (variant.position === undefined) throw new Error('this variant has no position')
  send({ type: 'position', id: await variant.position(TOPIC) })
}

function watchMemory(on: boolean): void {
  if (on) {
    clearInterval(memoryWatch?.timer)
    const watch = { timer: setInterval(() => sample(watch), 20), rss: 0, heapUsed: 0, external: 0, samples: 0 }
    sample(watch)
    memoryWatch = watch
    return
  }
  if (memoryWatch === undefined) return
  clearInterval(memoryWatch.timer)
  sample(memoryWatch)
  const { rss, heapUsed, external, samples } = memoryWatch
  memoryWatch = undefined
  send({ type: 'memory-peak', rss, heapUsed, external, samples })
}

function sample(watch: NonNullable<typeof memoryWatch>): void {
  const m = process.memoryUsage()
  watch.rss = Math.max(watch.rss, m.rss)
  watch.heapUsed = Math.max(watch.heapUsed, m.heapUsed)
  watch.external = Math.max(watch.external, m.external)
  watch.samples++
}

function fanOutReport(seq: number, t0: bigint, cpu: NodeJS.CpuUsage): BroadcastReport {
  const used = process.cpuUsage(cpu)
  return { type: 'broadcast', seq, t0, cpuUs: used.user + used.system, wallUs: Number(process.hrtime.bigint() - t0) / 1000 }
}

async function heapSnapshot(path: string): Promise<void> {
  const collect = gc as () => void
  collect()
  await nextCheck()
  collect()
  send({ type: 'heap-snapshot', path: writeHeapSnapshot(path) })
}

async function memory(): Promise<void> {
  if (typeof gc !== 'function') throw new Error('run the server with --expose-gc')
  // Two collections a tick apart: the first one's weak callbacks and
  // finalizers free more on the second.
  gc()
  await nextCheck()
  gc()
  const m = process.memoryUsage()
  send({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })
}

async function loadVariant(name: string, variantOptions: VariantOptions): Promise<Variant> {
  switch (name) {
    case 'patchwire':
      return (await import('./variants/patchwire.js')).createPatchwireVariant(variantOptions)
    case 'patchwire-attached':
      // Opt-in: patchwire with its streams left on node:http, the fallback
      // of src/http/detach.ts and the path before it, measured in the same run.
      ;(await import('../src/http/detach.js')).setDetaching(false)
      return (await import('./variants/patchwire.js')).createPatchwireVariant(variantOptions)
    case 'bare':
      return (await import('./variants/bare.js')).createBareVariant(variantOptions)
    case 'better-sse':
      return (await import('./variants/better-sse.js')).createBetterSseVariant(variantOptions)
    case 'probe':
      return (await import('./variants/probe.js')).createProbeVariant(variantOptions)
    default:
      throw new Error(`unknown variant "${name}"`)
  }
}

/**
 * Wraps a broker so that each payload's fan-out (the handler's listener) is
 * timed like an in-process broadcast and reported.
 */
function timedBroker(inner: Broker): Broker {
  const timed: Broker = {
    publish: (topic, payload) => inner.publish(topic, payload),
    subscribe(topic, listener, onGap) {
      return inner.subscribe(
        topic,
        (payload, id) => {
          const cpu = process.cpuUsage()
          const t0 = process.hrtime.bigint()
          listener(payload, id)
          const seq = ++arrivals
          setImmediate(() => send(fanOutReport(seq, t0, cpu)))
        },
        onGap,
      )
    },
  }
  // The history capability passes through: the handler takes the broker's ids only when both are there.
  if (inner.position !== undefined) timed.position = inner.position.bind(inner)
  if (inner.replay !== undefined) timed.replay = inner.replay.bind(inner)
  return timed
}

async function redisBroker(url: string, prefix: string): Promise<Broker> {
  const { createClient } = await import('redis')
  const publisher = createClient({ url })
  const subscriber = publisher.duplicate()
  await Promise.all([publisher.connect(), subscriber.connect()])
  const { createRedisBroker } = await import('../src/adapters/redis/index.ts')
  return createRedisBroker({ publisher, subscriber, prefix })
}

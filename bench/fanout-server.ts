/**
 * The server process of the fan-out bench: one variant (patchwire, bare,
 * better-sse or probe) behind one `node:http` server on 127.0.0.1, driven by
 * the orchestrator over IPC. Not meant to be run by hand; `npm run bench`
 * spawns it as
 *
 *   node --expose-gc --import tsx bench/fanout-server.ts <variant> [--heartbeat-ms 1000] [--listeners L] [--redis-url URL --redis-prefix P]
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
 *   idle (heartbeat-only) measurement.
 *
 * With `--redis-url`, the patchwire handler uses the Redis broker and the
 * publish comes from another process; the CPU window then starts when the
 * payload reaches the handler's broker listener (the broker is wrapped for
 * that) and the report's `t0` is that arrival time.
 */
import http from 'node:http'
import net from 'node:net'
import { setImmediate as nextCheck } from 'node:timers/promises'
import type { Broker } from '../src/broker/broker.ts'
import { benchOps, TOPIC } from './protocol.js'
import type { BroadcastReport, ServerCommand, ServerReport } from './protocol.js'
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

const options: VariantOptions = { heartbeatMs, topic: TOPIC }
let arrivals = 0
if (redisUrl !== undefined) options.broker = timedBroker(await redisBroker(redisUrl, option('--redis-prefix') ?? 'bench:'))

const variant = await loadVariant(variantName ?? '', options)
const server = http.createServer((req, res) => variant.handle(req, res))
// Extra listening ports feed the same HTTP server: Linux's connect() finds
// ephemeral ports slowly once one destination holds half the range, so the
// orchestrator asks for one port per ~12 000 streams.
const extra = Array.from({ length: Number(option('--listeners') ?? 1) - 1 }, () => net.createServer((socket) => server.emit('connection', socket)))
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
  variant.broadcast(ops)
  setImmediate(() => send(fanOutReport(seq, t0, cpu)))
}

function fanOutReport(seq: number, t0: bigint, cpu: NodeJS.CpuUsage): BroadcastReport {
  const used = process.cpuUsage(cpu)
  return { type: 'broadcast', seq, t0, cpuUs: used.user + used.system, wallUs: Number(process.hrtime.bigint() - t0) / 1000 }
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
  return {
    publish: (topic, payload) => inner.publish(topic, payload),
    subscribe(topic, listener, onGap) {
      return inner.subscribe(
        topic,
        (payload) => {
          const cpu = process.cpuUsage()
          const t0 = process.hrtime.bigint()
          listener(payload)
          const seq = ++arrivals
          setImmediate(() => send(fanOutReport(seq, t0, cpu)))
        },
        onGap,
      )
    },
  }
}

async function redisBroker(url: string, prefix: string): Promise<Broker> {
  const { createClient } = await import('redis')
  const publisher = createClient({ url })
  const subscriber = publisher.duplicate()
  await Promise.all([publisher.connect(), subscriber.connect()])
  const { createRedisBroker } = await import('../src/adapters/redis/index.ts')
  return createRedisBroker({ publisher, subscriber, prefix })
}

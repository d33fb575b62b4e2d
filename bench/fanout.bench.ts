/**
 * Connection fan-out benchmark: how many idle SSE streams one process holds,
 * and what one publish to all of them costs, for patchwire and for the
 * alternatives, side by side.
 *
 * Run:
 *   npm run bench                                  # default matrix, N = 1000, 5000, 15000, two rounds
 *   npm run bench -- --quick                       # development: small N, one round
 *   npm run bench -- --n 1000,5000 --variants bare,probe --rounds 1
 *   npm run bench -- --processes 2 --variants patchwire-redis --n 30000
 *
 * Variants, each in its own server process (`fanout-server.ts`):
 * - patchwire: `createHandler` + `publish`.
 * - bare: `node:http`, a `Set` of responses, one `setInterval`, `res.write`
 *   of one prebuilt string (the baseline of every ratio).
 * - better-sse: one `Channel`, `channel.broadcast`, default options.
 * - probe: one `socket.write` of one prebuilt `Buffer` per stream, no HTTP
 *   chunk framing (the ceiling of Node here).
 * - patchwire-redis (with `--processes K`): K patchwire servers behind the
 *   Redis broker, published to from a separate process, streams spread over
 *   the K servers.
 * Every variant uses a 1 s heartbeat and sends the same ops; the order is
 * alternated (A B C D A B C D) within one invocation so that machine drift
 * hits every variant alike.
 *
 * Method, per variant and N:
 * 1. Spawn the server (`node --expose-gc`) and the load clients
 *    (`load-client.ts`, raw `node:net`, ≤ 19 000 streams each). Server memory
 *    after two GCs is read before any stream connects.
 * 2. Connect N streams (at most 256 unanswered at a time). Connect rate = N /
 *    time from the first connect to the last status line.
 * 3. Five warm-up broadcasts (JIT, lazy per-stream buffers), then memory
 *    again after two GCs: (after − before) / N is RSS and heap per stream.
 * 4. 20 measured broadcasts, one at a time, each after the previous reached
 *    every stream plus a 20–50 ms random gap (so that broadcasts do not
 *    phase-lock with the heartbeat).
 *    - Latency: the server reads `process.hrtime.bigint()` just before the
 *      publish call; each client reads it when the broadcast reaches its
 *      last stream. On Linux both are CLOCK_MONOTONIC, one clock for every
 *      process of the machine, so the difference needs no clock sync and no
 *      round trip; the largest last-arrival over the clients is the
 *      broadcast's last delivery. (`performance.timeOrigin` is wall-clock
 *      based and may step; it is not used.)
 *    - CPU: `process.cpuUsage()` in the server, user + system, from before
 *      the publish call until a `setImmediate` queued right after it: the
 *      synchronous fan-out plus the work it defers to `nextTick`,
 *      microtasks and `setImmediate` (where Node's HTTP writes uncork), but
 *      never a timer, so heartbeat ticks stay out. Work a library defers to
 *      a timer would be missed: the JSON also keeps all server CPU over the
 *      measured phase divided by the broadcast count, heartbeats included.
 * 5. Idle: after 1.5 heartbeat intervals without broadcasts, server CPU
 *    between two heartbeats seen on the first stream, 4 ticks apart (the
 *    server answers after finishing the tick it is in, so the window holds
 *    whole ticks), as CPU ms per wall second.
 * 6. Kill the server, then the clients.
 * Statistics pool the rounds: median (and max) over all measured broadcasts,
 * mean of the per-round memory, connect and idle figures.
 *
 * Output: progress on stderr; the Markdown table, with ratios against bare
 * and the issue's targets, on stdout and in `bench/results/latest.md`; every
 * sample in `bench/results/latest.json`; the chart in `bench/results/fanout.svg`
 * and, for the default matrix, in `bench/fanout.svg`. Never run by `npm test`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { chartPanels, checkTargets, markdownTable, markdownTargets, summarise } from './fanout-report.js'
import type { BroadcastSample, MemorySample, RunResult } from './fanout-report.js'
import { killAllPeers, Peer } from './peer.js'
import type { ClientCommand, ClientReport, ClientTarget, PublisherCommand, PublisherReport, ServerCommand, ServerReport } from './protocol.js'
import { renderChart } from './svg-chart.js'
import { VARIANT_NAMES } from './variants/variant.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const RESULTS = join(HERE, 'results')
const MAX_STREAMS_PER_PROCESS = 19_000
const CONNECT_CONCURRENCY = 256
const WARMUP_BROADCASTS = 5
const TIMEOUT_MS = 30_000
/** ephemeral ports left to the rest of the machine */
const PORT_MARGIN = 2048

type Server = Peer<ServerCommand, ServerReport>
type Client = Peer<ClientCommand, ClientReport>
type Publisher = Peer<PublisherCommand, PublisherReport>

const { values: args } = parseArgs({
  options: {
    n: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    broadcasts: { type: 'string', default: '20' },
    variants: { type: 'string' },
    processes: { type: 'string' },
    'heartbeat-ms': { type: 'string', default: '1000' },
    'idle-ticks': { type: 'string' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
  },
})

const quick = args.quick === true
const ns = parseList(args.n ?? (quick ? '250,1000' : '1000,5000,15000'), '--n')
const rounds = positive(args.rounds ?? (quick ? '1' : '2'), '--rounds')
const broadcasts = positive(args.broadcasts, '--broadcasts')
const heartbeatMs = positive(args['heartbeat-ms'], '--heartbeat-ms')
const idleTicks = positive(args['idle-ticks'] ?? (quick ? '2' : '4'), '--idle-ticks')
const processes = args.processes === undefined ? undefined : positive(args.processes, '--processes')
const redisUrl = args['redis-url']
const allVariants: string[] = [...VARIANT_NAMES, ...(processes === undefined ? [] : ['patchwire-redis'])]
const variants = args.variants === undefined ? allVariants : args.variants.split(',')
for (const v of variants) if (!allVariants.includes(v)) usage(`unknown variant "${v}" (known: ${allVariants.join(', ')}${processes === undefined ? '; patchwire-redis needs --processes K' : ''})`)
const isDefaultMatrix = args.n === undefined && !quick && args.variants === undefined && args.rounds === undefined && processes === undefined

process.on('exit', killAllPeers)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

const machine = {
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
  kernel: os.release(),
  node: process.version,
}
const ephemeralPorts = readEphemeralPortCount()
const started = performance.now()
const runs: RunResult[] = []
let progressWidth = 0

progress(`fan-out bench: N = ${ns.join(', ')}; ${rounds} round(s); variants ${variants.join(', ')}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}`, true)
for (const n of ns) {
  for (let round = 1; round <= rounds; round++) {
    for (const variant of variants) {
      const servers = variant === 'patchwire-redis' ? (processes ?? 1) : 1
      const result: RunResult = { variant, n, round, servers, clients: Math.ceil(n / MAX_STREAMS_PER_PROCESS), broadcasts: [], lost: 0 }
      runs.push(result)
      if (Math.ceil(n / servers) > MAX_STREAMS_PER_PROCESS) {
        result.error = `${Math.ceil(n / servers)} streams per server process exceed the ${MAX_STREAMS_PER_PROCESS} cap`
      } else {
        const runStarted = performance.now()
        try {
          await run(result, `N=${n} ${variant} (round ${round}/${rounds})`)
          progress(`N=${n} ${variant} r${round}: ${oneLine(result)}`, true)
        } catch (error) {
          result.error = (error as Error).message
        }
        result.elapsedS = (performance.now() - runStarted) / 1000
      }
      if (result.error !== undefined) progress(`N=${n} ${variant} r${round}: FAILED: ${result.error}`, true)
      writeResults(false)
    }
  }
}
writeResults(true)
progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`, true)
process.exit(0)

async function run(result: RunResult, label: string): Promise<void> {
  const { variant, n, servers: serverCount } = result
  const redis = variant === 'patchwire-redis'
  const prefix = `bench:${process.pid}:${runs.length}:`
  const servers: Server[] = []
  const clients: Client[] = []
  let publisher: Publisher | undefined
  let tearingDown = false
  try {
    for (let i = 0; i < serverCount; i++) {
      const extra = redis ? ['--redis-url', redisUrl, '--redis-prefix', prefix] : []
      servers.push(new Peer(`server ${variant}#${i}`, ['--expose-gc', '--import', 'tsx', join(HERE, 'fanout-server.ts'), redis ? 'patchwire' : variant, '--heartbeat-ms', String(heartbeatMs), '--listeners', String(listenersFor(evenShare(n, serverCount, i))), ...extra]))
    }
    for (let i = 0; i < result.clients; i++) clients.push(new Peer(`client #${i}`, ['--import', 'tsx', join(HERE, 'load-client.ts')]))
    if (redis) publisher = new Peer('publisher', ['--import', 'tsx', join(HERE, 'fanout-publisher.ts'), '--redis-url', redisUrl, '--redis-prefix', prefix])
    // Streams the server closes while the run lasts; teardown closes them all.
    for (const c of clients) c.on('lost', (r) => {
      if (!tearingDown && r.type === 'lost') result.lost = Math.max(result.lost, r.count)
    })

    const ports = await Promise.all(servers.map(async (s) => (await s.next('listening', TIMEOUT_MS)).ports))
    if (publisher !== undefined) await publisher.next('ready', TIMEOUT_MS)
    const before = await memory(servers)

    // Connect.
    const established = clients.map(() => 0)
    const timeline: Array<[number, number]> = []
    const connectStart = performance.now()
    clients.forEach((c, i) => c.on('progress', (r) => {
      established[i] = r.type === 'progress' ? r.established : 0
      timeline.push([Math.round(performance.now() - connectStart), sum(established)])
      progress(`${label}: connecting ${sum(established)}/${n}`)
    }))
    const plan = connectPlan(n, ports, clients.length)
    plan.forEach((p, i) => clients[i]?.send({ type: 'start', ...p, concurrency: CONNECT_CONCURRENCY }))
    const connected = await Promise.all(clients.map((c) => c.next('connected', TIMEOUT_MS + n * 10)))
    const connectMs = Math.max(...connected.map((c) => c.ms))
    result.connect = { ms: connectMs, perSecond: (n / connectMs) * 1000, timeline }
    await waitForStreams(servers, n)

    // Warm up, then memory per idle stream.
    let seq = 0
    for (let i = 0; i < WARMUP_BROADCASTS; i++) {
      progress(`${label}: warm-up ${i + 1}/${WARMUP_BROADCASTS}`)
      result.broadcasts.push(await broadcast(servers, clients, publisher, ++seq, true))
    }
    await sleep(200)
    const after = await memory(servers)
    result.memory = {
      before,
      after,
      rssPerStream: (after.rss - before.rss) / n,
      heapPerStream: (after.heapUsed - before.heapUsed) / n,
      externalPerStream: (after.external - before.external) / n,
    }

    // Measured broadcasts.
    const phaseStart = await cpu(servers)
    for (let i = 0; i < broadcasts; i++) {
      progress(`${label}: broadcast ${i + 1}/${broadcasts}`)
      result.broadcasts.push(await broadcast(servers, clients, publisher, ++seq, false))
      await sleep(20 + Math.random() * 30)
    }
    const phaseEnd = await cpu(servers)
    result.phaseCpuPerBroadcastUs = (phaseEnd.cpuUs - phaseStart.cpuUs) / broadcasts

    // Idle heartbeats.
    progress(`${label}: idle window`)
    await sleep(heartbeatMs * 1.5)
    result.idle = await idleWindow(servers, clients[0] as Client)
    if (result.lost > 0) throw new Error(`the server closed ${result.lost} streams during the run`)
  } finally {
    tearingDown = true
    await Promise.all([...servers, ...(publisher === undefined ? [] : [publisher])].map((p) => p.kill()))
    await Promise.all(clients.map((c) => c.kill()))
  }
}

async function broadcast(servers: Server[], clients: Client[], publisher: Publisher | undefined, seq: number, warmup: boolean): Promise<BroadcastSample> {
  const delivered = Promise.all(clients.map((c) => c.next('delivered', TIMEOUT_MS, (r) => r.seq === seq)))
  const fannedOut = Promise.all(servers.map((s) => s.next('broadcast', TIMEOUT_MS, (r) => r.seq === seq)))
  let published: Promise<bigint>
  if (publisher === undefined) {
    servers[0]?.send({ type: 'broadcast', seq })
    published = fannedOut.then((reports) => reports[0]?.t0 ?? 0n)
  } else {
    publisher.send({ type: 'broadcast', seq })
    published = publisher.next('published', TIMEOUT_MS, (r) => r.seq === seq).then((r) => r.t0)
  }
  const [deliveries, fanOuts, t0] = await Promise.all([delivered, fannedOut, published])
  const first = deliveries.reduce((min, d) => (d.first < min ? d.first : min), deliveries[0]?.first ?? 0n)
  const last = deliveries.reduce((max, d) => (d.last > max ? d.last : max), 0n)
  return { seq, warmup, cpuUs: sum(fanOuts.map((f) => f.cpuUs)), fanOutMs: Math.max(...fanOuts.map((f) => f.wallUs)) / 1000, firstMs: Number(first - t0) / 1e6, lastMs: Number(last - t0) / 1e6 }
}

async function idleWindow(servers: Server[], client: Client): Promise<NonNullable<RunResult['idle']>> {
  let beats = 0
  let onBeat: (() => void) | undefined
  client.on('heartbeat', () => {
    beats++
    onBeat?.()
  })
  const beat = (count: number, timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (beats >= count) return resolve(true)
      const timer = setTimeout(() => resolve(false), timeoutMs)
      onBeat = () => {
        if (beats < count) return
        clearTimeout(timer)
        resolve(true)
      }
    })
  client.send({ type: 'watch-heartbeats', on: true })
  let aligned = await beat(1, heartbeatMs * 3)
  const start = await cpu(servers)
  const startBeats = beats
  aligned = (await beat(startBeats + idleTicks, heartbeatMs * (idleTicks + 2))) && aligned
  // Without heartbeats on the first stream, fall back to a fixed window.
  if (!aligned) await sleep(Math.max(0, heartbeatMs * idleTicks - Number(process.hrtime.bigint() - start.t) / 1e6))
  const end = await cpu(servers)
  client.send({ type: 'watch-heartbeats', on: false })
  const cpuUs = end.cpuUs - start.cpuUs
  const wallMs = Number(end.t - start.t) / 1e6
  return { cpuUs, wallMs, ticks: beats - startBeats, alignedOnHeartbeats: aligned, cpuMsPerSecond: cpuUs / wallMs }
}

async function memory(servers: Server[]): Promise<MemorySample> {
  const readings = await Promise.all(
    servers.map((s) => {
      s.send({ type: 'memory' })
      return s.next('memory', TIMEOUT_MS)
    }),
  )
  return {
    rss: sum(readings.map((r) => r.rss)),
    heapUsed: sum(readings.map((r) => r.heapUsed)),
    heapTotal: sum(readings.map((r) => r.heapTotal)),
    external: sum(readings.map((r) => r.external)),
    arrayBuffers: sum(readings.map((r) => r.arrayBuffers)),
  }
}

async function cpu(servers: Server[]): Promise<{ cpuUs: number; t: bigint }> {
  const readings = await Promise.all(
    servers.map((s) => {
      s.send({ type: 'cpu' })
      return s.next('cpu', TIMEOUT_MS)
    }),
  )
  return { cpuUs: sum(readings.map((r) => r.cpuUs)), t: readings.reduce((max, r) => (r.t > max ? r.t : max), 0n) }
}

async function waitForStreams(servers: Server[], n: number): Promise<void> {
  const deadline = performance.now() + TIMEOUT_MS
  for (;;) {
    const counts = await Promise.all(
      servers.map(async (s) => {
        s.send({ type: 'streams' })
        return (await s.next('streams', TIMEOUT_MS)).count
      }),
    )
    if (sum(counts) === n) return
    if (performance.now() > deadline) throw new Error(`servers hold ${sum(counts)} streams, expected ${n}`)
    await sleep(100)
  }
}

/**
 * Where each client's streams go. N is split evenly over the servers, each
 * server's share evenly over its listening ports, and the resulting
 * destinations are dealt to the clients in turn.
 */
function connectPlan(n: number, serverPorts: number[][], clientCount: number): Array<{ targets: ClientTarget[]; localAddresses: string[] }> {
  const destinations: ClientTarget[] = serverPorts.flatMap((ports, s) => {
    const share = evenShare(n, serverPorts.length, s)
    return ports.map((port, l) => ({ port, count: evenShare(share, ports.length, l) }))
  })
  let nextAddress = 2
  return Array.from({ length: clientCount }, (_, c) => {
    let want = evenShare(n, clientCount, c)
    const total = want
    const targets: ClientTarget[] = []
    for (const destination of destinations) {
      const take = Math.min(want, destination.count)
      if (take === 0) continue
      destination.count -= take
      want -= take
      targets.push({ port: destination.port, count: take })
    }
    // One source address can hold a connection per ephemeral port whatever the
    // destination; past that, the client spreads over 127.0.0.x addresses.
    const addresses = total > ephemeralPorts - PORT_MARGIN ? Math.ceil(total / (ephemeralPorts - PORT_MARGIN)) : 0
    return { targets, localAddresses: Array.from({ length: addresses }, () => `127.0.0.${nextAddress++}`) }
  })
}

/**
 * How many listening ports a server needs for its streams. Linux's connect()
 * searches the ephemeral range for a free port on one parity first (the other
 * is left to bind()); once a single destination holds that half, every
 * further connect scans it all and the rate drops five-fold, which would make
 * the client, not the server, set the connect rate.
 */
function listenersFor(streams: number): number {
  return Math.max(1, Math.ceil(streams / (Math.floor(ephemeralPorts / 2) - PORT_MARGIN)))
}

function evenShare(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0)
}

function writeResults(final: boolean): void {
  mkdirSync(RESULTS, { recursive: true })
  const summaries = summarise(runs)
  const config = { ns, rounds, broadcasts, warmup: WARMUP_BROADCASTS, heartbeatMs, idleTicks, processes, variants, connectConcurrency: CONNECT_CONCURRENCY }
  writeFileSync(join(RESULTS, 'latest.json'), `${JSON.stringify({ machine, config, complete: final, elapsedS: (performance.now() - started) / 1000, summaries, runs }, null, 2)}\n`)
  if (!final) return
  const table = markdownTable(summaries)
  const targets = markdownTargets(checkTargets(summaries))
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${table}\n\n${targets}\n\n\`${command}\`: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, ${rounds} round(s) × ${broadcasts} broadcasts per cell, ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeFileSync(join(RESULTS, 'latest.md'), markdown)
  process.stdout.write(`\n${markdown}`)
  const svg = renderChart('patchwire fan-out: one publish to N idle SSE streams', `${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, 1 s heartbeat, median of ${rounds * broadcasts} broadcasts`, chartPanels(summaries))
  writeFileSync(join(RESULTS, 'fanout.svg'), svg)
  if (isDefaultMatrix) writeFileSync(join(HERE, 'fanout.svg'), svg)
}

function oneLine(r: RunResult): string {
  const measured = r.broadcasts.filter((b) => !b.warmup)
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN
  return [
    `${Math.round(r.connect?.perSecond ?? 0)} conn/s`,
    `heap ${((r.memory?.heapPerStream ?? 0) / 1024).toFixed(2)} KiB/stream`,
    `cpu ${med(measured.map((b) => b.cpuUs / 1000)).toFixed(1)} ms/broadcast`,
    `latency p50 ${med(measured.map((b) => b.lastMs)).toFixed(1)} ms, max ${Math.max(...measured.map((b) => b.lastMs)).toFixed(1)} ms`,
    `idle ${(r.idle?.cpuMsPerSecond ?? 0).toFixed(1)} ms/s`,
  ].join(', ')
}

/** Writes a status line on stderr; a transient one is overwritten by the next, and shown only on a terminal. */
function progress(text: string, keep = false): void {
  if (!keep && !process.stderr.isTTY) return
  process.stderr.write(`\r${text.padEnd(progressWidth)}${keep ? '\n' : ''}`)
  progressWidth = keep ? 0 : text.length
}

function readEphemeralPortCount(): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low !== undefined && high !== undefined && high > low) return high - low + 1
  } catch {
    // Not Linux: assume the IANA range.
  }
  return 65535 - 49152 + 1
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

function parseList(text: string, name: string): number[] {
  return text.split(',').map((part) => positive(part, name))
}

function positive(text: string, name: string): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value <= 0) usage(`${name} takes positive integers, got "${text}"`)
  return value
}

function usage(message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}

/**
 * Connection fan-out benchmark: how many idle SSE streams one process holds,
 * and what one publish to all of them costs, for patchwire and for the
 * alternatives, side by side.
 *
 * Run:
 *   npm run bench                                  # default matrix, N = 1000, 5000, 15000, two rounds
 *   npm run bench -- --quick                       # development: small N, one round
 *   npm run bench -- --n 1000,5000 --variants bare,probe --rounds 1
 *   npm run bench -- --processes 2 --variants patchwire-redis --n 30000   # behind a private redis-server (or --redis-url URL)
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
 * The variants run in turn, each round starting one variant later.
 * Statistics pool the rounds: median (and max) over all measured broadcasts,
 * mean of the per-round memory, connect and idle figures.
 *
 * Output: progress on stderr; the Markdown table, with ratios against bare
 * and the issue's targets, on stdout and in `bench/results/latest.md`; every
 * sample in `bench/results/latest.json`; the chart in `bench/results/fanout.svg`
 * and, for the default matrix, in `bench/fanout.svg`. Never run by `npm test`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { chartPanels, checkTargets, markdownTable, markdownTargets, summarise } from './fanout-report.js'
import type { RunResult } from './fanout-report.js'
import { CONNECT_CONCURRENCY, Fleet, HERE, killChildrenOnExit, loadAverage, machine, MAX_STREAMS_PER_PROCESS, parseList, positive, progress, RESULTS, usage } from './harness.js'
import type { Client } from './harness.js'
import { startRedisServer } from '../test/helpers/redis-server.ts'
import { renderChart } from './svg-chart.js'
import { VARIANT_NAMES } from './variants/variant.js'

const WARMUP_BROADCASTS = 5

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
    'redis-url': { type: 'string' },
  },
})

const quick = args.quick === true
const ns = parseList(args.n ?? (quick ? '250,1000' : '1000,5000,15000'), '--n')
const rounds = positive(args.rounds ?? (quick ? '1' : '2'), '--rounds')
const broadcasts = positive(args.broadcasts, '--broadcasts')
const heartbeatMs = positive(args['heartbeat-ms'], '--heartbeat-ms')
const idleTicks = positive(args['idle-ticks'] ?? (quick ? '2' : '4'), '--idle-ticks')
const processes = args.processes === undefined ? undefined : positive(args.processes, '--processes')
// Behind Redis without --redis-url: a private redis-server on a free port (never a shared 6379).
const privateRedis = processes !== undefined && args['redis-url'] === undefined ? await startRedisServer() : undefined
const redisUrl = args['redis-url'] ?? privateRedis?.url ?? ''
const allVariants: string[] = [...VARIANT_NAMES, ...(processes === undefined ? [] : ['patchwire-redis'])]
// Opt-in only (not in the default matrix): streams left on node:http, for a before/after in one run.
const optInVariants = ['patchwire-attached']
const variants = args.variants === undefined ? allVariants : args.variants.split(',')
for (const v of variants) if (!allVariants.includes(v) && !optInVariants.includes(v)) usage(`unknown variant "${v}" (known: ${[...allVariants, ...optInVariants].join(', ')}${processes === undefined ? '; patchwire-redis needs --processes K' : ''})`)
const isDefaultMatrix = args.n === undefined && !quick && args.variants === undefined && args.rounds === undefined && processes === undefined

killChildrenOnExit()

const started = performance.now()
const runs: RunResult[] = []
const loadBefore = loadAverage()

progress(`fan-out bench: N = ${ns.join(', ')}; ${rounds} round(s); variants ${variants.join(', ')}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}`, true)
for (const n of ns) {
  for (let round = 1; round <= rounds; round++) {
    // The variants take turns going first: going first costs (the same
    // code measured 201 and 264 ms of CPU per broadcast when it went first
    // in every round, 168 ms when it went second), so a fixed order would
    // favour the later ones.
    for (const variant of rotate(variants, round - 1)) {
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
await privateRedis?.stop()
progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`, true)
process.exit(0)

async function run(result: RunResult, label: string): Promise<void> {
  const { variant, n, servers: serverCount } = result
  const redis = variant === 'patchwire-redis'
  const fleet = await Fleet.open({
    variant: redis ? 'patchwire' : variant,
    n,
    servers: serverCount,
    heartbeatMs,
    ...(redis ? { redisUrl, redisPrefix: `bench:${process.pid}:${runs.length}:` } : {}),
  })
  try {
    const before = await fleet.memory()
    result.connect = await fleet.connect(label)

    // Warm up, then memory per idle stream.
    let seq = 0
    for (let i = 0; i < WARMUP_BROADCASTS; i++) {
      progress(`${label}: warm-up ${i + 1}/${WARMUP_BROADCASTS}`)
      seq++
      result.broadcasts.push(await fleet.publish({ type: 'broadcast', seq }, seq, true))
    }
    await sleep(200)
    const after = await fleet.memory()
    result.memory = {
      before,
      after,
      rssPerStream: (after.rss - before.rss) / n,
      heapPerStream: (after.heapUsed - before.heapUsed) / n,
      externalPerStream: (after.external - before.external) / n,
    }

    // Measured broadcasts.
    const phaseStart = await fleet.cpu()
    for (let i = 0; i < broadcasts; i++) {
      progress(`${label}: broadcast ${i + 1}/${broadcasts}`)
      seq++
      result.broadcasts.push(await fleet.publish({ type: 'broadcast', seq }, seq, false))
      await sleep(20 + Math.random() * 30)
    }
    const phaseEnd = await fleet.cpu()
    result.phaseCpuPerBroadcastUs = (phaseEnd.cpuUs - phaseStart.cpuUs) / broadcasts

    // Idle heartbeats.
    progress(`${label}: idle window`)
    await sleep(heartbeatMs * 1.5)
    result.idle = await idleWindow(fleet, fleet.clients[0] as Client)
    result.lost = fleet.lost
    if (result.lost > 0) throw new Error(`the server closed ${result.lost} streams during the run`)
  } finally {
    await fleet.kill()
  }
}

async function idleWindow(fleet: Fleet, client: Client): Promise<NonNullable<RunResult['idle']>> {
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
  const start = await fleet.cpu()
  const startBeats = beats
  aligned = (await beat(startBeats + idleTicks, heartbeatMs * (idleTicks + 2))) && aligned
  // Without heartbeats on the first stream, fall back to a fixed window.
  if (!aligned) await sleep(Math.max(0, heartbeatMs * idleTicks - Number(process.hrtime.bigint() - start.t) / 1e6))
  const end = await fleet.cpu()
  client.send({ type: 'watch-heartbeats', on: false })
  const cpuUs = end.cpuUs - start.cpuUs
  const wallMs = Number(end.t - start.t) / 1e6
  return { cpuUs, wallMs, ticks: beats - startBeats, alignedOnHeartbeats: aligned, cpuMsPerSecond: cpuUs / wallMs }
}

function writeResults(final: boolean): void {
  mkdirSync(RESULTS, { recursive: true })
  const summaries = summarise(runs)
  const config = { ns, rounds, broadcasts, warmup: WARMUP_BROADCASTS, heartbeatMs, idleTicks, processes, variants, connectConcurrency: CONNECT_CONCURRENCY }
  writeFileSync(join(RESULTS, 'latest.json'), `${JSON.stringify({ machine, loadAverage: { before: loadBefore, now: loadAverage() }, config, complete: final, elapsedS: (performance.now() - started) / 1000, summaries, runs }, null, 2)}\n`)
  if (!final) return
  const table = markdownTable(summaries)
  const targets = markdownTargets(checkTargets(summaries))
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${table}\n\n${targets}\n\n\`${command}\`: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${rounds} round(s) × ${broadcasts} broadcasts per cell, ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
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

/** `items` starting at `by` (mod its length), the ones before it moved to the end. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

/**
 * Burst coalescing (issue 17): what 10 publishes on one topic in one
 * event-loop turn cost, against one publish, at N streams. patchwire writes
 * a topic's frames of one turn as one write per stream; the bare loop and
 * the probe write each frame to each stream. Target: patchwire's burst
 * costs ≤ 1.5× its single publish (server CPU) at N = 15 000.
 *
 * Run:
 *   npm run bench:burst                               # N = 15 000, burst of 10, patchwire, bare and probe
 *   npm run bench:burst -- --n 5000 --burst 20 --samples 6 --variants patchwire,bare,better-sse,probe
 *
 * Method, per variant (its own server process, `fanout-server.ts`, and load
 * client, `load-client.ts`, as in the fan-out bench; variants alternate
 * within a round, rounds repeat):
 * 1. Connect N streams on one topic; three single publishes and two bursts
 *    to warm up.
 * 2. `--samples` singles and `--samples` bursts, alternated (single, burst,
 *    single, …), each after the previous reached every stream plus a random
 *    20–50 ms gap. A burst is `--burst` `publish` calls in one synchronous
 *    loop in the server.
 *    - CPU: `process.cpuUsage()` in the server (user + system) from before
 *      the first publish call until a `setImmediate` queued after the last
 *      (patchwire's flush is a `setImmediate` queued by the first publish, so
 *      it falls inside the window), as in the fan-out bench.
 *    - Latency: the first publish call → the burst's last frame on the last
 *      stream (CLOCK_MONOTONIC in both processes).
 * 3. Median over the pooled samples of all rounds; ratio burst / single per
 *    variant, from the same processes and connections.
 *
 * Output: progress on stderr; the table on stdout and in
 * `bench/results/burst.md`; every sample in `bench/results/burst.json`.
 */
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BroadcastSample } from './fanout-report.js'
import { Fleet, fmt, killChildrenOnExit, loadAverage, machine, median, ms, positive, progress, times, usage, writeResults } from './harness.js'
import { VARIANT_NAMES } from './variants/variant.js'

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '15000' },
    burst: { type: 'string', default: '10' },
    samples: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    variants: { type: 'string', default: 'patchwire,bare,probe' },
    'heartbeat-ms': { type: 'string', default: '1000' },
  },
})
const n = positive(args.n, '--n')
const burst = positive(args.burst, '--burst')
const samples = positive(args.samples, '--samples')
const rounds = positive(args.rounds, '--rounds')
const heartbeatMs = positive(args['heartbeat-ms'], '--heartbeat-ms')
const variants = args.variants.split(',')
for (const v of variants) if (!(VARIANT_NAMES as readonly string[]).includes(v)) usage(`unknown variant "${v}" (known: ${VARIANT_NAMES.join(', ')})`)

killChildrenOnExit()
const loadBefore = loadAverage()
const started = performance.now()
interface Run { variant: string; round: number; single: BroadcastSample[]; burst: BroadcastSample[]; error?: string }
const runs: Run[] = []

progress(`burst bench: N = ${n}, bursts of ${burst}, ${samples} samples of each, ${rounds} round(s); ${variants.join(', ')}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}`, true)
for (let round = 1; round <= rounds; round++) {
  for (const variant of variants) {
    const run: Run = { variant, round, single: [], burst: [] }
    runs.push(run)
    try {
      await measure(run, `${variant} r${round}`)
      progress(`${variant} r${round}: single ${ms(median(run.single.map((s) => s.cpuUs / 1000)))} CPU, burst of ${burst} ${ms(median(run.burst.map((s) => s.cpuUs / 1000)))} CPU`, true)
    } catch (error) {
      run.error = (error as Error).message
      progress(`${variant} r${round}: FAILED: ${run.error}`, true)
    }
  }
}
report()
process.exit(0)

async function measure(run: Run, label: string): Promise<void> {
  const fleet = await Fleet.open({ variant: run.variant, n, heartbeatMs })
  try {
    await fleet.connect(label)
    let seq = 0
    const single = (warmup: boolean): Promise<BroadcastSample> => {
      seq++
      return fleet.publish({ type: 'broadcast', seq }, seq, warmup)
    }
    const many = (warmup: boolean): Promise<BroadcastSample> => {
      const first = seq + 1
      seq += burst
      return fleet.publish({ type: 'burst', seq: first, count: burst }, seq, warmup)
    }
    progress(`${label}: warm-up`)
    for (let i = 0; i < 3; i++) await single(true)
    for (let i = 0; i < 2; i++) await many(true)
    for (let i = 0; i < samples; i++) {
      progress(`${label}: sample ${i + 1}/${samples}`)
      await sleep(20 + Math.random() * 30)
      run.single.push(await single(false))
      await sleep(20 + Math.random() * 30)
      run.burst.push(await many(false))
    }
    if (fleet.lost > 0) throw new Error(`the server closed ${fleet.lost} streams during the run`)
  } finally {
    await fleet.kill()
  }
}

function report(): void {
  const rows = variants.map((variant) => {
    const mine = runs.filter((r) => r.variant === variant && r.error === undefined)
    const pick = (kind: 'single' | 'burst', value: (s: BroadcastSample) => number): number => median(mine.flatMap((r) => r[kind].map(value)))
    return {
      variant,
      failed: runs.filter((r) => r.variant === variant && r.error !== undefined).length,
      singleCpu: pick('single', (s) => s.cpuUs / 1000),
      burstCpu: pick('burst', (s) => s.cpuUs / 1000),
      singleLatency: pick('single', (s) => s.lastMs),
      burstLatency: pick('burst', (s) => s.lastMs),
    }
  })
  const pw = rows.find((r) => r.variant === 'patchwire')
  const ratio = pw === undefined ? NaN : pw.burstCpu / pw.singleCpu
  const table = [
    `| N | variant | CPU, 1 publish | CPU, burst of ${burst} | burst ÷ single | latency, 1 publish | latency, burst | burst ÷ single |`,
    '|---:|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${n.toLocaleString('en-US')} | ${r.variant}${r.failed > 0 ? ` (${r.failed} failed)` : ''} | ${ms(r.singleCpu)} | ${ms(r.burstCpu)} | ${times(r.burstCpu, r.singleCpu)} | ${ms(r.singleLatency)} | ${ms(r.burstLatency)} | ${times(r.burstLatency, r.singleLatency)} |`),
  ].join('\n')
  const target = `- ${Number.isNaN(ratio) ? '?' : ratio <= 1.5 ? '✅' : '❌'} a burst of ${burst} costs ${fmt(ratio, 2)}× one publish (patchwire, server CPU); target ≤ 1.5×`
  const command = `npm run bench:burst${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${table}\n\n${target}\n\n\`${command}\`: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${rounds} round(s) × ${samples} samples of each kind, ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeResults('burst', { machine, load: { before: loadBefore, after: loadAverage() }, config: { n, burst, samples, rounds, heartbeatMs, variants }, rows, runs }, markdown)
}

/**
 * Many topics (issue 17): N streams, each on its own topic, and one publish
 * per topic; the server CPU per publish against the bare loop's. Target:
 * patchwire ≤ 1.0× bare at N = 15 000. This is the per-user-topic shape
 * (dashboards, notifications), where coalescing finds nothing to merge and
 * every publish pays its own way through the broker, the history and the
 * flush.
 *
 * Run:
 *   npm run bench:topics                         # N = 15 000, patchwire, bare, better-sse, probe
 *   npm run bench:topics -- --n 5000 --samples 4 --variants patchwire,bare
 *
 * Method, per variant (its own server process and load client, as in the
 * fan-out bench; the load client opens stream i on topic `t<i>`; variants
 * alternate within a round, rounds repeat):
 * 1. Connect N streams; two sweeps of each kind to warm up.
 * 2. `--samples` sweeps of each kind, alternated, each after the previous
 *    one reached every stream plus a random 20–50 ms gap. A sweep publishes
 *    the same ops once on each of the N topics:
 *    - one turn: all N `publish` calls in one synchronous loop (a batch job,
 *      many messages in one read of a broker's socket);
 *    - spread: one `publish` per event-loop turn (`await setImmediate()`
 *      between them), so that each pays for its own flush (publishes
 *      arriving one by one).
 *    CPU: `process.cpuUsage()` in the server, user + system, from before the
 *    first publish until a `setImmediate` queued after the last, divided by
 *    N. Latency: first publish → the last stream's frame.
 * 3. Median over the pooled sweeps; ratios against bare from the same run.
 *
 * Output: progress on stderr; the table on stdout and in
 * `bench/results/topics.md`; every sweep in `bench/results/topics.json`.
 */
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BroadcastSample } from './fanout-report.js'
import { Fleet, fmt, killChildrenOnExit, loadAverage, machine, median, ms, positive, progress, times, usage, writeResults } from './harness.js'
import { VARIANT_NAMES } from './variants/variant.js'

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '15000' },
    samples: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    variants: { type: 'string', default: VARIANT_NAMES.join(',') },
    'heartbeat-ms': { type: 'string', default: '1000' },
  },
})
const n = positive(args.n, '--n')
const samples = positive(args.samples, '--samples')
const rounds = positive(args.rounds, '--rounds')
const heartbeatMs = positive(args['heartbeat-ms'], '--heartbeat-ms')
const variants = args.variants.split(',')
for (const v of variants) if (!(VARIANT_NAMES as readonly string[]).includes(v)) usage(`unknown variant "${v}" (known: ${VARIANT_NAMES.join(', ')})`)
const KINDS = ['turn', 'spread'] as const
type Kind = (typeof KINDS)[number]

interface Run { variant: string; round: number; turn: BroadcastSample[]; spread: BroadcastSample[]; error?: string }

killChildrenOnExit()
const loadBefore = loadAverage()
const started = performance.now()
const runs: Run[] = []

progress(`many topics: N = ${n} streams on ${n} topics; ${samples} sweeps of each kind, ${rounds} round(s); ${variants.join(', ')}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}`, true)
for (let round = 1; round <= rounds; round++) {
  for (const variant of variants) {
    const run: Run = { variant, round, turn: [], spread: [] }
    runs.push(run)
    try {
      await measure(run, `${variant} r${round}`)
      progress(`${variant} r${round}: ${KINDS.map((k) => `${k} ${fmt(median(run[k].map((s) => s.cpuUs / n)), 2)} µs/publish`).join(', ')}`, true)
    } catch (error) {
      run.error = (error as Error).message
      progress(`${variant} r${round}: FAILED: ${run.error}`, true)
    }
  }
}
report()
process.exit(0)

async function measure(run: Run, label: string): Promise<void> {
  const fleet = await Fleet.open({ variant: run.variant, n, heartbeatMs, topicPerStream: true })
  try {
    await fleet.connect(label)
    let seq = 0
    const sweep = (kind: Kind, warmup: boolean): Promise<BroadcastSample> => {
      seq++
      return fleet.publish({ type: 'topics', seq, topics: n, spread: kind === 'spread' }, seq, warmup, 120_000)
    }
    progress(`${label}: warm-up`)
    for (let i = 0; i < 2; i++) for (const kind of KINDS) await sweep(kind, true)
    for (let i = 0; i < samples; i++) {
      for (const kind of KINDS) {
        progress(`${label}: ${kind} ${i + 1}/${samples}`)
        await sleep(20 + Math.random() * 30)
        run[kind].push(await sweep(kind, false))
      }
    }
    if (fleet.lost > 0) throw new Error(`the server closed ${fleet.lost} streams during the run`)
  } finally {
    await fleet.kill()
  }
}

function report(): void {
  const stat = (variant: string, kind: Kind, value: (s: BroadcastSample) => number): number => median(runs.filter((r) => r.variant === variant && r.error === undefined).flatMap((r) => r[kind].map(value)))
  const cpu = (variant: string, kind: Kind): number => stat(variant, kind, (s) => s.cpuUs / n)
  const lines = [
    '| N topics | variant | CPU per publish, one turn | ×bare | CPU per publish, spread | ×bare | sweep latency, one turn | sweep latency, spread |',
    '|---:|---|---:|---:|---:|---:|---:|---:|',
    ...variants.map((v) => {
      const failed = runs.filter((r) => r.variant === v && r.error !== undefined).length
      return `| ${n.toLocaleString('en-US')} | ${v}${failed > 0 ? ` (${failed} failed)` : ''} | ${fmt(cpu(v, 'turn'), 2)} µs | ${times(cpu(v, 'turn'), cpu('bare', 'turn'))} | ${fmt(cpu(v, 'spread'), 2)} µs | ${times(cpu(v, 'spread'), cpu('bare', 'spread'))} | ${ms(stat(v, 'turn', (s) => s.lastMs))} | ${ms(stat(v, 'spread', (s) => s.lastMs))} |`
    }),
  ]
  const checks = KINDS.map((kind) => {
    const r = cpu('patchwire', kind) / cpu('bare', kind)
    return `- ${Number.isNaN(r) ? '?' : r <= 1.0 ? '✅' : '❌'} patchwire CPU per publish, ${kind === 'turn' ? 'all in one turn' : 'one per turn'}: ${fmt(r, 2)}× bare (${fmt(cpu('patchwire', kind), 2)} vs ${fmt(cpu('bare', kind), 2)} µs); target ≤ 1.0×`
  })
  const command = `npm run bench:topics${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${lines.join('\n')}\n\n${checks.join('\n')}\n\n\`${command}\`: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${rounds} round(s) × ${samples} sweeps of each kind, ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeResults('topics', { machine, load: { before: loadBefore, after: loadAverage() }, config: { n, samples, rounds, heartbeatMs, variants }, runs }, markdown)
}

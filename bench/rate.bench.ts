/**
 * Rate sweep (issue 17): N streams on one topic, a publisher at rising
 * rates; for each variant, the highest rate whose p99 publish → delivery
 * latency stays under 500 ms with every frame delivered, and the server CPU
 * per delivered patch. Target: patchwire's highest sustained rate ≥ 10× the
 * bare loop's and ≥ 10× better-sse's, at N = 15 000.
 *
 * Run:
 *   npm run bench:rate                          # N = 15 000; 1, 2, 5, 10, 20, 50, 100, 200 publishes/s; every variant
 *   npm run bench:rate -- --n 5000 --rates 10,50,200 --seconds 2 --variants patchwire,bare
 *
 * Method, per variant (its own server process and load client, as in the
 * fan-out bench; the variants alternate, in the order given):
 * 1. Connect N streams on one topic; three warm-up publishes.
 * 2. For each rate, lowest first: the server publishes for `--seconds` (at
 *    least 10 publishes), publish k due at `start + k / rate`; a timer makes
 *    every publish then due in one callback, so a server that falls behind
 *    catches up in bursts, as a busy publisher does (`rate-publisher.ts`).
 *    - Latency of publish k: its due time → its arrival on the last stream
 *      (CLOCK_MONOTONIC in both processes). Measured from the due time, not
 *      the late call, so falling behind counts (no coordinated omission).
 *    - Sustained (the issue's criterion): every publish of the phase
 *      reached every stream within 5 s of the phase's end, no stream was
 *      cut, and p99 < 500 ms.
 *    - Keeping up (a criterion that a loaded machine does not decide by
 *      itself): every publish delivered and no stream cut, as above, and
 *      the median latency of the phase's last third at most 250 ms above
 *      its first third's, so the latency is bounded rather than growing.
 *    - CPU per delivered patch: server CPU (user + system) from the phase's
 *      start until its last publish arrived everywhere, divided by
 *      publishes × N; heartbeats included.
 *    A rate that does not keep up ends the variant's sweep (higher rates
 *    would only fall further behind).
 * 3. Per variant the highest sustained rate and the highest rate kept up
 *    with, and patchwire's against the others; "≥ R" when patchwire
 *    reached the highest rate tried.
 *
 * The load client counts frames with `memchr` over every byte it reads; at
 * the highest rates it shares the two cores with the server, which bounds
 * every variant alike.
 *
 * Output: progress on stderr; the table on stdout and in
 * `bench/results/rate.md`; every phase in `bench/results/rate.json`.
 */
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Fleet, fmt, killChildrenOnExit, loadAverage, machine, ms, parseList, positive, progress, quantile, usage, writeResults } from './harness.js'
import type { RateReport } from './protocol.js'
import { VARIANT_NAMES } from './variants/variant.js'

const LATENCY_LIMIT_MS = 500
const DRAIN_MS = 5000
/** A phase whose latency grows by more than this from its first third to its last is falling behind. */
const GROWTH_LIMIT_MS = 250

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '15000' },
    rates: { type: 'string', default: '1,2,5,10,20,50,100,200' },
    seconds: { type: 'string', default: '3' },
    variants: { type: 'string', default: VARIANT_NAMES.join(',') },
    'heartbeat-ms': { type: 'string', default: '1000' },
  },
})
const n = positive(args.n, '--n')
const rates = parseList(args.rates, '--rates').sort((a, b) => a - b)
const seconds = positive(args.seconds, '--seconds')
const heartbeatMs = positive(args['heartbeat-ms'], '--heartbeat-ms')
const variants = args.variants.split(',')
for (const v of variants) if (!(VARIANT_NAMES as readonly string[]).includes(v)) usage(`unknown variant "${v}" (known: ${VARIANT_NAMES.join(', ')})`)

interface Phase {
  rate: number
  publishes: number
  delivered: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** how late the publish calls ran, ms (the server's own lag) */
  lateP99Ms: number
  cpuUs: number
  cpuPerPatchUs: number
  lost: number
  /** median latency of the phase's last third minus its first third's, ms */
  growthMs: number
  sustained: boolean
  keepsUp: boolean
}
interface Run { variant: string; phases: Phase[]; error?: string }

killChildrenOnExit()
const loadBefore = loadAverage()
const started = performance.now()
const runs: Run[] = []

progress(`rate sweep: N = ${n}; ${rates.join(', ')} publishes/s, ${seconds} s each; ${variants.join(', ')}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}`, true)
for (const variant of variants) {
  const run: Run = { variant, phases: [] }
  runs.push(run)
  try {
    await sweep(run)
  } catch (error) {
    run.error = (error as Error).message
    progress(`${variant}: FAILED: ${run.error}`, true)
  }
}
report()
process.exit(0)

async function sweep(run: Run): Promise<void> {
  const fleet = await Fleet.open({ variant: run.variant, n, heartbeatMs })
  try {
    await fleet.connect(run.variant)
    let seq = 0
    for (let i = 0; i < 3; i++) {
      seq++
      await fleet.publish({ type: 'broadcast', seq }, seq, true)
    }
    // From here every delivery is collected as it comes: seq → [clients that reported, latest arrival].
    const arrivals = new Map<number, [number, bigint]>()
    for (const client of fleet.clients) {
      client.on('delivered', (r) => {
        if (r.type !== 'delivered') return
        const [count, last] = arrivals.get(r.seq) ?? [0, 0n]
        arrivals.set(r.seq, [count + 1, r.last > last ? r.last : last])
      })
    }
    for (const rate of rates) {
      const durationMs = Math.max(seconds * 1000, (10 / rate) * 1000)
      const firstSeq = seq + 1
      progress(`${run.variant}: ${rate}/s for ${(durationMs / 1000).toFixed(0)} s`)
      const cpuStart = await fleet.cpu()
      fleet.servers[0]?.send({ type: 'rate', firstSeq, rate, durationMs })
      const phase = await fleet.servers[0]?.next('rate', durationMs + 60_000) as RateReport
      seq = firstSeq + phase.count - 1
      const lastSeq = seq
      const everywhere = (k: number): boolean => (arrivals.get(k)?.[0] ?? 0) === fleet.clients.length
      const deadline = performance.now() + DRAIN_MS
      while (!everywhere(lastSeq) && performance.now() < deadline) await sleep(20)
      const cpuEnd = await fleet.cpu()
      const latencies: number[] = []
      let delivered = 0
      for (let k = 0; k < phase.count; k++) {
        const arrival = arrivals.get(firstSeq + k)
        if (arrival === undefined || !everywhere(firstSeq + k)) {
          latencies.push(Infinity)
          continue
        }
        delivered++
        latencies.push(Number(arrival[1] - phase.startT) / 1e6 - (k * phase.periodNs) / 1e6)
      }
      const cpuUs = cpuEnd.cpuUs - cpuStart.cpuUs
      const result: Phase = {
        rate,
        publishes: phase.count,
        delivered,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        maxMs: Math.max(...latencies),
        lateP99Ms: phase.lateP99Ms,
        cpuUs,
        cpuPerPatchUs: cpuUs / (phase.count * n),
        lost: fleet.lost,
        growthMs: growth(latencies),
        sustained: false,
        keepsUp: false,
      }
      const complete = result.delivered === result.publishes && result.lost === 0
      result.sustained = complete && result.p99Ms < LATENCY_LIMIT_MS
      result.keepsUp = complete && result.growthMs <= GROWTH_LIMIT_MS
      run.phases.push(result)
      progress(`${run.variant} ${rate}/s: ${result.sustained ? 'sustained' : 'NOT sustained'}, ${result.keepsUp ? 'keeps up' : 'falls behind'} (latency ${result.growthMs >= 0 ? '+' : ''}${ms(result.growthMs)} over the phase); p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}, max ${ms(result.maxMs)}; ${result.delivered}/${result.publishes} delivered; CPU ${fmt(result.cpuPerPatchUs, 2)} µs per delivered patch; publisher late p99 ${ms(result.lateP99Ms)}${result.lost > 0 ? `; ${result.lost} streams cut` : ''}`, true)
      if (!result.keepsUp) break
    }
  } finally {
    await fleet.kill()
  }
}

/** The latency of a phase's last third above its first third's (medians), ms. */
function growth(latencies: number[]): number {
  const third = Math.max(1, Math.floor(latencies.length / 3))
  return quantile(latencies.slice(-third), 0.5) - quantile(latencies.slice(0, third), 0.5)
}

function highest(run: Run | undefined, which: 'sustained' | 'keepsUp' = 'sustained'): number | undefined {
  if (run === undefined || run.phases.length === 0) return undefined
  const ok = run.phases.filter((p) => p[which])
  return ok.length === 0 ? 0 : Math.max(...ok.map((p) => p.rate))
}

function report(): void {
  const top = Math.max(...rates)
  const lines = [
    `| variant | highest sustained rate (p99 < ${LATENCY_LIMIT_MS} ms) | p99 there | CPU per delivered patch there | highest rate kept up with | p99 there | CPU per delivered patch there | first rate not kept up with: p99, delivered |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const run of runs) {
    const rateLabel = (best: number | undefined, open: boolean): string => (best === undefined ? '–' : best === 0 ? `< ${rates[0]}/s` : `${best === top && open ? '≥ ' : ''}${best}/s`)
    const best = highest(run)
    const at = run.phases.find((p) => p.rate === best && p.sustained)
    const kept = highest(run, 'keepsUp')
    const keptAt = run.phases.find((p) => p.rate === kept && p.keepsUp)
    const failedAt = run.phases.find((p) => !p.keepsUp)
    const failure = failedAt === undefined ? (run.error === undefined ? '– (kept up with every rate)' : `failed: ${run.error}`) : `${failedAt.rate}/s: ${ms(failedAt.p99Ms)}, ${failedAt.delivered}/${failedAt.publishes}${failedAt.lost > 0 ? `, ${failedAt.lost} streams cut` : ''}`
    const cpu = (p: Phase | undefined): string => (p === undefined ? '–' : `${fmt(p.cpuPerPatchUs, 2)} µs`)
    lines.push(`| ${run.variant} | ${rateLabel(best, run.phases.every((p) => p.sustained))} | ${ms(at?.p99Ms)} | ${cpu(at)} | ${rateLabel(kept, failedAt === undefined)} | ${ms(keptAt?.p99Ms)} | ${cpu(keptAt)} | ${failure} |`)
  }
  const perRate = [
    '',
    `| rate/s | ${runs.map((r) => `${r.variant} p99 · CPU/patch`).join(' | ')} |`,
    `|---:|${runs.map(() => '---:').join('|')}|`,
    ...rates.map((rate) => `| ${rate} | ${runs.map((r) => {
      const p = r.phases.find((x) => x.rate === rate)
      return p === undefined ? '–' : `${ms(p.p99Ms)} · ${fmt(p.cpuPerPatchUs, 2)} µs${p.sustained ? '' : p.keepsUp ? ' (> 500 ms)' : ' ✗ behind'}`
    }).join(' | ')} |`),
  ]
  const pw = runs.find((r) => r.variant === 'patchwire')
  const targets = (['sustained', 'keepsUp'] as const).flatMap((which) => ['bare', 'better-sse'].map((other) => {
    const label = which === 'sustained' ? `highest rate with p99 < ${LATENCY_LIMIT_MS} ms` : 'highest rate kept up with'
    const pwBest = highest(pw, which)
    const pwOpen = pw !== undefined && pwBest === top && pw.phases.every((p) => p[which])
    const theirs = highest(runs.find((r) => r.variant === other), which)
    if (pwBest === undefined || theirs === undefined) return `- ? ${label}, patchwire vs ${other}: not measured; target ≥ 10×`
    if (pwBest === 0) return `- ❌ ${label}, patchwire vs ${other}: patchwire reached none (< ${rates[0]}/s), ${other} ${theirs === 0 ? `none either` : `${theirs}/s`}; target ≥ 10×`
    const base = theirs === 0 ? (rates[0] as number) : theirs
    const r = pwBest / base
    const bound = theirs === 0 ? '>' : pwOpen ? '≥' : ''
    return `- ${r >= 10 ? '✅' : pwOpen || theirs === 0 ? '⚠️' : '❌'} ${label}, patchwire vs ${other}: ${bound}${bound === '' ? '' : ' '}${fmt(r, 1)}× (${pwOpen ? '≥ ' : ''}${pwBest}/s vs ${theirs === 0 ? `< ${rates[0]}` : theirs}/s); target ≥ 10×`
  }))
  const command = `npm run bench:rate${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${lines.join('\n')}\n${perRate.join('\n')}\n\n${targets.join('\n')}\n\n\`${command}\`: N = ${n.toLocaleString('en-US')}, ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeResults('rate', { machine, load: { before: loadBefore, after: loadAverage() }, config: { n, rates, seconds, heartbeatMs, variants, latencyLimitMs: LATENCY_LIMIT_MS, drainMs: DRAIN_MS }, runs }, markdown)
}

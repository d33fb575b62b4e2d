/**
 * Turns the fan-out bench's raw runs into what people read: per-variant
 * summaries, the Markdown table with ratios against the bare baseline, the
 * issue's targets checked against patchwire, and the chart's panels.
 */
import type { ChartPanel } from './svg-chart.js'

/** One broadcast as measured. Times in ms from the publish call; CPU in µs. */
export interface BroadcastSample {
  seq: number
  /** warm-up broadcasts are kept in the JSON but left out of every statistic */
  warmup: boolean
  /** server CPU (all servers) of the fan-out window, µs */
  cpuUs: number
  /** wall time of the fan-out window (the longest over the servers), ms */
  fanOutMs: number
  /** publish → the broadcast's first stream, ms */
  firstMs: number
  /** publish → its last stream, ms */
  lastMs: number
}

/** A `process.memoryUsage()` reading summed over a run's servers, bytes. */
export interface MemorySample {
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
}

/** One variant at one N, one round. */
export interface RunResult {
  variant: string
  n: number
  round: number
  servers: number
  clients: number
  /** timeline: [ms since the clients started, streams established] every 250 ms */
  connect?: { ms: number; perSecond: number; timeline: Array<[number, number]> }
  memory?: { before: MemorySample; after: MemorySample; rssPerStream: number; heapPerStream: number; externalPerStream: number }
  broadcasts: BroadcastSample[]
  /** all server CPU over the measured broadcasts (heartbeats and everything) divided by their count, µs */
  phaseCpuPerBroadcastUs?: number
  idle?: { cpuUs: number; wallMs: number; ticks: number; alignedOnHeartbeats: boolean; cpuMsPerSecond: number }
  /** streams the server closed during the run */
  lost: number
  /** wall time of the run, processes started to processes gone, s */
  elapsedS?: number
  error?: string
}

/** A variant at one N, over all its rounds. */
export interface Summary {
  variant: string
  n: number
  rounds: number
  errors: string[]
  connectPerSecond?: number
  rssPerStream?: number
  heapPerStream?: number
  cpuMedianMs?: number
  cpuMeanMs?: number
  latencyMedianMs?: number
  latencyMaxMs?: number
  idleCpuMsPerSecond?: number
  broadcasts: number
}

/** A target of the issue and whether the run met it. */
export interface TargetCheck {
  label: string
  measured: string
  limit: string
  met: boolean | undefined
}

const BASELINE = 'bare'

/**
 * @param runs - every run, all rounds
 * @returns one summary per (N, variant), sorted by N then run order
 */
export function summarise(runs: RunResult[]): Summary[] {
  const groups = new Map<string, RunResult[]>()
  for (const run of runs) {
    const key = `${run.n}\0${run.variant}`
    groups.set(key, [...(groups.get(key) ?? []), run])
  }
  const summaries = [...groups.values()].map((group): Summary => {
    const first = group[0] as RunResult
    const good = group.filter((r) => r.error === undefined)
    const measured = good.flatMap((r) => r.broadcasts.filter((b) => !b.warmup))
    const summary: Summary = { variant: first.variant, n: first.n, rounds: group.length, errors: group.flatMap((r) => (r.error === undefined ? [] : [r.error])), broadcasts: measured.length }
    assign(summary, 'connectPerSecond', mean(good.flatMap((r) => (r.connect === undefined ? [] : [r.connect.perSecond]))))
    assign(summary, 'rssPerStream', mean(good.flatMap((r) => (r.memory === undefined ? [] : [r.memory.rssPerStream]))))
    assign(summary, 'heapPerStream', mean(good.flatMap((r) => (r.memory === undefined ? [] : [r.memory.heapPerStream]))))
    assign(summary, 'cpuMedianMs', median(measured.map((b) => b.cpuUs / 1000)))
    assign(summary, 'cpuMeanMs', mean(measured.map((b) => b.cpuUs / 1000)))
    assign(summary, 'latencyMedianMs', median(measured.map((b) => b.lastMs)))
    assign(summary, 'latencyMaxMs', measured.length === 0 ? undefined : Math.max(...measured.map((b) => b.lastMs)))
    assign(summary, 'idleCpuMsPerSecond', mean(good.flatMap((r) => (r.idle === undefined ? [] : [r.idle.cpuMsPerSecond]))))
    return summary
  })
  return summaries.sort((a, b) => a.n - b.n)
}

/**
 * @param summaries - from {@link summarise}
 * @returns the Markdown table, one row per (N, variant), ratios against `bare` at the same N
 */
export function markdownTable(summaries: Summary[]): string {
  const header = [
    '| N | variant | connect/s | RSS/stream | heap/stream | CPU/broadcast | ×bare | latency p50 | ×bare | latency max | idle CPU (1 s heartbeat) | ×bare |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  const rows = summaries.map((s) => {
    const base = summaries.find((b) => b.n === s.n && b.variant === BASELINE)
    const cells = [
      s.n.toLocaleString('en-US'),
      s.errors.length === 0 ? s.variant : `${s.variant} (${s.errors.length} failed)`,
      fmt(s.connectPerSecond, 0),
      s.rssPerStream === undefined ? '–' : `${fmt(s.rssPerStream / 1024, 1)} KiB`,
      s.heapPerStream === undefined ? '–' : `${fmt(s.heapPerStream / 1024, 2)} KiB`,
      ms(s.cpuMedianMs),
      ratio(s.cpuMedianMs, base?.cpuMedianMs),
      ms(s.latencyMedianMs),
      ratio(s.latencyMedianMs, base?.latencyMedianMs),
      ms(s.latencyMaxMs),
      s.idleCpuMsPerSecond === undefined ? '–' : `${fmt(s.idleCpuMsPerSecond, 1)} ms/s`,
      ratio(s.idleCpuMsPerSecond, base?.idleCpuMsPerSecond),
    ]
    return `| ${cells.join(' | ')} |`
  })
  return [...header, ...rows].join('\n')
}

/**
 * The targets, checked at the largest N patchwire ran at.
 * @param summaries - from {@link summarise}
 * @returns one check per target; `met` is undefined when a number is missing
 */
export function checkTargets(summaries: Summary[]): { n: number | undefined; checks: TargetCheck[] } {
  const pw = summaries.filter((s) => s.variant === 'patchwire').sort((a, b) => b.n - a.n)[0]
  if (pw === undefined) return { n: undefined, checks: [] }
  const at = (variant: string): Summary | undefined => summaries.find((s) => s.n === pw.n && s.variant === variant)
  const checks: TargetCheck[] = []
  const against = (label: string, value: (s: Summary) => number | undefined, variant: string, limit: number, mode: '≤' | 'within'): void => {
    const mine = value(pw)
    const theirs = at(variant)
    const other = theirs === undefined ? undefined : value(theirs)
    const r = mine === undefined || other === undefined ? undefined : mine / other
    checks.push({
      label: `${label} vs ${variant}`,
      measured: r === undefined ? '–' : `${fmt(r, 2)}× (${fmt(mine, 1)} vs ${fmt(other, 1)} ms)`,
      limit: mode === '≤' ? `≤ ${limit}×` : `within ${limit}× (≤ ${limit}×)`,
      met: r === undefined ? undefined : r <= limit,
    })
  }
  for (const [label, value] of [
    ['CPU per broadcast', (s: Summary) => s.cpuMedianMs],
    ['latency p50', (s: Summary) => s.latencyMedianMs],
  ] as const) {
    against(label, value, 'bare', 0.7, '≤')
    against(label, value, 'better-sse', 0.55, '≤')
    against(label, value, 'probe', 1.15, 'within')
  }
  checks.push({
    label: 'heap per idle stream',
    measured: pw.heapPerStream === undefined ? '–' : `${Math.round(pw.heapPerStream)} B (${fmt(pw.heapPerStream / 1024, 2)} KiB)`,
    // Issue 24's line (it was 4.5 KB, issue 6's, before streams were detached from node:http).
    limit: '≤ 2.0 KB (checked as 2000 B)',
    met: pw.heapPerStream === undefined ? undefined : pw.heapPerStream <= 2000,
  })
  const bareIdle = at('bare')?.idleCpuMsPerSecond
  const idleRatio = pw.idleCpuMsPerSecond === undefined || bareIdle === undefined ? undefined : pw.idleCpuMsPerSecond / bareIdle
  checks.push({
    label: 'idle heartbeat CPU vs bare',
    measured: idleRatio === undefined ? '–' : `${fmt(idleRatio, 2)}× (${fmt(pw.idleCpuMsPerSecond, 1)} vs ${fmt(bareIdle, 1)} ms/s)`,
    limit: '≤ 0.7×',
    met: idleRatio === undefined ? undefined : idleRatio <= 0.7,
  })
  return { n: pw.n, checks }
}

/**
 * @param result - from {@link checkTargets}
 * @returns the checks as a Markdown list
 */
export function markdownTargets(result: { n: number | undefined; checks: TargetCheck[] }): string {
  if (result.n === undefined) return 'patchwire did not run: no target checked.'
  const lines = result.checks.map((c) => `- ${c.met === undefined ? '?' : c.met ? '✅' : '❌'} ${c.label}: ${c.measured}; target ${c.limit}`)
  return [`Targets at N = ${result.n.toLocaleString('en-US')} (patchwire):`, '', ...lines].join('\n')
}

/** Line colours, one per variant. */
const COLORS: Record<string, string> = { patchwire: '#1f77b4', bare: '#7f7f7f', 'better-sse': '#ff7f0e', probe: '#2ca02c', 'patchwire-redis': '#9467bd' }

/**
 * @param summaries - from {@link summarise}
 * @returns the latency and CPU panels of the chart
 */
export function chartPanels(summaries: Summary[]): ChartPanel[] {
  const variants = [...new Set(summaries.map((s) => s.variant))]
  const series = (value: (s: Summary) => number | undefined): ChartPanel['series'] =>
    variants.map((variant) => ({
      name: variant,
      color: COLORS[variant] ?? '#000',
      points: summaries.filter((s) => s.variant === variant).map((s): [number, number | undefined] => [s.n, value(s)]),
    }))
  return [
    { title: 'publish → last delivery, median', unit: 'ms', series: series((s) => s.latencyMedianMs) },
    { title: 'server CPU per broadcast, median', unit: 'ms', series: series((s) => s.cpuMedianMs) },
  ]
}

function assign<K extends keyof Summary>(summary: Summary, key: K, value: Summary[K] | undefined): void {
  if (value !== undefined) summary[key] = value
}

function mean(values: number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

function fmt(value: number | undefined, digits: number): string {
  return value === undefined ? '–' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function ms(value: number | undefined): string {
  if (value === undefined) return '–'
  return `${fmt(value, value < 10 ? 2 : value < 100 ? 1 : 0)} ms`
}

function ratio(value: number | undefined, base: number | undefined): string {
  return value === undefined || base === undefined || base === 0 ? '–' : `${fmt(value / base, 2)}`
}

/**
 * Reconnect storm (issues 17 and 13): N streams dropped at once while
 * publishing continues, every one reconnecting at once with its
 * `Last-Event-ID`; the time until every stream is back and has every patch,
 * and the server's peak memory, against the time the bare loop's clients
 * take merely to reconnect. Target: ≤ 1.3× at N = 15 000. With
 * `--processes K`, also patchwire over K processes behind a private Redis,
 * each stream reconnecting to another process than the one it left.
 *
 * Run:
 *   npm run bench:storm                          # N = 15 000; patchwire and bare; server-side and client-side drops; two rounds
 *   npm run bench:storm -- --processes 3         # and patchwire-redis ×3 (a redis-server on a free port, never 6379)
 *   npm run bench:storm -- --n 5000 --drop client --rate 5 --rounds 1
 *
 * Method, per variant and drop (its own processes, as in the fan-out bench;
 * variants alternate within a round):
 * 1. Connect N streams on one topic (`--track-sockets`: the server keeps its
 *    sockets to cut them). patchwire: read the topic's position P0; the bench
 *    publishes nothing else on the broker, so a stream that has counted c
 *    frames has seen id `<epoch>-<P0 + c>`, the `Last-Event-ID` it sends.
 * 2. Two warm-up publishes, then the server (or, behind Redis, the
 *    publisher process) publishes at `--rate` per second until the end.
 *    After `--steady-ms`, the server's memory watch starts (every 20 ms,
 *    `process.memoryUsage()`, no GC) and the drop:
 *    - server: the client is armed first, then the server destroys every
 *      socket at once; the drop's time is the server's.
 *    - client: the client resets all its sockets at once (RST, so that its
 *      ports do not sit in TIME_WAIT: Linux's search for a free port among
 *      15 000 in TIME_WAIT would make the client set the pace); the drop's
 *      time is the client's.
 * 3. Each stream reconnects at once (at most 256 unanswered at a time, as in
 *    the connect phase; a refusal is retried). It is back on its new
 *    `200` status line, and caught up once it has counted every frame
 *    published before the drop (patchwire; the bare loop resumes nothing, so
 *    for it back is the whole storm). The client reports the last stream's
 *    back and caught-up times (CLOCK_MONOTONIC, shared by every process).
 * 4. Publishing stops; every stream must then have counted every frame
 *    exactly once (no gap, no duplicate: smallest = largest = published).
 *    Behind Redis, the commands Redis ran from just before the drop until
 *    all were back (`INFO commandstats`): whether the resumes were served
 *    from each process's local cache or cost a Redis round trip each.
 * 5. Ratio: patchwire's drop → all caught up, against bare's drop → all
 *    back, for the same kind of drop in the same run; medians over the
 *    rounds. Server CPU from just before the drop until all are back, per
 *    reconnect, is the steadier figure on a shared machine.
 *
 * The heartbeat is 15 s (patchwire's default), not the fan-out bench's 1 s:
 * here a 1 s heartbeat to 15 000 streams plus the publishing kept a starved
 * server's event loop so busy (about 3 turns a second) that one listening
 * port's accept queue stayed full for tens of seconds, and bare's storm took
 * anywhere from 8 s to over 120 s.
 *
 * Output: progress on stderr; the table on stdout and in
 * `bench/results/storm.md`; every run in `bench/results/storm.json`.
 */
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from 'redis'
import { startRedisServer } from '../test/helpers/redis-server.ts'
import { Fleet, fmt, killChildrenOnExit, loadAverage, machine, median, ms, positive, progress, times, usage, writeResults } from './harness.js'
import type { Resume } from './protocol.js'

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '15000' },
    rate: { type: 'string', default: '2' },
    drop: { type: 'string', default: 'server,client' },
    variants: { type: 'string' },
    processes: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    'steady-ms': { type: 'string', default: '2000' },
    'heartbeat-ms': { type: 'string', default: '15000' },
  },
})
const n = positive(args.n, '--n')
const rate = positive(args.rate, '--rate')
const rounds = positive(args.rounds, '--rounds')
const steadyMs = positive(args['steady-ms'], '--steady-ms')
const heartbeatMs = positive(args['heartbeat-ms'], '--heartbeat-ms')
const processes = args.processes === undefined ? undefined : positive(args.processes, '--processes')
const drops = args.drop.split(',')
for (const d of drops) if (d !== 'server' && d !== 'client') usage(`--drop takes server and/or client, got "${d}"`)
const known = ['patchwire', 'bare', ...(processes === undefined ? [] : ['patchwire-redis'])]
const variants = args.variants === undefined ? known : args.variants.split(',')
for (const v of variants) if (!known.includes(v)) usage(`unknown variant "${v}" (known: ${known.join(', ')}${processes === undefined ? '; patchwire-redis needs --processes K' : ''})`)
const STORM_TIMEOUT_MS = 120_000

interface Run {
  variant: string
  drop: string
  round: number
  servers: number
  dropped?: number
  backMs?: number
  caughtUpMs?: number
  reconnects?: number
  refused?: number
  published?: number
  counts?: { min: number; max: number }
  exact?: boolean
  memoryBefore?: { rss: number; heapUsed: number }
  /** server CPU (all servers) from just before the drop until every stream was back and caught up, per reconnect, µs */
  cpuPerReconnectUs?: number
  /** behind Redis: commands Redis ran from just before the drop until every stream was back (INFO commandstats), by command */
  redisCommands?: Record<string, number>
  peak?: { rss: number; heapUsed: number; external: number; samples: number }
  /** [ms since the storm was armed, streams back, streams caught up, unanswered, queued, connecting], every 250 ms per client */
  timeline: Array<[number, number, number, number, number, number]>
  error?: string
}

killChildrenOnExit()
const loadBefore = loadAverage()
const started = performance.now()
const runs: Run[] = []
const redis = variants.includes('patchwire-redis') ? await startRedisServer() : undefined

progress(`reconnect storm: N = ${n}; publishing at ${rate}/s; drops ${drops.join(', ')}; ${variants.join(', ')}; ${rounds} round(s); ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}${redis === undefined ? '' : `; redis-server on port ${redis.port}`}`, true)
for (let round = 1; round <= rounds; round++) {
  for (const drop of drops) {
    for (const variant of variants) {
      const run: Run = { variant, drop, round, servers: variant === 'patchwire-redis' ? (processes as number) : 1, timeline: [] }
      runs.push(run)
      try {
        await storm(run, `${variant} ${drop} drop r${round}`)
        progress(`${variant} ${drop}-side drop r${round}:${run.redisCommands === undefined ? '' : ` Redis ran ${Object.entries(run.redisCommands).map(([c, k]) => `${k} ${c.toUpperCase()}`).join(', ') || 'nothing'} meanwhile;`} ${run.dropped} dropped; all back in ${ms(run.backMs)}, all caught up in ${ms(run.caughtUpMs)}; server CPU ${fmt(run.cpuPerReconnectUs, 0)} µs per reconnect; ${run.reconnects} reconnects, ${run.refused} refused; counts ${run.counts?.min}–${run.counts?.max} of ${run.published}${run.exact === true ? ' (exact)' : ''}; peak RSS ${mib(run.peak?.rss)}, heap ${mib(run.peak?.heapUsed)} (before ${mib(run.memoryBefore?.rss)}, ${mib(run.memoryBefore?.heapUsed)})`, true)
      } catch (error) {
        run.error = (error as Error).message
        progress(`${variant} ${drop}-side drop r${round}: FAILED: ${run.error}`, true)
      }
    }
  }
}
report()
await redis?.stop()
process.exit(0)

async function storm(run: Run, label: string): Promise<void> {
  const behindRedis = run.variant === 'patchwire-redis'
  const patchwire = run.variant !== 'bare'
  const fleet = await Fleet.open({
    variant: patchwire ? 'patchwire' : 'bare',
    n,
    servers: run.servers,
    heartbeatMs,
    trackSockets: true,
    ...(behindRedis ? { redisUrl: redis?.url as string, redisPrefix: `storm:${process.pid}:${runs.length}:`, reconnectElsewhere: true } : {}),
  })
  try {
    await fleet.connect(label)
    let resume: Resume | undefined
    const source = fleet.source
    if (patchwire) {
      source.send({ type: 'position' })
      resume = parseId((await source.next('position', 10_000)).id)
    }
    let seq = 0
    for (let i = 0; i < 2; i++) {
      seq++
      await fleet.publish({ type: 'broadcast', seq }, seq, true)
    }
    source.send({ type: 'rate', firstSeq: seq + 1, rate, durationMs: 0 })
    await sleep(steadyMs)
    const before = await fleet.memory()
    run.memoryBefore = { rss: before.rss, heapUsed: before.heapUsed }
    for (const s of fleet.servers) s.send({ type: 'watch-memory', on: true })
    fleet.expectCloses()

    // Progress of the storm, summed over the clients.
    const back = fleet.clients.map(() => 0)
    const caught = fleet.clients.map(() => 0)
    // A client's first progress report says it is armed.
    const armedAt = performance.now()
    const armed: Array<() => void> = []
    const arming = Promise.all(fleet.clients.map((_, i) => new Promise<void>((resolve) => (armed[i] = resolve))))
    fleet.clients.forEach((c, i) => c.on('storm-progress', (r) => {
      if (r.type !== 'storm-progress') return
      armed[i]?.()
      back[i] = r.back
      caught[i] = r.caughtUp
      run.timeline.push([Math.round(performance.now() - armedAt), back.reduce((a, b) => a + b, 0), caught.reduce((a, b) => a + b, 0), r.inFlight, r.queued, r.connecting])
      progress(`${label}: back ${back.reduce((a, b) => a + b, 0)}/${n}, caught up ${caught.reduce((a, b) => a + b, 0)}/${n}`)
    }))
    const finished = Promise.all(fleet.clients.map((c) => c.next('storm', STORM_TIMEOUT_MS)))
    // Awaited below; a failure before that must not crash the bench as unhandled.
    finished.catch(() => {})
    const publishedSoFar = async (): Promise<number> => {
      source.send({ type: 'position' })
      return (parseId((await source.next('position', 10_000)).id).base) - (resume?.base ?? 0)
    }
    let dropT: bigint
    const commandsBefore = behindRedis ? await redisCommandStats() : undefined
    const cpuBefore = await fleet.cpu()
    if (run.drop === 'server') {
      // Armed first, so that no close arrives before the client knows to reconnect.
      for (const c of fleet.clients) c.send({ type: 'storm', drop: false, ...(resume === undefined ? {} : { resume }), target: patchwire ? Number.MAX_SAFE_INTEGER : 0, concurrency: 256 })
      await Promise.race([arming, sleep(10_000).then(() => Promise.reject(new Error('the clients did not arm within 10 s')))])
      for (const s of fleet.servers) s.send({ type: 'drop' })
      const dropped = await Promise.all(fleet.servers.map((s) => s.next('dropped', 30_000)))
      run.dropped = dropped.reduce((a, d) => a + d.sockets, 0)
      dropT = dropped.reduce((min, d) => (d.t < min ? d.t : min), dropped[0]?.t ?? 0n)
      if (patchwire) {
        const target = behindRedis ? await publishedSoFar() : Math.max(...dropped.map((d) => d.seq))
        for (const c of fleet.clients) c.send({ type: 'storm-target', target })
      }
    } else {
      const target = patchwire ? await publishedSoFar() : 0
      for (const c of fleet.clients) c.send({ type: 'storm', drop: true, ...(resume === undefined ? {} : { resume }), target, concurrency: 256 })
      run.dropped = n
      dropT = 0n
    }
    const reports = await finished
    run.cpuPerReconnectUs = ((await fleet.cpu()).cpuUs - cpuBefore.cpuUs) / n
    if (commandsBefore !== undefined) {
      const after = await redisCommandStats()
      run.redisCommands = {}
      for (const [name, calls] of Object.entries(after)) {
        const delta = calls - (commandsBefore[name] ?? 0)
        if (delta > 0 && name !== 'info') run.redisCommands[name] = delta
      }
    }
    if (dropT === 0n) dropT = reports.reduce((min, r) => (r.start < min ? r.start : min), reports[0]?.start ?? 0n)
    const lastBack = reports.reduce((max, r) => (r.back > max ? r.back : max), 0n)
    const lastCaught = reports.reduce((max, r) => (r.caughtUp > max ? r.caughtUp : max), 0n)
    run.backMs = Number(lastBack - dropT) / 1e6
    run.caughtUpMs = Number(lastCaught - dropT) / 1e6
    run.reconnects = reports.reduce((a, r) => a + r.reconnects, 0)
    run.refused = reports.reduce((a, r) => a + r.refused, 0)
    const peaks = await Promise.all(fleet.servers.map((s) => {
      s.send({ type: 'watch-memory', on: false })
      return s.next('memory-peak', 10_000)
    }))
    run.peak = { rss: peaks.reduce((a, p) => a + p.rss, 0), heapUsed: peaks.reduce((a, p) => a + p.heapUsed, 0), external: peaks.reduce((a, p) => a + p.external, 0), samples: Math.min(...peaks.map((p) => p.samples)) }

    // Publishing stops; then every stream must hold every frame once.
    source.send({ type: 'stop-rate' })
    const phase = await source.next('rate', 10_000)
    run.published = phase.firstSeq + phase.count - 1
    const deadline = performance.now() + 10_000
    do {
      await sleep(200)
      run.counts = await fleet.counts()
    } while (patchwire && run.counts.min < run.published && performance.now() < deadline)
    run.exact = run.counts.min === run.published && run.counts.max === run.published
  } finally {
    await fleet.kill()
  }
}

/** Calls per command so far, from the bench's own redis-server. */
async function redisCommandStats(): Promise<Record<string, number>> {
  const client = createClient({ url: redis?.url as string })
  await client.connect()
  try {
    const stats: Record<string, number> = {}
    for (const match of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1] as string] = Number(match[2])
    return stats
  } finally {
    await client.quit()
  }
}

function parseId(id: string): Resume {
  const dash = id.lastIndexOf('-')
  return { epoch: id.slice(0, dash), base: Number(id.slice(dash + 1)) }
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '–' : `${fmt(bytes / 1024 ** 2, 0)} MiB`
}

function report(): void {
  const lines = [
    '| drop | variant | streams | all back | all caught up | ×bare (back) | server CPU per reconnect | ×bare | reconnects | refused | frames per stream at the end | peak RSS (before) | peak heap (before) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|',
  ]
  const checks: string[] = []
  for (const drop of drops) {
    const pick = (variant: string, value: (r: Run) => number | undefined): number => median(runs.filter((r) => r.variant === variant && r.drop === drop && r.error === undefined).flatMap((r) => { const v = value(r); return v === undefined ? [] : [v] }))
    const bareBack = pick('bare', (r) => r.backMs)
    const bareCpu = pick('bare', (r) => r.cpuPerReconnectUs)
    for (const variant of variants) {
      const mine = runs.filter((r) => r.variant === variant && r.drop === drop)
      const ok = mine.filter((r) => r.error === undefined)
      const last = ok[ok.length - 1]
      const done = pick(variant, (r) => (variant === 'bare' ? r.backMs : r.caughtUpMs))
      const label = variant === 'patchwire-redis' ? `patchwire-redis ×${processes}` : variant
      lines.push(`| ${drop} | ${label}${mine.length > ok.length ? ` (${mine.length - ok.length} failed: ${mine.find((r) => r.error !== undefined)?.error})` : ''} | ${n.toLocaleString('en-US')} | ${ms(pick(variant, (r) => r.backMs))} | ${variant === 'bare' ? '– (no resume)' : ms(pick(variant, (r) => r.caughtUpMs))} | ${times(done, bareBack)} | ${fmt(pick(variant, (r) => r.cpuPerReconnectUs), 0)} µs | ${times(pick(variant, (r) => r.cpuPerReconnectUs), bareCpu)} | ${fmt(pick(variant, (r) => r.reconnects), 0)} | ${fmt(pick(variant, (r) => r.refused), 0)} | ${last?.counts === undefined ? '–' : `${last.counts.min}–${last.counts.max} of ${last.published}${last.exact === true ? ', exact' : ''}`} | ${mib(pick(variant, (r) => r.peak?.rss))} (${mib(pick(variant, (r) => r.memoryBefore?.rss))}) | ${mib(pick(variant, (r) => r.peak?.heapUsed))} (${mib(pick(variant, (r) => r.memoryBefore?.heapUsed))}) |`)
      if (variant === 'patchwire-redis') {
        const exact = ok.length > 0 && ok.every((x) => x.exact === true)
        checks.push(`- ${label}, ${drop}-side drop (issue 13, no target): every stream back with every frame exactly once${exact ? '' : ' (NOT exact)'} in ${ms(done)}, ${times(done, bareBack)} one bare process's plain reconnect; server CPU ${times(pick(variant, (r) => r.cpuPerReconnectUs), bareCpu)} (summed over the ${processes} processes)`)
      } else if (variant !== 'bare') {
        const r = done / bareBack
        const exact = ok.length > 0 && ok.every((x) => x.exact === true)
        checks.push(`- ${Number.isNaN(r) ? '?' : r <= 1.3 && exact ? '✅' : '❌'} ${label}, ${drop}-side drop: every stream back with every frame exactly once${exact ? '' : ' (NOT exact)'} in ${times(done, bareBack)} bare's plain reconnect (${ms(done)} vs ${ms(bareBack)}; server CPU ${times(pick(variant, (r) => r.cpuPerReconnectUs), bareCpu)}); target ≤ 1.3×`)
      }
    }
  }
  const command = `npm run bench:storm${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${lines.join('\n')}\n\n${checks.join('\n')}\n\n\`${command}\`: publishing at ${rate}/s throughout, ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${rounds} round(s), ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeResults('storm', { machine, load: { before: loadBefore, after: loadAverage() }, config: { n, rate, drops, variants, processes, rounds, steadyMs, heartbeatMs }, runs }, markdown)
}

/**
 * Publish cost over Redis (issues 13 and 24): `publish` through
 * `createRedisBroker` (a script that takes the positions, appends to the
 * topic's Redis Stream and publishes id + payload: one call for a lone
 * publish, one for all the publishes of a turn made while calls are under
 * way) against a plain `PUBLISH` of the same payload, with both node-redis
 * and ioredis: commands per publish, sequential latency, throughput with
 * many publishes in flight (the client pipelines them on its connection),
 * script calls per publish at each concurrency, and Redis's own CPU per
 * publish.
 *
 * Run:
 *   npm run bench:redis                          # both clients, 2000 sequential and 1 s per concurrency, 3 rounds
 *   npm run bench:redis -- --sequential 500 --concurrency 1,64 --seconds 1 --rounds 1 --clients ioredis
 *
 * Method: a private `redis-server` on a free port (never 6379; no
 * persistence), started and killed by the bench. Per client library, two
 * connections (publisher, subscriber); the topic's channel has one
 * subscriber in both variants (the broker's own subscription, or a plain
 * SUBSCRIBE), so Redis does the same delivery work. The payload is the
 * fan-out bench's ops, serialised (about 90 bytes).
 * - Commands per publish: `INFO commandstats` calls before and after a
 *   sequential block, divided by its publishes (the INFO itself left out).
 * - Sequential: `--sequential` publishes, each awaited before the next, in
 *   blocks of 100 alternating broker / plain; p50 and p99 of each.
 * - Throughput: for each `--concurrency` c, c publishes kept in flight
 *   (the next issued as one resolves) for `--seconds`, alternating broker /
 *   plain; publishes per second, `INFO cpu` (used_cpu_user + sys) per
 *   publish for Redis's share, and `process.cpuUsage()` per publish for the
 *   publishing process's (the adapter and the client library); for the
 *   broker, its script calls (`INFO commandstats`) per publish.
 * - Rounds repeat the whole; medians over the rounds. Ratios are broker ÷
 *   plain from the same round.
 *
 * Output: progress on stderr; the table on stdout and in
 * `bench/results/redis-publish.md`; every figure in
 * `bench/results/redis-publish.json`.
 */
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { startRedisServer } from '../test/helpers/redis-server.ts'
import { createRedisBroker } from '../src/adapters/redis/index.ts'
import type { Broker } from '../src/broker/broker.ts'
import { serialiseOps } from '../src/protocol/frame.ts'
import { fmt, loadAverage, machine, median, ms, parseList, positive, progress, quantile, times, usage, writeResults } from './harness.js'
import { benchOps } from './protocol.js'

const { values: args } = parseArgs({
  options: {
    sequential: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '1,16,256' },
    seconds: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: 'node-redis,ioredis' },
  },
})
const sequential = positive(args.sequential, '--sequential')
const concurrencies = parseList(args.concurrency, '--concurrency')
const seconds = positive(args.seconds, '--seconds')
const rounds = positive(args.rounds, '--rounds')
const libraries = args.clients.split(',')
for (const l of libraries) if (l !== 'node-redis' && l !== 'ioredis') usage(`--clients takes node-redis and/or ioredis, got "${l}"`)
const BLOCK = 100
const TOPIC = 'bench'
const payload = serialiseOps(benchOps(1))

/** One way to publish, and the connection it runs on (for INFO). */
interface Publisher {
  publish(): Promise<unknown>
  info(section: string): Promise<string>
  close(): Promise<void>
}

interface Round {
  library: string
  round: number
  commands: Record<'broker' | 'plain', Record<string, number>>
  sequential: Record<'broker' | 'plain', { p50: number; p99: number }>
  throughput: Array<{ concurrency: number; broker: number; plain: number; brokerRedisCpuUs: number; plainRedisCpuUs: number; brokerNodeCpuUs: number; plainNodeCpuUs: number; brokerCallsPerPublish: number }>
}

const redis = await startRedisServer()
process.on('exit', () => void redis.kill())
const loadBefore = loadAverage()
const started = performance.now()
const results: Round[] = []
progress(`redis publish: ${libraries.join(', ')}; ${sequential} sequential, concurrency ${concurrencies.join(', ')} for ${seconds} s, ${rounds} round(s); redis-server 127.0.0.1:${redis.port}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}`, true)
try {
  for (let round = 1; round <= rounds; round++) {
    for (const library of libraries) {
      const { broker, plain } = await open(library, `r${round}:`)
      try {
        results.push(await measure(library, round, broker, plain))
        const r = results[results.length - 1] as Round
        progress(`${library} r${round}: sequential p50 ${ms(r.sequential.broker.p50)} vs ${ms(r.sequential.plain.p50)}; ${r.throughput.map((t) => `c=${t.concurrency} ${fmt(t.broker, 0)}/s vs ${fmt(t.plain, 0)}/s`).join(', ')}`, true)
      } finally {
        await broker.close()
        await plain.close()
      }
    }
  }
  report()
} finally {
  await redis.stop()
}
process.exit(0)

async function open(library: string, prefix: string): Promise<{ broker: Publisher; plain: Publisher }> {
  const channel = `plain:${prefix}${TOPIC}`
  if (library === 'node-redis') {
    const [bp, bs, pp, ps] = Array.from({ length: 4 }, () => createClient({ url: redis.url }))
    await Promise.all([bp, bs, pp, ps].map((c) => c?.connect()))
    if (bp === undefined || bs === undefined || pp === undefined || ps === undefined) throw new Error('four clients')
    const broker = createRedisBroker({ publisher: bp, subscriber: bs, prefix })
    await subscribed(broker, prefix)
    await ps.subscribe(channel, () => {})
    return {
      broker: { publish: () => broker.publish(TOPIC, payload), info: (s) => bp.info(s), close: async () => { await Promise.all([bp.quit(), bs.quit()]) } },
      plain: { publish: () => pp.publish(channel, payload), info: (s) => pp.info(s), close: async () => { await Promise.all([pp.quit(), ps.quit()]) } },
    }
  }
  const [bp, bs, pp, ps] = [new Redis(redis.url), new Redis(redis.url), new Redis(redis.url), new Redis(redis.url)]
  const broker = createRedisBroker({ publisher: bp, subscriber: bs, prefix })
  await subscribed(broker, prefix)
  await ps.subscribe(channel)
  return {
    broker: { publish: () => broker.publish(TOPIC, payload), info: (s) => bp.info(s), close: async () => { await Promise.all([bp.quit(), bs.quit()]) } },
    plain: { publish: () => pp.publish(channel, payload), info: (s) => pp.info(s), close: async () => { await Promise.all([pp.quit(), ps.quit()]) } },
  }
}

/** The broker's topic gets a subscriber, as a handler's would; resolves once it is live. */
async function subscribed(broker: Broker, prefix: string): Promise<void> {
  const unsubscribe = broker.subscribe(TOPIC, () => {})
  await unsubscribe.ready
  // The first publish loads the script (NOSCRIPT, then EVAL): kept out of every figure.
  await broker.publish(TOPIC, payload)
  void prefix
}

async function measure(library: string, round: number, broker: Publisher, plain: Publisher): Promise<Round> {
  const result: Round = {
    library,
    round,
    commands: { broker: {}, plain: {} },
    sequential: { broker: { p50: 0, p99: 0 }, plain: { p50: 0, p99: 0 } },
    throughput: [],
  }
  for (const [kind, p] of [['broker', broker], ['plain', plain]] as const) result.commands[kind] = await commandsPer(p, 200)
  const latencies: Record<'broker' | 'plain', number[]> = { broker: [], plain: [] }
  for (let done = 0; done < sequential; done += BLOCK) {
    progress(`${library} r${round}: sequential ${done}/${sequential}`)
    for (const [kind, p] of [['broker', broker], ['plain', plain]] as const) {
      for (let i = 0; i < BLOCK; i++) {
        const t = performance.now()
        await p.publish()
        latencies[kind].push(performance.now() - t)
      }
    }
  }
  for (const kind of ['broker', 'plain'] as const) result.sequential[kind] = { p50: median(latencies[kind]), p99: quantile(latencies[kind], 0.99) }
  for (const concurrency of concurrencies) {
    progress(`${library} r${round}: ${concurrency} in flight`)
    const b = await throughput(broker, concurrency)
    const q = await throughput(plain, concurrency)
    result.throughput.push({ concurrency, broker: b.perSecond, plain: q.perSecond, brokerRedisCpuUs: b.redisCpuUs, plainRedisCpuUs: q.redisCpuUs, brokerNodeCpuUs: b.nodeCpuUs, plainNodeCpuUs: q.nodeCpuUs, brokerCallsPerPublish: b.scriptCalls })
  }
  return result
}

/** Commands Redis ran per publish, by command, over `count` sequential publishes. */
async function commandsPer(p: Publisher, count: number): Promise<Record<string, number>> {
  const before = commandStats(await p.info('commandstats'))
  for (let i = 0; i < count; i++) await p.publish()
  const after = commandStats(await p.info('commandstats'))
  const per: Record<string, number> = {}
  for (const [name, calls] of Object.entries(after)) {
    if (name === 'info') continue
    const delta = calls - (before[name] ?? 0)
    if (delta > 0) per[name] = delta / count
  }
  return per
}

function commandStats(text: string): Record<string, number> {
  const stats: Record<string, number> = {}
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1] as string] = Number(match[2])
  return stats
}

function redisCpuUs(text: string): number {
  const user = Number(/^used_cpu_user:([\d.]+)/m.exec(text)?.[1] ?? 0)
  const system = Number(/^used_cpu_sys:([\d.]+)/m.exec(text)?.[1] ?? 0)
  return (user + system) * 1e6
}

async function throughput(p: Publisher, concurrency: number): Promise<{ perSecond: number; redisCpuUs: number; nodeCpuUs: number; scriptCalls: number }> {
  const statsBefore = commandStats(await p.info('commandstats'))
  const cpuBefore = redisCpuUs(await p.info('cpu'))
  const nodeBefore = process.cpuUsage()
  const deadline = performance.now() + seconds * 1000
  const start = performance.now()
  let done = 0
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await p.publish()
      done++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const elapsed = performance.now() - start
  const node = process.cpuUsage(nodeBefore)
  const cpuAfter = redisCpuUs(await p.info('cpu'))
  const statsAfter = commandStats(await p.info('commandstats'))
  const scripts = (stats: Record<string, number>): number => (stats['evalsha'] ?? 0) + (stats['eval'] ?? 0)
  return { perSecond: (done / elapsed) * 1000, redisCpuUs: (cpuAfter - cpuBefore) / done, nodeCpuUs: (node.user + node.system) / done, scriptCalls: (scripts(statsAfter) - scripts(statsBefore)) / done }
}

function report(): void {
  const lines = [
    '| client | round trips per publish, broker | plain | commands the broker\'s script runs per publish | sequential p50, broker | plain | ratio | sequential p99, broker | plain | ratio |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const library of libraries) {
    const mine = results.filter((r) => r.library === library)
    const last = mine[mine.length - 1]
    // Top-level commands are round trips; INFO commandstats also counts the calls a script makes.
    const TOP = new Set(['evalsha', 'eval', 'publish'])
    const trips = (kind: 'broker' | 'plain'): string => (last === undefined ? '–' : fmt(Object.entries(last.commands[kind]).filter(([name]) => kind === 'plain' ? TOP.has(name) : name === 'evalsha' || name === 'eval').reduce((a, [, per]) => a + per, 0), 2))
    const inner = last === undefined ? '–' : Object.entries(last.commands.broker).filter(([name]) => name !== 'evalsha' && name !== 'eval').map(([name, per]) => `${fmt(per, 2)} ${name.toUpperCase()}`).join(', ')
    const seq = (kind: 'broker' | 'plain', q: 'p50' | 'p99'): number => median(mine.map((r) => r.sequential[kind][q]))
    const ratio = (q: 'p50' | 'p99'): number => median(mine.map((r) => r.sequential.broker[q] / r.sequential.plain[q]))
    lines.push(`| ${library} | ${trips('broker')} (EVALSHA) | ${trips('plain')} (PUBLISH) | ${inner} | ${ms(seq('broker', 'p50'))} | ${ms(seq('plain', 'p50'))} | ${fmt(ratio('p50'), 2)}× | ${ms(seq('broker', 'p99'))} | ${ms(seq('plain', 'p99'))} | ${fmt(ratio('p99'), 2)}× |`)
  }
  lines.push('', '| client | publishes in flight | broker, publishes/s | plain, publishes/s | broker ÷ plain | script calls per publish, broker | Redis CPU per publish, broker | plain | ratio | publisher-process CPU per publish, broker | plain | ratio |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const library of libraries) {
    const mine = results.filter((r) => r.library === library)
    for (const concurrency of concurrencies) {
      const rows = mine.flatMap((r) => r.throughput.filter((t) => t.concurrency === concurrency))
      const b = median(rows.map((t) => t.broker))
      const q = median(rows.map((t) => t.plain))
      const bc = median(rows.map((t) => t.brokerRedisCpuUs))
      const qc = median(rows.map((t) => t.plainRedisCpuUs))
      const bn = median(rows.map((t) => t.brokerNodeCpuUs))
      const qn = median(rows.map((t) => t.plainNodeCpuUs))
      const calls = median(rows.map((t) => t.brokerCallsPerPublish))
      lines.push(`| ${library} | ${concurrency} | ${fmt(b, 0)} | ${fmt(q, 0)} | ${fmt(median(rows.map((t) => t.broker / t.plain)), 2)}× | ${fmt(calls, 3)} | ${fmt(bc, 1)} µs | ${fmt(qc, 1)} µs | ${times(bc, qc)} | ${fmt(bn, 1)} µs | ${fmt(qn, 1)} µs | ${times(bn, qn)} |`)
    }
  }
  const command = `npm run bench:redis${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${lines.join('\n')}\n\n\`${command}\`: redis-server 7 on 127.0.0.1 (private, no persistence), ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${rounds} round(s), ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeResults('redis-publish', { machine, load: { before: loadBefore, after: loadAverage() }, config: { sequential, concurrencies, seconds, rounds, libraries, payloadBytes: payload.length }, results }, markdown)
}

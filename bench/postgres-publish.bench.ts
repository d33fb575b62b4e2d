/**
 * Transactional publish over PostgreSQL (issue 23): what publishing inside
 * the application's transaction costs, against the same transaction without
 * it, and how long a committed message takes to reach another process.
 *
 * Run:
 *   npm run bench:postgres                                  # 1 and 32 concurrent, 3 s each, 2 rounds, 300 deliveries
 *   npm run bench:postgres -- --concurrency 1,8,32 --seconds 2 --rounds 1 --deliveries 100
 *
 * Method: a private PostgreSQL (initdb in a temporary directory, free port,
 * fsync=off, as the tests start it; never the machine's shared server), an
 * empty database, a pool of 40 connections.
 * - Transactions: `BEGIN; INSERT INTO items …; COMMIT` (the baseline, the
 *   application's own work) against `BEGIN; INSERT INTO items …;
 *   publish(broker, topic, ops, { transaction }); COMMIT`. For each
 *   `--concurrency` c, c transactions kept in flight (the next begun as one
 *   ends) for `--seconds`, the two variants alternating; transactions per
 *   second and the p50/p99 of each transaction's duration. Every publish
 *   takes the counter row's lock until its COMMIT, so concurrent publishing
 *   transactions queue there: this is the price of ids in commit order.
 * - Delivery: a second process (bench/postgres-peer.ts) subscribes on a
 *   broker of its own; this process runs `--deliveries` publishing
 *   transactions one after another, and each delay is from the moment the
 *   COMMIT is sent to the moment the peer's listener gets the message (one
 *   clock: both processes on one machine, `performance.timeOrigin + now()`).
 * - Rounds repeat the transactions; medians over rounds. Ratios are publish
 *   ÷ baseline from the same round. The payload is the fan-out bench's ops.
 *
 * Output: the table on stdout and in `bench/results/postgres-publish.md`;
 * every figure in `bench/results/postgres-publish.json`.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { createPostgresBroker } from '../src/adapters/postgres/index.ts'
import { publish } from '../src/broker/publish.ts'
import { freshDatabase, startPostgresServer } from '../test/helpers/postgres-server.ts'
import { fmt, loadAverage, machine, median, ms, parseList, positive, progress, quantile, times, writeResults } from './harness.js'
import { benchOps } from './protocol.js'

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,32' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    deliveries: { type: 'string', default: '300' },
  },
})
const concurrencies = parseList(args.concurrency, '--concurrency')
const seconds = positive(args.seconds, '--seconds')
const rounds = positive(args.rounds, '--rounds')
const deliveries = positive(args.deliveries, '--deliveries')
const ops = benchOps(1)

type Variant = 'baseline' | 'publish'
interface Sample { readonly variant: Variant, readonly concurrency: number, readonly round: number, readonly perSecond: number, readonly p50: number, readonly p99: number }

const now = (): number => performance.timeOrigin + performance.now()

const server = await startPostgresServer()
try {
  const url = await freshDatabase(server)
  const pool = new pg.Pool({ connectionString: url, max: 40 })
  const broker = createPostgresBroker({ pool })
  await pool.query('CREATE TABLE items (id bigserial PRIMARY KEY, body text NOT NULL)')
  // Creates the broker's tables before anything is timed.
  await broker.position('warm-up')

  const transaction = async (variant: Variant, topic: string): Promise<void> => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('INSERT INTO items (body) VALUES ($1)', ['item'])
      if (variant === 'publish') await publish(broker, topic, ops, { transaction: client })
      await client.query('COMMIT')
    } finally {
      client.release()
    }
  }

  const measure = async (variant: Variant, concurrency: number, round: number): Promise<Sample> => {
    const durations: number[] = []
    const end = performance.now() + seconds * 1000
    await Promise.all(Array.from({ length: concurrency }, async (_, k) => {
      while (performance.now() < end) {
        const started = performance.now()
        await transaction(variant, `bench:${k % 8}`)
        durations.push(performance.now() - started)
      }
    }))
    return { variant, concurrency, round, perSecond: durations.length / seconds, p50: quantile(durations, 0.5), p99: quantile(durations, 0.99) }
  }

  const samples: Sample[] = []
  for (let round = 1; round <= rounds; round++) {
    for (const concurrency of concurrencies) {
      for (const variant of (round % 2 === 1 ? ['baseline', 'publish'] : ['publish', 'baseline']) as Variant[]) {
        progress(`round ${round}/${rounds}, ${concurrency} concurrent, ${variant}`, true)
        samples.push(await measure(variant, concurrency, round))
      }
    }
  }

  // Delivery to another process.
  const peer = fork(fileURLToPath(new URL('./postgres-peer.ts', import.meta.url)), [url], { execArgv: ['--import', 'tsx'] })
  const received = new Map<string, number>()
  peer.on('message', (message: { ready?: boolean, id?: string, at?: number }) => {
    if (typeof message.id === 'string' && typeof message.at === 'number') received.set(message.id, message.at)
  })
  await once(peer, 'message')
  const sentAt = new Map<string, number>()
  for (let i = 0; i < deliveries; i++) {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('INSERT INTO items (body) VALUES ($1)', ['delivered'])
      const id = await publish(broker, 'delivery', ops, { transaction: client })
      sentAt.set(id, now())
      await client.query('COMMIT')
    } finally {
      client.release()
    }
    // One at a time: each delivery is measured on an idle path.
    const deadline = performance.now() + 5000
    while (received.size <= i && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  peer.kill()
  const delays = [...sentAt].flatMap(([id, at]) => received.has(id) ? [(received.get(id) as number) - at] : [])

  await broker.close()
  await pool.end()

  const row = (concurrency: number): string => {
    const of = (variant: Variant): Sample[] => samples.filter((s) => s.variant === variant && s.concurrency === concurrency)
    const pick = (variant: Variant, key: 'perSecond' | 'p50' | 'p99'): number => median(of(variant).map((s) => s[key]))
    const ratio = (key: 'perSecond' | 'p50' | 'p99'): string => times(pick('publish', key), pick('baseline', key))
    return `| ${concurrency} | ${fmt(pick('baseline', 'perSecond'), 0)} | ${fmt(pick('publish', 'perSecond'), 0)} | ${ratio('perSecond')} | ${ms(pick('baseline', 'p50'))} / ${ms(pick('baseline', 'p99'))} | ${ms(pick('publish', 'p50'))} / ${ms(pick('publish', 'p99'))} | ${ratio('p50')} / ${ratio('p99')} |`
  }
  const markdown = [
    `Node ${machine.node}, ${machine.cpus} cores (${machine.cpuModel}), load average ${loadAverage()}; ${seconds} s per variant, ${rounds} round(s), medians.`,
    '',
    '| concurrent | baseline tx/s | publish tx/s | throughput ratio | baseline p50 / p99 | publish p50 / p99 | latency ratio p50 / p99 |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...concurrencies.map(row),
    '',
    `Delivery to another process, from COMMIT sent to the listener: ${delays.length} of ${deliveries} measured, p50 ${ms(quantile(delays, 0.5))}, p99 ${ms(quantile(delays, 0.99))}, max ${ms(Math.max(...delays))}.`,
    '',
  ].join('\n')
  writeResults('postgres-publish', { machine, args: { concurrencies, seconds, rounds, deliveries }, samples, delays }, markdown)
} finally {
  await server.stop()
}

/**
 * The second process of bench/postgres-publish.bench.ts: subscribes to the
 * topic `delivery` on a broker of its own and reports, over IPC, each
 * message's id and when its listener got it (`performance.timeOrigin +
 * performance.now()`, the clock the bench uses too).
 *
 * Usage: forked by the bench with the database URL as its argument.
 */
import pg from 'pg'
import { createPostgresBroker } from '../src/adapters/postgres/index.ts'

const pool = new pg.Pool({ connectionString: process.argv[2] })
const broker = createPostgresBroker({ pool })
await broker.subscribe('delivery', (_payload, id) => {
  process.send?.({ id, at: performance.timeOrigin + performance.now() })
}).ready
process.send?.({ ready: true })
process.on('disconnect', () => process.exit(0))

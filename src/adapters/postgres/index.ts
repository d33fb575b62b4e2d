import type { Broker, ReplayResult, Revocation } from '../../broker/broker.js'
import { Database } from './database.js'
import { Feed } from './feed.js'
import { HistoryReads } from './history-reads.js'
import { Listener } from './listener.js'
import { resolveOptions } from './options.js'
import type { PostgresBrokerOptions } from './options.js'
import { Publisher } from './publisher.js'
import { Revocations } from './revocations.js'
import { Trimmer } from './trimmer.js'

export type { PostgresBrokerOptions } from './options.js'
export type { PostgresPool } from './pool.js'
export { postgresSchema } from './schema.js'

/** The {@link Broker} that {@link createPostgresBroker} returns, with its revocation capability and `close`. */
export interface PostgresBroker extends Broker {
  /**
   * Publishes `payload` on `topic`; with `options.transaction` (a client of
   * the pool inside `BEGIN … COMMIT`), as part of that transaction. Call it
   * through `publish(broker, topic, ops, { transaction })`.
   */
  publish(topic: string, payload: string, options?: { readonly transaction?: object }): Promise<string>
  /** See `Broker.position`: the counter, once this process has delivered every message up to it. */
  position(topic: string): Promise<string>
  /** See `Broker.replay`: one statement. */
  replay(topic: string, after: string): ReplayResult | Promise<ReplayResult>
  /**
   * See `Broker.revoke`: a row of `patchwire_revocations` and a `pg_notify`
   * that every process's broker hears; a broker whose `LISTEN` connection
   * was down reads the ones it missed from the table when it is back.
   */
  revoke(revocation: Revocation): Promise<void>
  /** See `Broker.onRevoke`. */
  onRevoke(listener: (revocation: Revocation) => void): () => void
  /**
   * Stops the broker: gives its `LISTEN` connection back to the pool (call
   * it before `pool.end()`, which waits for every connection to come back),
   * and stops reading and trimming. Its streams get nothing more.
   * @returns a Promise that resolves once the connection is back
   */
  close(): Promise<void>
}

/**
 * Creates a {@link Broker} over PostgreSQL, whose publishes can be part of
 * the application's own transactions: streams get a message if and only if
 * its transaction commits, exactly once, in commit order, on every process
 * that uses the same database.
 *
 * Each publish is one statement (see {@link postgresSchema} for the
 * tables): it increments the one counter row (`patchwire_state`), inserts
 * the message into `patchwire_messages`, and queues a `NOTIFY`, which
 * PostgreSQL sends at commit and drops on rollback. The counter row stays
 * locked until the transaction ends, so publishing transactions commit one
 * after another, in id order: once a stream has an id, no message with a
 * smaller one can commit later, and a resume from any id skips nothing.
 * That lock is the price: a publishing transaction waits for the one before
 * it to end, so publish last, just before `COMMIT` (bench/README.md has the
 * numbers). Under `REPEATABLE READ` or `SERIALIZABLE`, a publish that
 * waited fails with a serialization error, which the application retries
 * as it retries any.
 *
 * Every process keeps one connection of the pool in `LISTEN`; a
 * notification naming a topic it subscribes to makes it read the new
 * messages from the table (one statement for all its topics). What each
 * failure does:
 * - The `LISTEN` connection is lost (`pg_terminate_backend`, a restart, the
 *   network): reported once through `onError`; the broker connects again
 *   and reads what was published meanwhile from the table. No reset. The
 *   revocations sent meanwhile are read too, and delivered late (see
 *   `Revocation.lostAt`); when more than the 10 000 kept were sent
 *   meanwhile, `onError` says that some may have been missed.
 * - A topic lost messages to a trim before this process read them (more
 *   than `history` published during an outage): that topic's `onGap`.
 * - The database lost data (its tables were created again, or it was
 *   restored from a backup older than ids a process has seen): a new
 *   epoch, so every topic's `onGap` is called and old ids are refused as
 *   `foreign-id`; a reset, never a silent hole.
 * - The pool is exhausted or the database unreachable: `publish` rejects
 *   with `ERR_PATCHWIRE_BROKER` within `publishTimeoutMs`, and a publish
 *   that never got a connection never runs.
 *
 * The tables are created on first use when they are missing; a migration
 * tool can run {@link postgresSchema} instead.
 *
 * @param options - see {@link PostgresBrokerOptions}
 * @returns a {@link PostgresBroker}: `position`, `replay`, `revoke`,
 * `onRevoke` and `close` on top of `publish` and `subscribe`
 * @throws TypeError when `pool` is not a node-postgres Pool, or `onError` not a function
 * @throws RangeError when `history` is not a whole number from 0, `historyMs`
 * not a whole number of milliseconds from 1, or `publishTimeoutMs` not a
 * positive number up to 2147483647 (the longest `setTimeout` delay)
 * @example
 * import pg from 'pg'
 * import { createHandler, publish } from 'patchwire'
 * import { createPostgresBroker } from 'patchwire/postgres'
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const broker = createPostgresBroker({ pool })
 * const events = createHandler({ broker })
 *
 * const client = await pool.connect()
 * try {
 *   await client.query('BEGIN')
 *   await client.query('INSERT INTO messages (room, text) VALUES ($1, $2)', [1, 'hi'])
 *   await publish(broker, 'room:1', [['add', '/messages/-', 'hi']], { transaction: client })
 *   await client.query('COMMIT')
 * } catch (error) {
 *   await client.query('ROLLBACK')
 *   throw error
 * } finally {
 *   client.release()
 * }
 */
export function createPostgresBroker(options: PostgresBrokerOptions): PostgresBroker {
  const { pool, history, historyMs, publishTimeoutMs, onError } = resolveOptions(options)
  const database = new Database(pool, publishTimeoutMs)
  const feed = new Feed({ database, timeoutMs: publishTimeoutMs, onError })
  const trimmer = new Trimmer({ database, history, historyMs, onError })
  const revocations = new Revocations({ database, trimmer, onError })
  const listener = new Listener({
    database,
    onMessage: (payload) => feed.notified(payload),
    onRevoke: (payload) => revocations.received(payload),
    onListening: () => {
      feed.listening()
      revocations.listening()
    },
    onLost: () => revocations.lost(),
    onError,
  })
  const publisher = new Publisher({ pool, database, trimmer, onError })
  const reads = new HistoryReads({ database, feed, history, historyMs })
  return {
    publish: (topic, payload, publishOptions) => publisher.publish(topic, payload, publishOptions),
    subscribe: (topic, subscriber, onGap) => feed.subscribe(topic, subscriber, onGap),
    position: (topic) => reads.position(topic),
    replay: (topic, after) => reads.replay(topic, after),
    revoke: (revocation) => revocations.revoke(revocation),
    onRevoke: (revoked) => revocations.onRevoke(revoked),
    close: async () => {
      trimmer.close()
      feed.close()
      revocations.close()
      await listener.close()
    },
  }
}

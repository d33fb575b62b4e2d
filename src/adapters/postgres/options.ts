import { resolveHistorySettings } from '../broker-settings.js'
import type { PatchwireError } from '../../errors.js'
import type { PostgresPool } from './pool.js'

/** Options of {@link createPostgresBroker}. */
export interface PostgresBrokerOptions {
  /**
   * A node-postgres `Pool` (`new pg.Pool(…)`), shared with the rest of the
   * application. The broker keeps one of its connections checked out for
   * `LISTEN` for as long as it runs (until `broker.close()`), and borrows
   * another for each publish without `transaction`, each read and each trim.
   */
  pool: PostgresPool
  /**
   * Messages kept per topic for resume, in the table `patchwire_messages`
   * (trimmed about a second after a publish, so a few more may be there
   * meanwhile; a replay never hands out more than this); `0` keeps none,
   * so that every reconnect that missed a message is reset.
   * @defaultValue `1000`
   */
  history?: number
  /**
   * How long a message is kept for resume, in milliseconds from its insert.
   * An older one is no longer replayed (a resume from before it is reset)
   * and is deleted by the next trim.
   * @defaultValue `300000` (5 minutes)
   */
  historyMs?: number
  /**
   * How long a `publish` may take, in milliseconds, including the wait for
   * a connection of the pool; also bounds `position`, `replay`, `revoke`
   * and each read of new messages. A publish that timed out while its
   * statement ran may still commit (on its own) or be part of the
   * transaction (with `transaction`): roll that transaction back.
   * @defaultValue `5000`
   */
  publishTimeoutMs?: number
  /**
   * Called with each runtime failure: a lost `LISTEN` connection (once per
   * outage), a read or a trim that failed, a listener that threw, and a
   * publish that failed while nobody awaited or caught its promise.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

/**
 * {@link PostgresBrokerOptions} checked, with the defaults filled in.
 * @internal
 */
export interface PostgresBrokerSettings {
  readonly pool: PostgresPool
  readonly history: number
  readonly historyMs: number
  readonly publishTimeoutMs: number
  readonly onError: (error: PatchwireError) => void
}


/**
 * Checks the options of `createPostgresBroker` before anything is
 * connected, so that a mistake is a synchronous error naming the option.
 * @param options - what the user passed
 * @returns the settings, defaults filled in
 * @throws TypeError when `pool` is not a node-postgres `Pool` (no `connect`
 * method) or `onError` not a function
 * @throws RangeError when `history` is not a whole number from 0,
 * `historyMs` not a whole number of milliseconds from 1, or
 * `publishTimeoutMs` not a positive number up to 2147483647
 * @internal
 */
export function resolveOptions(options: PostgresBrokerOptions): PostgresBrokerSettings {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('createPostgresBroker(options): options must be an object with a pool (new pg.Pool(…))')
  }
  const { pool } = options
  if (pool === null || typeof pool !== 'object' || typeof pool.connect !== 'function') {
    throw new TypeError('createPostgresBroker: pool must be a node-postgres Pool (new pg.Pool({ connectionString })), with a connect method')
  }
  const settings = resolveHistorySettings('createPostgresBroker', options)
  return { pool, ...settings }
}

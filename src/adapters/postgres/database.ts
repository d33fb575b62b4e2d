import { PatchwireError } from '../../errors.js'
import type { PostgresPool, PostgresPoolClient, PostgresQueryable, PostgresResult } from './pool.js'
import { ENSURE_SCHEMA, UNDEFINED_TABLE } from './schema.js'

/**
 * Whether the four tables exist (a role without CREATE can use tables a
 * migration made); a database of an earlier version lacks `patchwire_revocations`.
 */
const TABLES_EXIST = `SELECT to_regclass('patchwire_state') IS NOT NULL
  AND to_regclass('patchwire_messages') IS NOT NULL
  AND to_regclass('patchwire_trims') IS NOT NULL
  AND to_regclass('patchwire_revocations') IS NOT NULL AS exists`

/**
 * The broker's way to the database: every statement runs within a deadline
 * (`publishTimeoutMs`, the wait for a connection of the pool included),
 * after the tables have been made sure of, and fails as a
 * {@link PatchwireError} of code `ERR_PATCHWIRE_BROKER`.
 *
 * A connection the pool hands out after its caller's deadline passed is
 * given back unused: a publish that was rejected for want of a connection
 * never runs later. A database that lost the tables (restored, recreated)
 * answers `undefined_table`: they are created again (with a new epoch, which
 * resets every stream) and a statement on a connection of the pool is
 * tried once more.
 * @internal
 */
export class Database {
  readonly #pool: PostgresPool
  readonly #timeoutMs: number
  #schema: Promise<void> | undefined

  /**
   * @param pool - the user's pool
   * @param timeoutMs - the deadline of each call, in milliseconds
   */
  constructor(pool: PostgresPool, timeoutMs: number) {
    this.#pool = pool
    this.#timeoutMs = timeoutMs
  }

  /** The deadline of a call made now, in milliseconds since the epoch. */
  deadline(): number {
    return Date.now() + this.#timeoutMs
  }

  /**
   * Runs `text` on a connection of the pool.
   * @param what - what it does, for the error message ("publish to topic …")
   * @returns its result; it rejects with `ERR_PATCHWIRE_BROKER`
   */
  async query(text: string, values: unknown[], what: string): Promise<PostgresResult> {
    const deadline = this.deadline()
    try {
      try {
        return await this.#attempt(text, values, deadline)
      } catch (error) {
        if (codeOf(error) !== UNDEFINED_TABLE) throw error
        this.#schema = undefined
        return await this.#attempt(text, values, deadline)
      }
    } catch (error) {
      throw brokerError(error, what)
    }
  }

  /**
   * Runs `text` on the caller's connection (its transaction): never tried
   * again, since a failed statement aborts the transaction.
   * @returns its result; it rejects with `ERR_PATCHWIRE_BROKER`
   */
  async queryOn(client: PostgresQueryable, text: string, values: unknown[], what: string): Promise<PostgresResult> {
    const deadline = this.deadline()
    try {
      await within(this.#ensureSchema(), deadline)
      return await within(client.query(text, values), deadline)
    } catch (error) {
      if (codeOf(error) === UNDEFINED_TABLE) this.#schema = undefined
      throw brokerError(error, what)
    }
  }

  /**
   * Checks a connection out of the pool within `deadline`; one that comes
   * later is given back at once.
   * @returns the connection; it rejects when the pool fails or the deadline passes
   */
  connect(deadline: number): Promise<WatchedClient> {
    const connecting = new Promise<WatchedClient>((resolve, reject) => {
      this.#pool.connect((error, client) => {
        // Watched at once, in the turn of the checkout: see watch().
        if (client === undefined) reject(error ?? new Error('the pool gave no connection'))
        else resolve(watch(client))
      })
    })
    return within(connecting, deadline, (late) => late.release())
  }

  async #attempt(text: string, values: unknown[], deadline: number): Promise<PostgresResult> {
    await within(this.#ensureSchema(), deadline)
    const client = await this.connect(deadline)
    const running = client.query(text, values)
    // Given back once the statement ends, even after the deadline: the
    // connection is busy until then.
    running.then(() => client.release(), (error: unknown) => client.release(error))
    return await within(running, deadline)
  }

  #ensureSchema(): Promise<void> {
    if (this.#schema === undefined) {
      const schema = this.#createSchema()
      this.#schema = schema
      schema.catch(() => {
        // Tried again by the next call.
        if (this.#schema === schema) this.#schema = undefined
      })
    }
    return this.#schema
  }

  async #createSchema(): Promise<void> {
    const client = await this.connect(this.deadline())
    try {
      const { rows } = await client.query(TABLES_EXIST)
      if (rows[0]?.['exists'] !== true) await client.query(ENSURE_SCHEMA)
      client.release()
    } catch (error) {
      client.release(error)
      throw error
    }
  }
}

/**
 * `promise`, or a rejection once `deadline` passes; `late` gets what it
 * resolves with after that.
 * @internal
 */
export function within<T>(promise: Promise<T>, deadline: number, late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false
    const timer = setTimeout(() => {
      expired = true
      reject(new Error('no answer within publishTimeoutMs: the pool may be exhausted or the database unreachable'))
    }, Math.max(0, deadline - Date.now()))
    promise.then((value) => {
      clearTimeout(timer)
      if (expired) late?.(value)
      else resolve(value)
    }, (error: unknown) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** A connection checked out of the pool and watched for errors until it is given back. @internal */
export interface WatchedClient extends PostgresQueryable {
  /** The connection itself, for listeners of its own (`LISTEN`). */
  readonly client: PostgresPoolClient
  /** The error the connection reported, if any. */
  readonly failure: unknown
  /** Gives it back; with an error (or after one), the pool closes it instead. */
  release(error?: unknown): void
}

/**
 * Watches a connection checked out of the pool until it is given back. A
 * server that ends sessions (a restart, `pg_terminate_backend`) may send
 * its error in the same packet as the answer before it (the end of a
 * statement, or of the connection's startup): pg emits it as an `error`
 * event at once, before any continuation of that answer has run, and
 * unwatched that would crash the process. One that failed is closed rather
 * than given back, since its state (a broken socket, an aborted
 * transaction) is unknown.
 */
function watch(client: PostgresPoolClient): WatchedClient {
  let failure: unknown
  const onError = (error: unknown): void => {
    failure ??= error
  }
  client.on('error', onError)
  return {
    client,
    get failure() { return failure },
    query: (text, values) => client.query(text, values),
    release: (error?: unknown) => {
      client.removeListener('error', onError)
      const cause = error ?? failure
      client.release(cause === undefined ? undefined : cause instanceof Error ? cause : true)
    },
  }
}

/** `error` as the broker reports it. @internal */
export function brokerError(error: unknown, what: string): PatchwireError {
  if (error instanceof PatchwireError) return error
  const detail = error instanceof Error ? `: ${error.message}` : ''
  return new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${what} on PostgreSQL${detail}`, { cause: error })
}

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
}

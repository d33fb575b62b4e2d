/**
 * The shapes of node-postgres (`pg`) objects the broker uses, typed
 * structurally so that the package depends on no client library: a `pg`
 * `Pool` and the clients it hands out fit them as they are.
 */

/** What a query answers: its rows, each column by name. */
export interface PostgresResult {
  readonly rows: readonly Record<string, unknown>[]
}

/**
 * Runs one statement: a `pg` `Client` or `PoolClient`. A transaction passed
 * to `publish(broker, topic, ops, { transaction })` is one of these, inside
 * `BEGIN … COMMIT`.
 */
export interface PostgresQueryable {
  /** Runs `text` with the parameters `$1`, `$2`, … bound to `values`. */
  query(text: string, values?: unknown[]): Promise<PostgresResult>
}

/** A connection checked out of the pool (`pg`'s `PoolClient`). */
export interface PostgresPoolClient extends PostgresQueryable {
  /** Gives it back to the pool; with an error (or `true`), the pool closes it instead. */
  release(destroy?: boolean | Error): void
  /** Adds a listener: the broker listens for `notification`, `error` and `end`. */
  on(event: string, listener: (...args: any[]) => void): unknown
  /** Removes a listener added with `on`. */
  removeListener(event: string, listener: (...args: any[]) => void): unknown
}

/** A `pg` `Pool`: the broker checks connections out of it and gives them back. */
export interface PostgresPool {
  /**
   * Checks a connection out; it waits while the pool is exhausted. The
   * broker uses the callback form: the callback runs in the same turn as
   * the checkout, so that the broker watches the connection for errors
   * before anything else can arrive on it.
   */
  connect(callback: (error: Error | undefined, client: PostgresPoolClient | undefined, done: (release?: unknown) => void) => void): void
}

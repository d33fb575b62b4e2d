import { reportUnobserved } from '../../broker/unobserved.js'
import { PatchwireError } from '../../errors.js'
import { formatEventId } from '../../protocol/event-id.js'
import type { Database } from './database.js'
import type { PostgresPool, PostgresQueryable, PostgresResult } from './pool.js'
import { PUBLISH } from './schema.js'
import type { Trimmer } from './trimmer.js'

/** What a {@link Publisher} needs from the broker. @internal */
export interface PublisherOptions {
  readonly pool: PostgresPool
  readonly database: Pick<Database, 'query' | 'queryOn'>
  readonly trimmer: Pick<Trimmer, 'published'>
  readonly onError: (error: PatchwireError) => void
}

/**
 * The publish path: one statement (see `PUBLISH` in schema.ts), in the
 * caller's transaction when `transaction` is given, else on a connection of
 * the pool, committed on its own.
 * @internal
 */
export class Publisher {
  readonly #o: PublisherOptions

  /** @param options - see {@link PublisherOptions} */
  constructor(options: PublisherOptions) {
    this.#o = options
  }

  /**
   * Publishes `payload` on `topic`.
   * @param options - `transaction`: a client of the pool inside `BEGIN … COMMIT`
   * @returns a Promise of the message's event id (with `transaction`, the id
   * it gets if the transaction commits; a rollback gives it back); it
   * rejects with a {@link PatchwireError} of code `ERR_PATCHWIRE_BROKER`, and
   * goes to `onError` instead when nobody handles the rejection
   * @throws TypeError when `transaction` is not a client (no `query`
   * method), or is the pool itself (its statements commit one by one)
   */
  publish(topic: string, payload: string, options?: { readonly transaction?: object }): Promise<string> {
    const transaction = options?.transaction
    const what = `publish to topic "${topic}"`
    let sent: Promise<PostgresResult>
    if (transaction === undefined) {
      sent = this.#o.database.query(PUBLISH, [topic, payload], what)
    } else {
      if (transaction === this.#o.pool) {
        throw new TypeError('publish(broker, topic, ops, { transaction }): transaction is the pool, whose statements each commit on their own; pass the client of BEGIN … COMMIT (const client = await pool.connect())')
      }
      if (typeof (transaction as Partial<PostgresQueryable>).query !== 'function') {
        throw new TypeError('publish(broker, topic, ops, { transaction }): transaction must be a node-postgres client (with a query method) inside BEGIN … COMMIT')
      }
      sent = this.#o.database.queryOn(transaction as PostgresQueryable, PUBLISH, [topic, payload], what)
    }
    const published = sent.then(({ rows }) => {
      this.#o.trimmer.published(topic)
      return formatEventId(String(rows[0]?.['epoch']), Number(rows[0]?.['seq']))
    })
    return reportUnobserved(published, (reason) => {
      this.#o.onError(reason instanceof PatchwireError ? reason : new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${what}`, { cause: reason }))
    })
  }
}

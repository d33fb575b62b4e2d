import type { Revocation } from '../../broker/broker.js'
import { PatchwireError } from '../../errors.js'
import type { Database } from './database.js'
import { READ_REVOCATIONS, READ_REVOCATIONS_HEAD, REVOKE } from './schema.js'
import { SerialReads, type ReadOutcome } from './serial-reads.js'
import type { Trimmer } from './trimmer.js'

/** What {@link Revocations} needs from the broker. @internal */
export interface RevocationsOptions {
  readonly database: Pick<Database, 'query'>
  readonly trimmer: Pick<Trimmer, 'revoked'>
  readonly onError: (error: PatchwireError) => void
}

/** PostgreSQL refuses a notification payload of 8000 bytes or more; the id (`"id":…,`, up to 26 bytes) is added to the JSON. */
const MAX_PAYLOAD_BYTES = 7999 - 26

/**
 * The revocation capability (see `Broker.revoke`): a revocation is a row of
 * `patchwire_revocations` and a `pg_notify` of its JSON with its id on the
 * revocations channel, which the `LISTEN` connection of every process
 * hears. This process's own listeners get it as soon as the database has
 * taken it, without waiting for the echo (which is skipped), so that they
 * get it even while its `LISTEN` connection is down.
 *
 * A process remembers the highest id it heard (from where it first
 * listened: the revocations before are not its business). When its
 * `LISTEN` connection comes back after a loss, it reads the revocations
 * above that id from the table and delivers those it did not send with
 * `lostAt` (when the connection was lost), each once: the ids heard while
 * that read runs, and the ids it delivered, are not delivered again.
 * @internal
 */
export class Revocations {
  readonly #o: RevocationsOptions
  readonly #listeners = new Set<(revocation: Revocation) => void>()
  /** Names this process in its notifications, to recognise their echo. */
  readonly #origin = Math.random().toString(36).slice(2)
  /** The highest id heard or read; undefined until the first read of the table. */
  #lastId: number | undefined
  /** When the `LISTEN` connection was lost (the first loss before it came back); undefined while nothing is to be read. */
  #lostAt: number | undefined
  /**
   * Ids not to deliver again: while the table is read, those heard; after
   * it, those it delivered, whose notification may still come.
   */
  #recent = new Set<number>()
  /** Whether the `LISTEN` connection is up, and how many times it was lost: a read clears `lostAt` only when no loss came since it started. */
  #up = false
  #losses = 0
  readonly #reads = new SerialReads(() => this.#read())
  /** While the table is read: the ids heard then go to `#recent`. */
  #reading = false
  /** Set from a failed read until one succeeds: a failing database is reported once. */
  #failing = false
  #closed = false

  /** @param options - see {@link RevocationsOptions} */
  constructor(options: RevocationsOptions) {
    this.#o = options
  }

  /**
   * Sends `revocation` to every process.
   * @returns a Promise that resolves once PostgreSQL has taken it
   * @throws TypeError when neither `identity` nor `topic` is a string
   * @throws RangeError when the two are too long for a notification (8000 bytes)
   */
  revoke(revocation: Revocation): Promise<void> {
    const filter = checkRevocation(revocation)
    if (filter === undefined) {
      throw new TypeError('revoke(revocation): give identity or topic (or both), as strings')
    }
    const payload = JSON.stringify({ origin: this.#origin, ...filter })
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`revoke(revocation): identity and topic together must fit a PostgreSQL notification (under ${MAX_PAYLOAD_BYTES} bytes of JSON)`)
    }
    return this.#o.database.query(REVOKE, [payload], 'send a revocation').then(() => {
      this.#o.trimmer.revoked()
      this.#deliver(filter)
    })
  }

  /**
   * Calls `listener` with every revocation any process sends.
   * @returns a function that stops it; idempotent
   */
  onRevoke(listener: (revocation: Revocation) => void): () => void {
    if (typeof listener !== 'function') {
      throw new TypeError('onRevoke(listener): listener must be a function')
    }
    // A wrapper: the same function registered twice is two registrations.
    const entry = (revocation: Revocation): void => listener(revocation)
    this.#listeners.add(entry)
    return () => {
      this.#listeners.delete(entry)
    }
  }

  /** A notification on the revocations channel: the revocation's JSON, with its id and origin. */
  received(payload: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(payload)
    } catch {
      parsed = undefined
    }
    const filter = checkRevocation(parsed)
    const { id } = (parsed ?? {}) as { id?: unknown }
    if (filter === undefined || typeof id !== 'number' || !Number.isSafeInteger(id)) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'a notification on the patchwire_revoke channel is not a revocation the broker sent; it was ignored'))
      return
    }
    if (this.#recent.delete(id)) return
    // Heard while the table is read: that read must not deliver it again.
    if (this.#reading) this.#recent.add(id)
    // Ids are heard in commit order, which is id order: the latest is the highest.
    this.#lastId = this.#reading ? Math.max(this.#lastId ?? 0, id) : id
    if ((parsed as { origin?: unknown }).origin === this.#origin) return
    this.#deliver(filter)
  }

  /** The `LISTEN` connection is lost: the revocations sent until it is back will be read from the table. */
  lost(): void {
    this.#up = false
    this.#losses++
    this.#lostAt ??= Date.now()
  }

  /** The `LISTEN` connection is (back) up: read where the revocations stand, or what it missed. */
  listening(): void {
    this.#up = true
    this.#reads.request()
  }

  /** Stops reading the table; nothing more is delivered from it. */
  close(): void {
    this.#closed = true
    this.#reads.close()
  }

  /** One read of the table (see {@link SerialReads}): where it stands, or what a loss missed. */
  async #read(): Promise<ReadOutcome> {
    const lostAt = this.#lostAt
    // Read while listening, with no loss meanwhile: nothing it covers can be missed any more.
    const covered = this.#up ? this.#losses : -1
    this.#reading = true
    try {
      if (this.#lastId === undefined) await this.#readHead()
      else if (lostAt !== undefined) await this.#catchUp(this.#lastId, lostAt)
      else return 'done'
      this.#failing = false
    } catch (error) {
      this.#readFailed(error)
      return 'failed'
    } finally {
      this.#reading = false
    }
    if (this.#losses === covered) this.#lostAt = undefined
    return 'done'
  }

  /** Where this process starts: the revocations before it listened are not delivered. */
  async #readHead(): Promise<void> {
    const { rows } = await this.#o.database.query(READ_REVOCATIONS_HEAD, [], 'read the newest revocation id')
    this.#lastId = Math.max(this.#lastId ?? 0, Number(rows[0]?.['id']))
    this.#recent.clear()
  }

  /** Delivers, with `lostAt`, the revocations above `after` that were not heard. */
  async #catchUp(after: number, lostAt: number): Promise<void> {
    const { rows } = await this.#o.database.query(READ_REVOCATIONS, [String(after)], 'read the revocations made while the LISTEN connection was down')
    if (this.#closed) return
    const first = rows[0]?.['first']
    const last = rows[0]?.['last']
    const lastKept = last === null || last === undefined ? 0 : Number(last)
    // Trimmed beyond the id heard, or the table lost what was heard (recreated, restored).
    if (lastKept < after || Number(first ?? after + 1) > after + 1) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `revocations made while the PostgreSQL LISTEN connection was down may have been missed: patchwire_revocations no longer holds all of those after id ${after} (trimmed, or the database lost them); the streams they should have ended still end at their until`))
    }
    if (lastKept < after) this.#lastId = lastKept
    // The notifications heard during this read are the only ones still to come twice.
    const heard = this.#recent
    this.#recent = new Set()
    for (const row of rows) {
      if (row['id'] === null) continue
      const id = Number(row['id'])
      this.#lastId = Math.max(this.#lastId ?? 0, id)
      if (heard.has(id)) continue
      this.#recent.add(id)
      let parsed: unknown
      try {
        parsed = JSON.parse(String(row['revocation']))
      } catch {
        parsed = undefined
      }
      const filter = checkRevocation(parsed)
      if (filter === undefined) {
        this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `row ${id} of patchwire_revocations is not a revocation the broker wrote; it was skipped`))
        continue
      }
      if ((parsed as { origin?: unknown }).origin !== this.#origin) this.#deliver({ ...filter, lostAt })
    }
  }

  #readFailed(error: unknown): void {
    if (this.#closed) return
    if (!this.#failing) {
      this.#failing = true
      this.#o.onError(error instanceof PatchwireError ? error : new PatchwireError('ERR_PATCHWIRE_BROKER', 'could not read the revocations from PostgreSQL', { cause: error }))
    }
  }

  #deliver(revocation: Revocation): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(revocation)
      } catch (error) {
        this.#o.onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', 'an onRevoke listener threw; the others still got the revocation', { cause: error }))
      }
    }
  }
}

/** The revocation's fields when it is one (identity or topic, strings), else undefined. */
function checkRevocation(value: unknown): Revocation | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const { identity, topic } = value as { identity?: unknown, topic?: unknown }
  if (identity !== undefined && typeof identity !== 'string') return undefined
  if (topic !== undefined && typeof topic !== 'string') return undefined
  if (identity === undefined && topic === undefined) return undefined
  return { ...(identity === undefined ? {} : { identity }), ...(topic === undefined ? {} : { topic }) }
}

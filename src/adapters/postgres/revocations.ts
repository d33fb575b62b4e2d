import type { Revocation } from '../../broker/broker.js'
import { PatchwireError } from '../../errors.js'
import type { Database } from './database.js'
import { REVOKE } from './schema.js'

/** What {@link Revocations} needs from the broker. @internal */
export interface RevocationsOptions {
  readonly database: Pick<Database, 'query'>
  readonly onError: (error: PatchwireError) => void
}

/** PostgreSQL refuses a notification payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7999

/**
 * The revocation capability (see `Broker.revoke`): a revocation is a
 * `pg_notify` on the revocations channel, which the `LISTEN` connection of
 * every process hears. This process's own listeners get it as soon as the
 * database has taken it, without waiting for the echo (which is skipped),
 * so that they get it even while its `LISTEN` connection is down.
 * @internal
 */
export class Revocations {
  readonly #o: RevocationsOptions
  readonly #listeners = new Set<(revocation: Revocation) => void>()
  /** Names this process in its notifications, to recognise their echo. */
  readonly #origin = Math.random().toString(36).slice(2)

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
    return this.#o.database.query(REVOKE, [payload], 'send a revocation').then(() => this.#deliver(filter))
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

  /** A notification on the revocations channel. */
  received(payload: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(payload)
    } catch {
      parsed = undefined
    }
    const filter = checkRevocation(parsed)
    if (filter === undefined) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'a notification on the patchwire_revoke channel is not a revocation the broker sent; it was ignored'))
      return
    }
    if ((parsed as { origin?: unknown }).origin === this.#origin) return
    this.#deliver(filter)
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

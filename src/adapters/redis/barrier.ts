import { PatchwireError } from '../../errors.js'

/** What a {@link Barrier} needs to know of the feed it guards. @internal */
export interface BarrierOptions {
  /**
   * Sends `PING` on the subscriber connection. Redis answers it after every
   * message it queued for that connection before, so once the answer is
   * back, the client has received them all. Both libraries allow `PING` on
   * a subscribed connection.
   */
  ping(): Promise<unknown>
  /** Every message up to this position has been processed (delivered, or dropped as not this process's). */
  processed(): number
  /** The highest position any reply or message has shown: all of them were published before now. */
  seen(): number
  /** Whether the feed holds messages back (an outage, a refill). */
  held(): boolean
  /** How long a wait may take, in milliseconds (`publishTimeoutMs`). */
  readonly timeoutMs: number
}

interface Waiter {
  readonly position: number
  resolve(): void
  reject(error: unknown): void
  timer: NodeJS.Timeout | undefined
  /** The round trip that will confirm it, or undefined while it needs a new one. */
  round: Round | undefined
}

interface Round {
  /** The connection it was sent on: an answer after a drop proves nothing. */
  readonly generation: number
  /** Every message up to here was published before the `PING` was sent. */
  readonly through: number
}

/**
 * Waits until every message up to a position has reached the listeners.
 *
 * A position read on the publisher connection may be ahead of what the
 * subscriber connection has delivered: a message of another topic,
 * published just before, can still be on its way. A stream started at that
 * position would then skip it. So a wait settles at once when the feed has
 * already processed a message at or after the position (messages are
 * processed in position order), and otherwise after a `PING` on the
 * subscriber connection, sent after the position was read, comes back and
 * the feed has processed everything received before it. Concurrent waits
 * share one `PING`; a position a `PING` already covered needs none.
 *
 * A `PING` whose connection dropped before it was answered proves nothing:
 * its waits are sent again once the feed has caught up after the reconnect.
 * @internal
 */
export class Barrier {
  readonly #o: BarrierOptions
  readonly #waiters = new Set<Waiter>()
  /** Counts connection drops: a round trip counts only on the connection it was sent on. */
  #generation = 0
  /** Whether rounds can be sent (the feed has caught up since the last drop). */
  #up = false
  #scheduled = false
  /** Everything up to here has been processed, as a round trip confirmed. */
  #confirmed = 0
  /** Confirmed by a round trip, but received while the feed held messages: processed at its next catch-up. */
  #pending = 0

  /** @param options - see {@link BarrierOptions} */
  constructor(options: BarrierOptions) {
    this.#o = options
  }

  /**
   * Waits until every message up to `position` has been processed.
   * @param position - a position read from Redis (or from a message)
   * @returns a Promise that resolves then; it rejects with
   * `ERR_PATCHWIRE_BROKER` after `timeoutMs`, or once the subscriber closed
   * for good
   */
  wait(position: number): Promise<void> {
    if (position <= this.#covered()) return RESOLVED
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { position, resolve, reject, timer: undefined, round: undefined }
      waiter.timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `the Redis subscriber did not confirm within ${this.#o.timeoutMs} ms (publishTimeoutMs) that it delivered every message up to position ${position}; is it connected?`))
      }, this.#o.timeoutMs)
      waiter.timer.unref()
      this.#waiters.add(waiter)
      this.#schedule()
    })
  }

  /**
   * The feed has processed everything it received and holds nothing back:
   * confirmations received meanwhile take effect, and waits without a round
   * trip get one.
   */
  caughtUp(): void {
    this.#up = true
    if (this.#pending > this.#confirmed) this.#confirmed = this.#pending
    this.#release()
    this.#schedule()
  }

  /** The subscriber connection dropped: round trips under way prove nothing. */
  lost(): void {
    this.#generation++
    this.#up = false
    for (const waiter of this.#waiters) waiter.round = undefined
  }

  /** The subscriber closed for good: every wait rejects with `error`. */
  closed(error: PatchwireError): void {
    this.lost()
    this.#pending = 0
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
    this.#waiters.clear()
  }

  #covered(): number {
    return Math.max(this.#o.processed(), this.#confirmed)
  }

  #release(): void {
    if (this.#waiters.size === 0) return
    const covered = this.#covered()
    for (const waiter of this.#waiters) {
      if (waiter.position > covered) continue
      this.#waiters.delete(waiter)
      clearTimeout(waiter.timer)
      waiter.resolve()
    }
  }

  #schedule(): void {
    if (this.#scheduled || !this.#up || this.#waiters.size === 0) return
    this.#scheduled = true
    // At the end of this turn: every wait asked for until then (the answers
    // of one batched read arrive together) shares the round trip.
    setImmediate(() => this.#send())
  }

  #send(): void {
    this.#scheduled = false
    this.#release()
    if (!this.#up) return
    let through = this.#o.seen()
    const waiters: Waiter[] = []
    for (const waiter of this.#waiters) {
      if (waiter.round !== undefined) continue
      waiters.push(waiter)
      if (waiter.position > through) through = waiter.position
    }
    if (waiters.length === 0) return
    const round: Round = { generation: this.#generation, through }
    for (const waiter of waiters) waiter.round = round
    this.#o.ping().then(
      () => this.#answered(round),
      (error: unknown) => this.#failed(round, error),
    )
  }

  #answered(round: Round): void {
    if (round.generation !== this.#generation) {
      // Cleared by lost(); waits of a later round are not touched.
      return
    }
    // Everything Redis sent before the answer has been received; unless the
    // feed holds it back, it has been processed too.
    if (this.#o.held()) {
      if (round.through > this.#pending) this.#pending = round.through
      return
    }
    if (round.through > this.#confirmed) this.#confirmed = round.through
    this.#release()
  }

  #failed(round: Round, error: unknown): void {
    // A PING cut off by a drop is sent again after the reconnect (lost()
    // cleared its waits); one Redis refused fails its waits.
    if (round.generation !== this.#generation || !this.#up) return
    for (const waiter of this.#waiters) {
      if (waiter.round !== round) continue
      this.#waiters.delete(waiter)
      clearTimeout(waiter.timer)
      waiter.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', 'the Redis subscriber refused PING, which confirms that it delivered every message up to a position; allow PING for its user', { cause: error }))
    }
  }
}

/** A wait that is already over. @internal */
export const RESOLVED = Promise.resolve()

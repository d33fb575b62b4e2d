import type { BrokerListener, Unsubscribe } from '../../broker/broker.js'
import { deliverToListeners, reportGap, type Subscription } from '../listeners.js'
import { PatchwireError } from '../../errors.js'
import { formatEventId } from '../../protocol/event-id.js'
import type { Database } from './database.js'
import { NEW_EPOCH, READ_FEED, parseRead } from './schema.js'
import { SerialReads, type ReadOutcome } from './serial-reads.js'

/**
 * A topic this process subscribes to. Its entry exists exactly while it has
 * subscriptions; one replaced by a newer one (unsubscribed, then subscribed
 * again) is ignored by the reads under way for the old one.
 */
interface Topic {
  readonly name: string
  readonly subscriptions: Set<Subscription>
  /** Its messages after the feed's position reach its listeners: set by the first read that includes it. */
  started: boolean
  /** Settles once started; undefined after the read that should have started it failed. */
  ready: Promise<void> | undefined
  settle: { resolve(): void, reject(error: unknown): void } | undefined
}

/** A wait for the feed to reach a position (see {@link Feed.reached}). */
interface Waiter {
  readonly epoch: string
  readonly seq: number
  resolve(): void
  reject(error: unknown): void
  readonly timer: ReturnType<typeof setTimeout>
}

/** What a {@link Feed} needs from the broker. @internal */
export interface FeedOptions {
  readonly database: Pick<Database, 'query'>
  /** How long {@link Feed.reached} may wait, in milliseconds. */
  readonly timeoutMs: number
  readonly onError: (error: PatchwireError) => void
}

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * The process's subscriptions and what reaches their listeners: each
 * topic's messages exactly once, in id order across all topics, read from
 * the table.
 *
 * The feed keeps one position for all its topics: every message of a
 * started topic up to it has been delivered. A read (one statement, so one
 * snapshot) fetches the messages of the started topics after the position
 * and the counter, and moves the position to the counter. Since the
 * counter's row lock makes publishing transactions commit in id order, no
 * message at or below the counter can commit later: nothing is skipped.
 * Reads are wanted when a notification names a subscribed topic, when the
 * `LISTEN` connection is back (what it missed is read then: no reset), when
 * a topic is subscribed, and when {@link Feed.reached} waits; one runs at a
 * time, and the wants that come meanwhile share the next one.
 *
 * A topic whose messages after the position were trimmed before they were
 * read gets `onGap`; a new epoch (the tables were created again), or a
 * counter below the position (a restore from an older backup, which also
 * starts a new epoch in the database), gives every topic `onGap`.
 * @internal
 */
export class Feed {
  readonly #o: FeedOptions
  readonly #topics = new Map<string, Topic>()
  #epoch: string | undefined
  #position = 0
  readonly #reads = new SerialReads(() => this.#read())
  #waiters = new Set<Waiter>()
  /** Set from a failed read until one succeeds: a failing database is reported once. */
  #failing = false
  #closed = false

  /** @param options - see {@link FeedOptions} */
  constructor(options: FeedOptions) {
    this.#o = options
  }

  /**
   * Subscribes `listener` to `name` (see `Broker.subscribe`).
   * @returns the function that unsubscribes, with the topic's `ready`
   * @throws TypeError when `listener` is not a function
   */
  subscribe(name: string, listener: BrokerListener, onGap?: () => void): Unsubscribe {
    if (typeof listener !== 'function') {
      throw new TypeError('subscribe(topic, listener, onGap?): listener must be a function')
    }
    const subscription: Subscription = { listener, onGap, active: true }
    let topic = this.#topics.get(name)
    if (topic === undefined) {
      topic = { name, subscriptions: new Set(), started: false, ready: undefined, settle: undefined }
      this.#topics.set(name, topic)
    }
    topic.subscriptions.add(subscription)
    if (!topic.started && topic.ready === undefined) {
      const pending = topic
      topic.ready = new Promise<void>((resolve, reject) => {
        pending.settle = { resolve, reject }
      })
      // Whoever reads `ready` gets the rejection; nobody has to.
      topic.ready.catch(noop)
      this.#reads.request()
    }
    const owner = topic
    const unsubscribe = (): void => {
      if (!subscription.active) return
      subscription.active = false
      owner.subscriptions.delete(subscription)
      if (owner.subscriptions.size > 0 || this.#topics.get(name) !== owner) return
      this.#topics.delete(name)
      owner.settle?.resolve()
      owner.settle = undefined
    }
    return Object.assign(unsubscribe, { ready: topic.started ? RESOLVED : topic.ready as Promise<void> })
  }

  /** A notification: `<seq> <topic>`, or `<seq>` alone for a long topic. */
  notified(payload: string): void {
    const space = payload.indexOf(' ')
    if (space !== -1 && !this.#topics.has(payload.slice(space + 1))) return
    this.#reads.request()
  }

  /** The `LISTEN` connection is (back) up: read what it may have missed. */
  listening(): void {
    this.#reads.request()
  }

  /**
   * Waits until every message up to `seq` of `epoch` that this process's
   * listeners get has reached them: at once when no topic is subscribed.
   * @returns a Promise that resolves then; it rejects with
   * `ERR_PATCHWIRE_BROKER` when that does not happen within the timeout
   */
  reached(epoch: string, seq: number): Promise<void> {
    if (this.#topics.size === 0 || this.#isPast(epoch, seq)) return RESOLVED
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        epoch,
        seq,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter)
          reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `the messages up to id ${formatEventId(epoch, seq)} were not read from PostgreSQL within publishTimeoutMs`))
        }, this.#o.timeoutMs),
      }
      this.#waiters.add(waiter)
      this.#reads.request()
    })
  }

  /** Stops reading: waits are rejected, nothing more is delivered. */
  close(): void {
    this.#closed = true
    this.#reads.close()
    const closed = new PatchwireError('ERR_PATCHWIRE_BROKER', 'the PostgreSQL broker is closed')
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer)
      waiter.reject(closed)
    }
    this.#waiters.clear()
    for (const topic of this.#topics.values()) {
      topic.settle?.reject(closed)
      topic.settle = undefined
    }
  }

  #isPast(epoch: string, seq: number): boolean {
    return epoch === this.#epoch && seq <= this.#position
  }

  /** One read of new messages (see {@link SerialReads}). */
  async #read(): Promise<ReadOutcome> {
    const included = [...this.#topics.values()]
    if (included.length === 0) {
      // No listener left to miss anything.
      this.#endWaits()
      return 'stop'
    }
    const started = included.filter((topic) => topic.started)
    let answer: ReturnType<typeof parseRead>
    try {
      const { rows } = await this.#o.database.query(READ_FEED, [this.#position, started.map((topic) => topic.name)], 'read new messages')
      answer = parseRead(rows)
    } catch (error) {
      this.#readFailed(included, error)
      return 'failed'
    }
    if (this.#closed) return 'stop'
    this.#failing = false
    return await this.#apply(answer, included, started) ? 'again' : 'done'
  }

  /**
   * Delivers what a read brought.
   * @returns true when the read must be done again (a new epoch was just started in the database)
   */
  async #apply(answer: ReturnType<typeof parseRead>, included: readonly Topic[], started: readonly Topic[]): Promise<boolean> {
    const { epoch, head } = answer
    if (this.#epoch !== undefined && epoch === this.#epoch && head < this.#position) {
      // The counter went back under the same epoch: ids would be issued
      // again for other messages. A new epoch makes every old id foreign;
      // the next read sees it (or another process's, should one be first).
      try {
        await this.#o.database.query(NEW_EPOCH, [epoch, newEpoch()], 'start a new epoch after the counter went back')
        return true
      } catch (error) {
        // Tried again by the next read, rather than in a loop here.
        this.#o.onError(error as PatchwireError)
        return false
      }
    }
    if (this.#epoch !== undefined && epoch !== this.#epoch) {
      this.#epoch = epoch
      this.#position = head
      for (const topic of started) {
        if (this.#topics.get(topic.name) === topic) reportGap(topic, this.#o.onError)
      }
      this.#settle(included)
      return false
    }
    this.#epoch = epoch
    const gapped = new Set<string>()
    for (const trim of answer.trims) gapped.add(trim.topic)
    const live = new Set(started)
    for (const topic of started) {
      if (gapped.has(topic.name) && this.#topics.get(topic.name) === topic) reportGap(topic, this.#o.onError)
    }
    for (const message of answer.messages) {
      if (message.seq <= this.#position || gapped.has(message.topic)) continue
      const topic = this.#topics.get(message.topic)
      if (topic === undefined || !live.has(topic)) continue
      deliverToListeners(topic, message.payload as string, formatEventId(epoch, message.seq), this.#o.onError)
    }
    if (head > this.#position) this.#position = head
    this.#settle(included)
    return false
  }

  /** Starts the topics a read included, and ends the waits it satisfies. */
  #settle(included: readonly Topic[]): void {
    for (const topic of included) {
      if (topic.started || this.#topics.get(topic.name) !== topic) continue
      topic.started = true
      topic.ready = RESOLVED
      topic.settle?.resolve()
      topic.settle = undefined
    }
    // A wait for another epoch ends too: the reset of every topic covers it.
    this.#endWaits((waiter) => this.#isPast(waiter.epoch, waiter.seq) || waiter.epoch !== this.#epoch)
  }

  #endWaits(isOver: (waiter: Waiter) => boolean = () => true): void {
    for (const waiter of this.#waiters) {
      if (!isOver(waiter)) continue
      clearTimeout(waiter.timer)
      this.#waiters.delete(waiter)
      waiter.resolve()
    }
  }

  #readFailed(included: readonly Topic[], error: unknown): void {
    const failure = error instanceof PatchwireError ? error : new PatchwireError('ERR_PATCHWIRE_BROKER', 'could not read new messages from PostgreSQL', { cause: error })
    if (!this.#failing) {
      this.#failing = true
      this.#o.onError(failure)
    }
    for (const topic of included) {
      if (topic.started) continue
      // The next subscription reads again instead of inheriting this failure.
      topic.ready = undefined
      topic.settle?.reject(failure)
      topic.settle = undefined
    }
  }
}

/** A random epoch: 12 characters of `[0-9a-z]`. */
function newEpoch(): string {
  let epoch = ''
  while (epoch.length < 12) epoch += Math.random().toString(36).slice(2)
  return epoch.slice(0, 12)
}

function noop(): void {}

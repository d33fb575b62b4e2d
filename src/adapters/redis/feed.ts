import { PatchwireError } from '../../errors.js'
import { formatEventId } from '../../protocol/event-id.js'
import { Barrier, RESOLVED } from './barrier.js'
import type { LocalHistory } from './local-history.js'
import type { TopicAnswer } from './reader.js'
import { parseChannelMessage } from './channel-message.js'
import { isCompleteAfter } from './scripts.js'
import type { Known } from './scripts.js'
import { deliverToListeners, reportGap } from '../listeners.js'
import type { Topic } from './topic.js'

/** A message waiting its turn: received during a refill, or read from a stream. */
interface Queued {
  readonly channel: string
  readonly epoch: string
  readonly seq: number
  readonly prev: number | undefined
  readonly payload: string
  /** Read from the topic's stream, its place in the chain already checked. */
  readonly refilled: boolean
}

/** What a {@link Feed} needs from the broker. @internal */
export interface FeedOptions {
  /** The subscribed topics by channel. */
  readonly topics: ReadonlyMap<string, Topic>
  /** The process-local cache of delivered messages. */
  readonly history: LocalHistory
  /** Reads a topic's position and its stream after `after`, waiting for the publisher. */
  read(topic: string, after?: number): Promise<TopicAnswer>
  /** Sends `PING` on the subscriber connection (see {@link Barrier}). */
  ping(): Promise<unknown>
  /** How long {@link Feed.delivered} may wait, in milliseconds. */
  readonly timeoutMs: number
  readonly onError: (error: PatchwireError) => void
}

/**
 * Turns what the subscriber connection receives into what listeners get:
 * each topic's messages exactly once, in position order across all topics,
 * with no hole that is not reported through `onGap`.
 *
 * Messages are lost on pub/sub only when the subscriber's connection drops
 * (a network failure, `CLIENT KILL TYPE pubsub`, Redis killing a slow
 * subscriber). From the drop until every topic is subscribed again and its
 * missed messages are read back from its stream, messages are held, so that
 * the refilled ones go out first and the order across topics holds; a
 * message whose `prev` shows a hole outside an outage (which Redis should
 * not produce) holds the feed the same way while that topic is refilled.
 * A hole the stream cannot fill (trimmed, expired) resets that topic
 * (`onGap`); a new epoch (Redis lost its data) resets every topic.
 * @internal
 */
export class Feed {
  readonly #topics: ReadonlyMap<string, Topic>
  readonly #history: LocalHistory
  readonly #read: (topic: string, after?: number) => Promise<TopicAnswer>
  readonly #onError: (error: PatchwireError) => void
  #epoch: string | undefined
  #seen = 0
  /** Every message up to this position has been processed: delivered, or not this process's. */
  #processed = 0
  readonly #barrier: Barrier
  /** The subscriber connection is down: hold everything until it is back and refilled. */
  #down = true
  /** Refills in flight: hold everything until they are answered. */
  #refilling = 0
  #queue: Queued[] = []
  #queueHead = 0
  /** Channels whose foreign messages were reported, so that each is reported once. */
  readonly #reportedForeign = new Set<string>()

  /** @param options - see {@link FeedOptions} */
  constructor(options: FeedOptions) {
    this.#topics = options.topics
    this.#history = options.history
    this.#read = options.read
    this.#onError = options.onError
    this.#barrier = new Barrier({
      ping: options.ping,
      processed: () => this.#processed,
      seen: () => this.#seen,
      held: () => this.#held(),
      timeoutMs: options.timeoutMs,
    })
  }

  /**
   * Waits until every message up to `position` that this process's
   * listeners get has reached them (see {@link Barrier}): at once when no
   * topic is subscribed, since no listener can then miss one.
   * @returns a Promise that resolves then; it rejects with
   * `ERR_PATCHWIRE_BROKER` when the subscriber cannot confirm it in time
   */
  delivered(position: number): Promise<void> {
    return this.#topics.size === 0 ? RESOLVED : this.#barrier.wait(position)
  }

  /** The history this process is in, as the scripts want it. */
  get known(): Known {
    return { epoch: this.#epoch, seen: this.#seen }
  }

  /** Whether the topic's messages reach listeners as they arrive (so its local history is current). */
  isCurrent(topic: Topic): boolean {
    return !this.#held() && topic.status === 'live' && topic.last !== undefined
  }

  /** A message from the subscriber connection. */
  receive(message: string, channel: string): void {
    const parsed = parseChannelMessage(message)
    if (parsed === undefined) {
      if (!this.#reportedForeign.has(channel) && this.#topics.has(channel)) {
        this.#reportedForeign.add(channel)
        this.#onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `a message on Redis channel "${channel}" is not one createRedisBroker published (every message carries its position); it was dropped. Publish through the broker only, and give each application its own prefix`))
      }
      return
    }
    const queued: Queued = { channel, epoch: parsed.epoch, seq: parsed.seq, prev: parsed.prev, payload: parsed.payload, refilled: false }
    this.#enqueue(queued)
    this.#drain()
  }

  /** The subscriber connection dropped. */
  lost(): void {
    this.#down = true
    this.#barrier.lost()
  }

  /**
   * The subscriber connection is back and `refill` are subscribed again:
   * reads what each of them missed from its stream before anything else
   * goes out. `fresh` are subscribed again with no known position (their
   * SUBSCRIBE had failed, or a refill before): reset, and started anew.
   */
  resumed(refill: readonly Topic[], fresh: readonly Topic[]): void {
    this.#down = false
    for (const topic of fresh) this.#restart(topic)
    this.#refill(refill)
  }

  /**
   * The subscriber closed for good: nothing more will arrive, every topic is
   * reset, and waits for delivery reject with `report`.
   */
  closed(report: PatchwireError): void {
    this.#down = true
    this.#queue = []
    this.#queueHead = 0
    this.#barrier.closed(report)
    for (const topic of [...this.#topics.values()]) {
      topic.last = undefined
      this.#history.stop(topic.channel)
      reportGap(topic, this.#onError)
    }
  }

  /**
   * Reads where a topic's messages start, once its first SUBSCRIBE is live.
   * @returns a Promise that resolves once the position is known, or could not be read
   */
  async start(topic: Topic): Promise<void> {
    try {
      const answer = await this.#read(topic.name)
      this.observe(answer.epoch, answer.position)
      if (this.#topics.get(topic.channel) !== topic || topic.last !== undefined) return
      topic.last = answer.position
      this.#history.start(topic.channel, answer.position)
    } catch {
      // Messages still flow; the topic's first one sets its position, and an
      // outage before that resets it. The failure itself (Redis down) is
      // reported by the connection watch.
    }
  }

  /**
   * Learns of a position from a reply (publish, position, replay). A new
   * epoch there means Redis lost its history: every topic is reset, at
   * once when nothing is held, else when the held messages are sorted out.
   * @param epoch - the reply's epoch
   * @param position - the position it carries: messages after it are new
   * @param highest - the highest position the reply shows issued
   */
  observe(epoch: string, position: number, highest = position): void {
    if (this.#epoch === undefined || epoch === this.#epoch) {
      this.#epoch = epoch
      if (highest > this.#seen) this.#seen = highest
      return
    }
    if (highest <= this.#seen || this.#held()) return
    this.#newEpoch(epoch, position)
    this.#seen = highest
  }

  #held(): boolean {
    return this.#down || this.#refilling > 0
  }

  #enqueue(message: Queued): void {
    this.#queue.push(message)
  }

  #drain(): void {
    while (!this.#held() && this.#queueHead < this.#queue.length) {
      const message = this.#queue[this.#queueHead] as Queued
      this.#queueHead++
      this.#process(message)
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue = []
      this.#queueHead = 0
    }
    if (!this.#held()) this.#barrier.caughtUp()
  }

  #process(message: Queued): void {
    const { epoch, seq } = message
    if (this.#epoch === undefined) this.#epoch = epoch
    if (epoch !== this.#epoch) {
      // Positions grow across histories: a lower one is from a history that
      // was already left behind.
      if (seq <= this.#seen) return
      this.#newEpoch(epoch, seq - 1)
    }
    if (seq > this.#seen) this.#seen = seq
    const topic = this.#topics.get(message.channel)
    const last = topic?.last
    if (topic !== undefined && topic.status !== 'failed' && !message.refilled && last !== undefined && seq > last && message.prev !== undefined && message.prev > last) {
      // The topic's previous message never arrived: put this one back, and
      // hold the feed while the hole is read from the stream.
      this.#queueHead--
      this.#refill([topic])
      return
    }
    if (seq > this.#processed) this.#processed = seq
    if (topic === undefined || topic.status === 'failed') return
    if (last !== undefined && seq <= last) return
    if (last === undefined && !this.#history.has(topic.channel)) {
      // Everything after this message's predecessor arrives from now on.
      this.#history.start(topic.channel, message.prev ?? seq - 1)
    }
    topic.last = seq
    const id = formatEventId(epoch, seq)
    this.#history.append(topic.channel, seq, id, message.payload)
    deliverToListeners(topic, message.payload, id, this.#onError)
  }

  /**
   * Reads each topic's stream after its last delivered position; the
   * entries join the held messages in position order. A topic whose hole
   * the stream cannot fill, or that cannot be read at all, is reset.
   */
  #refill(topics: readonly Topic[]): void {
    const known = topics.filter((topic) => topic.last !== undefined)
    for (const topic of topics) {
      if (topic.last === undefined) this.#restart(topic)
    }
    if (known.length === 0) {
      this.#drain()
      return
    }
    this.#refilling++
    const epoch = this.#epoch
    void Promise.allSettled(known.map(async (topic) => {
      const after = topic.last as number
      return { topic, after, answer: await this.#read(topic.name, after) }
    })).then((results) => {
      this.#refilling--
      const refilled: Queued[] = []
      for (const result of results) {
        if (result.status === 'rejected') continue
        const { topic, after, answer } = result.value
        if (answer.epoch !== epoch) {
          if (answer.position > this.#seen || answer.epoch !== this.#epoch) this.#newEpoch(answer.epoch, answer.position)
          continue
        }
        if (answer.position > this.#seen) this.#seen = answer.position
        if (this.#topics.get(topic.channel) !== topic) continue
        if (!isCompleteAfter(answer.topic, after)) {
          topic.last = answer.position
          this.#history.start(topic.channel, answer.position)
          reportGap(topic, this.#onError)
          continue
        }
        for (const entry of answer.topic.entries) refilled.push({ channel: topic.channel, epoch: answer.epoch, ...entry, refilled: true })
      }
      for (const [i, result] of results.entries()) {
        if (result.status === 'fulfilled') continue
        const topic = known[i] as Topic
        if (this.#topics.get(topic.channel) !== topic) continue
        topic.last = undefined
        this.#history.stop(topic.channel)
        reportGap(topic, this.#onError)
      }
      this.#merge(refilled)
      this.#drain()
    })
  }

  /** A topic with no known position: reset it, and let its next message start it. */
  #restart(topic: Topic): void {
    topic.last = undefined
    this.#history.stop(topic.channel)
    reportGap(topic, this.#onError)
    // Read a position to refill from, should the connection drop before
    // the topic's next message.
    void this.start(topic)
  }

  /** Puts refilled entries among the held messages, in position order. */
  #merge(refilled: Queued[]): void {
    if (refilled.length === 0) return
    const held = this.#queue.slice(this.#queueHead)
    const merged = [...refilled, ...held]
    // Stable: of a refilled entry and the same message received live, the
    // refilled one comes first and the other is then skipped.
    merged.sort((a, b) => a.seq - b.seq)
    this.#queue = merged
    this.#queueHead = 0
  }

  /**
   * Redis lost the history the process knew: every topic is reset, and
   * continues from `position` in the new one.
   */
  #newEpoch(epoch: string, position: number): void {
    this.#epoch = epoch
    this.#seen = position
    // What the new history holds up to `position` is behind the reset.
    if (position > this.#processed) this.#processed = position
    this.#history.clear()
    for (const topic of [...this.#topics.values()]) {
      if (topic.status === 'failed') continue
      topic.last = position
      this.#history.start(topic.channel, position)
      reportGap(topic, this.#onError)
    }
  }
}

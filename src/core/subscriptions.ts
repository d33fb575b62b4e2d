import type { Broker } from '../broker/broker.js'
import { PatchwireError } from '../errors.js'
import { Linger } from './linger.js'
import type { Numbering } from './numbering.js'
import { isThenable, noop } from './thenable.js'
import { Topic, type TopicStream } from './topic.js'

/** What a handler's subscriptions pass on from the broker, for topics it still holds. @internal */
export interface SubscriptionEvents {
  /** A message of `topic`, with the broker's id for it when the broker issues ids. */
  message(topic: Topic, payload: string, brokerId: string | undefined): void
  /** Messages of `topic` may have been lost. */
  gap(topic: Topic): void
}

/**
 * The topics of one handler: one broker subscription per topic however many
 * streams it has, held while a request waits for it, positioned before its
 * first stream opens, and let go `lingerMs` after its last stream left (so
 * that an ordinary reconnect finds it still subscribed). Also the membership
 * of streams in topics: each topic lists its streams, each stream knows its
 * slot in that list, so joining and leaving cost O(1).
 * @internal
 */
export class Subscriptions {
  readonly #broker: Broker
  readonly #numbering: Numbering
  readonly #lingerMs: number
  readonly #events: SubscriptionEvents
  readonly #onError: (error: PatchwireError) => void
  readonly #topics = new Map<string, Topic>()
  readonly #linger: Linger<Topic>
  #closed = false

  constructor(broker: Broker, numbering: Numbering, lingerMs: number, events: SubscriptionEvents, onError: (error: PatchwireError) => void) {
    this.#broker = broker
    this.#numbering = numbering
    this.#lingerMs = lingerMs
    this.#events = events
    this.#onError = onError
    this.#linger = new Linger(lingerMs, (topic) => this.#drop(topic))
  }

  /** Topics held, lingering ones included. */
  get size(): number {
    return this.#topics.size
  }

  /** The topic of that name, if it is held. */
  get(name: string): Topic | undefined {
    return this.#topics.get(name)
  }

  /** Every topic held. */
  topics(): IterableIterator<Topic> {
    return this.#topics.values()
  }

  /**
   * The topic, subscribed if it is not yet, held for a waiting request
   * until {@link unhold}. Its `pending` is set while the subscription is not
   * yet live and positioned.
   * @throws whatever the broker's `subscribe` (or a synchronous `position`) throws
   */
  hold(name: string): Topic {
    let topic = this.#topics.get(name)
    if (topic === undefined) topic = this.#subscribe(name)
    else this.#linger.delete(topic)
    topic.waiters++
    return topic
  }

  /** Undoes one {@link hold}. */
  unhold(topic: Topic): void {
    topic.waiters--
    this.#release(topic)
  }

  /** Puts `stream` on each of its topics. */
  join(stream: TopicStream): void {
    const { topics, slots } = stream
    for (let k = 0; k < topics.length; k++) {
      const topic = topics[k] as Topic
      slots[k] = topic.streams.push(stream) - 1
      if (stream.multi) topic.multi++
      this.#linger.delete(topic)
    }
  }

  /** Takes `stream` off its topics (a swap-remove each); false when it was not on them. */
  leave(stream: TopicStream): boolean {
    if (!stream.attached) return false
    const { topics, slots } = stream
    for (let k = 0; k < topics.length; k++) {
      const topic = topics[k] as Topic
      const index = slots[k] as number
      slots[k] = -1
      const streams = topic.streams
      const last = streams.pop() as TopicStream
      if (last !== stream) {
        streams[index] = last
        last.slots[last.topics.length === 1 ? 0 : last.topics.indexOf(topic)] = index
      }
      if (stream.multi) topic.multi--
      this.#release(topic)
    }
    return true
  }

  /**
   * Lets every topic go at once (the handler closes): gives up the waits
   * for subscriptions still under way, unsubscribes, and returns every
   * stream the topics had.
   */
  close(): Set<TopicStream> {
    this.#closed = true
    this.#linger.clear()
    const streams = new Set<TopicStream>()
    for (const topic of this.#topics.values()) {
      topic.abandon?.(new Error('the handler was closed'))
      for (const stream of topic.streams) streams.add(stream)
    }
    for (const topic of this.#topics.values()) this.#unsubscribe(topic)
    this.#topics.clear()
    return streams
  }

  #subscribe(name: string): Topic {
    const topic = new Topic(name)
    this.#topics.set(name, topic)
    const events = this.#events
    try {
      topic.unsubscribe = this.#broker.subscribe(
        name,
        (payload, id) => {
          if (this.#topics.get(name) === topic) events.message(topic, payload, id)
        },
        () => {
          if (this.#topics.get(name) === topic) events.gap(topic)
        },
      )
    } catch (error) {
      this.#topics.delete(name)
      throw error
    }
    const ready = topic.unsubscribe.ready
    if (isThenable(ready)) {
      topic.pending = this.#whenLive(topic, Promise.resolve(ready).then(() => this.#numbering.startPosition(name)))
      return topic
    }
    try {
      const position = this.#numbering.startPosition(name)
      if (isThenable(position)) topic.pending = this.#whenLive(topic, position)
      else this.#numbering.start(topic, position)
    } catch (error) {
      this.#topics.delete(name)
      this.#unsubscribe(topic)
      throw error
    }
    return topic
  }

  /** Holds the topic's first streams until the subscription is live and positioned. */
  #whenLive(topic: Topic, live: PromiseLike<unknown>): Promise<void> {
    const settled = new Promise<unknown>((resolve, reject) => {
      topic.abandon = reject
      Promise.resolve(live).then(resolve, reject)
    })
    const pending = settled.then((position) => {
      topic.pending = undefined
      topic.abandon = undefined
      this.#numbering.start(topic, position)
    }).catch((error: unknown) => {
      topic.pending = undefined
      topic.abandon = undefined
      const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker could not subscribe to topic "${topic.name}"`, { cause: error })
      if (this.#topics.get(topic.name) === topic) {
        this.#topics.delete(topic.name)
        this.#linger.delete(topic)
        this.#unsubscribe(topic)
        if (!this.#closed) this.#onError(failure)
      }
      throw failure
    })
    // The waiting requests handle the failure; this keeps it from counting as unhandled.
    pending.catch(noop)
    return pending
  }

  /** A topic nobody uses any more lingers, so that an ordinary reconnect finds it. */
  #release(topic: Topic): void {
    if (topic.streams.length > 0 || topic.waiters > 0 || this.#topics.get(topic.name) !== topic) return
    // A topic still subscribing lingers on the timer even with lingerMs 0,
    // so that the streams waiting for it open before it is let go.
    if (this.#lingerMs === 0 && topic.pending === undefined) this.#drop(topic)
    else this.#linger.add(topic)
  }

  #drop(topic: Topic): void {
    this.#linger.delete(topic)
    this.#topics.delete(topic.name)
    this.#unsubscribe(topic)
  }

  #unsubscribe(topic: Topic): void {
    try {
      topic.unsubscribe()
    } catch (error) {
      this.#onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker failed to unsubscribe from topic "${topic.name}"`, { cause: error }))
    }
  }
}

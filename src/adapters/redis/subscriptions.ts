import type { BrokerListener, Unsubscribe } from '../../broker/broker.js'
import { PatchwireError } from '../../errors.js'
import { RESOLVED } from './barrier.js'
import type { Channels } from './clients.js'
import type { Feed } from './feed.js'
import type { LocalHistory } from './local-history.js'
import { reportGap } from '../listeners.js'
import type { Subscription, Topic } from './topic.js'

/** A topic as its subscriptions keep it: with its SUBSCRIBE under way. @internal */
export interface SubscribedTopic extends Topic {
  /** Counts SUBSCRIBE attempts: only the latest one's outcome counts. */
  attempt: number
  /** Settles the pending `ready` of the topic's first subscriptions. */
  settle: { resolve(): void, reject(error: unknown): void } | undefined
}

/** What {@link Subscriptions} needs from the broker. @internal */
export interface SubscriptionsOptions {
  /** The subscribed topics by channel, shared with the feed (which reads it). */
  readonly topics: Map<string, SubscribedTopic>
  /** SUBSCRIBE and UNSUBSCRIBE on the subscriber connection. */
  readonly channels: Channels
  /** The topic's channel: the broker's prefix and the topic. */
  channelOf(topic: string): string
  /** Whether the subscriber connection is up now. */
  isConnected(): boolean
  readonly feed: Pick<Feed, 'start' | 'delivered' | 'resumed'>
  /** The process-local cache of delivered messages: a topic let go is forgotten there. */
  readonly history: Pick<LocalHistory, 'stop'>
  readonly onError: (error: PatchwireError) => void
}

/**
 * The process's topic subscriptions on the subscriber connection: one
 * SUBSCRIBE per topic however many listeners it has, UNSUBSCRIBE after the
 * last one leaves, and every topic subscribed again when the connection
 * comes back.
 * @internal
 */
export class Subscriptions {
  readonly #o: SubscriptionsOptions
  readonly #topics: Map<string, SubscribedTopic>
  /**
   * Channels let go whose UNSUBSCRIBE was not confirmed: it is sent again
   * when the subscriber reconnects. One cut off by an outage would otherwise
   * stay subscribed, since node-redis subscribes it again by itself. The
   * value stands for the channel's latest UNSUBSCRIBE: only its confirmation
   * clears the entry, not that of an older one (the channel was subscribed
   * and let go again meanwhile) while the latest may still be cut off.
   */
  readonly #leaving = new Map<string, object>()
  /** Set while the subscriber's client is closed for good: nothing can be subscribed until it connects again. */
  #closed: PatchwireError | undefined
  /** Counts the subscriber's reconnections: a later one supersedes the resubscription of an earlier one still under way. */
  #generation = 0

  /** @param options - see {@link SubscriptionsOptions} */
  constructor(options: SubscriptionsOptions) {
    this.#o = options
    this.#topics = options.topics
  }

  /**
   * Subscribes `listener` to `name` (see `Broker.subscribe`).
   * @returns the function that unsubscribes, with its `ready` Promise
   * @throws TypeError when `listener` is not a function
   */
  subscribe(name: string, listener: BrokerListener, onGap?: () => void): Unsubscribe {
    if (typeof listener !== 'function') {
      throw new TypeError('subscribe(topic, listener, onGap?): listener must be a function')
    }
    if (this.#closed !== undefined) {
      // A rejection the handler answers at once, rather than a subscription
      // that never hears anything.
      const ready = Promise.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot subscribe to topic "${name}": the Redis subscriber is closed for good`, { cause: this.#closed }))
      ready.catch(noop)
      return Object.assign(() => undefined, { ready })
    }
    const channel = this.#o.channelOf(name)
    const subscription: Subscription = { listener, onGap, active: true }
    let topic = this.#topics.get(channel)
    if (topic === undefined) {
      topic = { name, channel, subscriptions: new Set(), ready: undefined, status: 'subscribing', last: undefined, attempt: 0, settle: undefined }
      this.#topics.set(channel, topic)
      this.#leaving.delete(channel)
    }
    topic.subscriptions.add(subscription)
    // A new topic, or one whose last SUBSCRIBE failed.
    if (topic.ready === undefined) this.#open(topic)
    const owner = topic
    const unsubscribe = (): void => {
      if (!subscription.active) return
      subscription.active = false
      owner.subscriptions.delete(subscription)
      if (owner.subscriptions.size > 0 || this.#topics.get(channel) !== owner) return
      this.#topics.delete(channel)
      this.#o.history.stop(channel)
      // Nothing to wait for any more.
      owner.settle?.resolve()
      owner.settle = undefined
      this.#unsubscribe(channel)
    }
    return Object.assign(unsubscribe, { ready: topic.ready as Promise<void> })
  }

  /**
   * The subscriber is (back) up: every topic is subscribed again (both
   * libraries resubscribe by themselves, but node-redis forgets a channel
   * whose SUBSCRIBE was cut off, and ioredis may be configured not to;
   * SUBSCRIBE is idempotent), then what each missed is refilled. On the
   * first connection nothing was missed: only the topics whose SUBSCRIBE
   * was refused before it (node-redis refuses them) are subscribed again.
   */
  resubscribe(first: boolean): void {
    this.#closed = undefined
    const mine = ++this.#generation
    const refill: SubscribedTopic[] = []
    const fresh: SubscribedTopic[] = []
    const pending: Promise<unknown>[] = []
    for (const topic of this.#topics.values()) {
      if (first && topic.status !== 'failed') continue
      if (topic.status === 'subscribing') {
        // Its first SUBSCRIBE may have been cut off: this one takes over.
        this.#open(topic)
        continue
      }
      const wasKnown = topic.status === 'live' && topic.last !== undefined
      const attempt = ++topic.attempt
      pending.push(this.#o.channels.subscribe(topic.channel).then(
        () => {
          if (!this.#isLatest(topic, attempt)) return
          topic.status = 'live'
          this.#settleReady(topic)
          ;(wasKnown ? refill : fresh).push(topic)
        },
        (error: unknown) => {
          if (this.#isLatest(topic, attempt)) this.#failed(topic, error)
        },
      ))
    }
    for (const channel of this.#leaving.keys()) {
      if (!this.#topics.has(channel)) this.#unsubscribe(channel)
    }
    void Promise.allSettled(pending).then(() => {
      if (this.#generation === mine && this.#o.isConnected()) this.#o.feed.resumed(refill, fresh)
    })
  }

  /** The subscriber closed for good: new subscriptions are refused with `report` until it is back. */
  closed(report: PatchwireError): void {
    this.#closed = report
  }

  /**
   * A topic's first SUBSCRIBE (or the first after one failed): once it is
   * live, the start position is read and the topic's `ready` resolves.
   */
  #open(topic: SubscribedTopic): void {
    topic.status = 'subscribing'
    // A SUBSCRIBE sent again after a reconnect settles the `ready` already handed out.
    if (topic.settle === undefined) {
      topic.ready = new Promise<void>((resolve, reject) => {
        topic.settle = { resolve, reject }
      })
      // Whoever reads `ready` gets the rejection; nobody has to.
      topic.ready.catch(noop)
    }
    const attempt = ++topic.attempt
    this.#o.channels.subscribe(topic.channel).then(
      async () => {
        if (!this.#isLatest(topic, attempt)) return
        topic.status = 'live'
        await this.#o.feed.start(topic)
        if (!this.#isLatest(topic, attempt)) return
        // Messages of other topics published before the start position may
        // still be on their way; `ready` waits for them. Should that fail,
        // the subscription still works: the `position` asked next waits too,
        // and reports it.
        if (topic.last !== undefined) await this.#o.feed.delivered(topic.last).catch(noop)
        if (!this.#isLatest(topic, attempt)) return
        this.#settleReady(topic)
      },
      (error: unknown) => {
        if (this.#isLatest(topic, attempt)) this.#failed(topic, error)
      },
    )
  }

  #isLatest(topic: SubscribedTopic, attempt: number): boolean {
    return this.#topics.get(topic.channel) === topic && topic.attempt === attempt
  }

  #settleReady(topic: SubscribedTopic): void {
    topic.ready = RESOLVED
    topic.settle?.resolve()
    topic.settle = undefined
  }

  #failed(topic: SubscribedTopic, error: unknown): void {
    const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', `could not subscribe to Redis channel "${topic.channel}"; its streams are reset, and it is subscribed again when the subscriber reconnects or the topic is subscribed again`, { cause: error })
    topic.status = 'failed'
    // The next subscription sends SUBSCRIBE again instead of inheriting
    // this failure while other subscriptions keep the topic.
    topic.ready = undefined
    topic.last = undefined
    this.#o.history.stop(topic.channel)
    this.#o.onError(failure)
    topic.settle?.reject(failure)
    topic.settle = undefined
    reportGap(topic, this.#o.onError)
  }

  #unsubscribe(channel: string): void {
    const latest = {}
    this.#leaving.set(channel, latest)
    // A closed connection holds no subscription; should the client connect
    // again, the channel is unsubscribed then.
    if (this.#closed !== undefined) return
    this.#o.channels.unsubscribe(channel).then(
      () => {
        if (this.#leaving.get(channel) === latest) this.#leaving.delete(channel)
      },
      (error: unknown) => {
        // The channel stays in `leaving` (only a new subscription or the
        // confirmation of a later UNSUBSCRIBE takes it out), so the reconnect
        // sends UNSUBSCRIBE again.
        if (this.#topics.has(channel)) return
        this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `could not unsubscribe from Redis channel "${channel}"; its messages are ignored, and it is unsubscribed again when the subscriber reconnects`, { cause: error }))
      },
    )
  }
}

function noop(): void {}

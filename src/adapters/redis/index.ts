import type { Broker, BrokerListener } from '../../broker/broker.js'
import { PatchwireError, reportToConsole } from '../../errors.js'

/**
 * The part of a node-redis client the broker uses; a client from
 * `createClient()` of node-redis 4.7 or later fits. Typed structurally so
 * that patchwire does not depend on `redis`. Earlier 4.x clients are not
 * supported: those before 4.2 have no `isReady` and are refused, and in
 * restart tests 4.2 to 4.6 delivered a message twice or reported an outage
 * twice.
 */
export interface NodeRedisClient {
  /** True while the connection is up and usable. */
  readonly isReady: boolean
  /** False once the client is closed for good (or before `connect()`). */
  readonly isOpen: boolean
  /** `PUBLISH channel message` */
  publish(channel: string, message: string): Promise<unknown>
  /** `SUBSCRIBE channel`, with a listener called as `(message, channel)` */
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  /** Removes the listener; `UNSUBSCRIBE channel` once it was the channel's last one */
  unsubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  /** EventEmitter `on`: the broker listens to `ready`, `reconnecting`, `error` and `end` */
  on(event: string, listener: (...args: any[]) => void): unknown
}

/**
 * The part of an ioredis (v5 or later) client the broker uses; a `new Redis()` fits.
 * Typed structurally so that patchwire does not depend on `ioredis`.
 */
export interface IoRedisClient {
  /** The connection state; `'ready'` while it is usable. */
  readonly status: string
  /** `PUBLISH channel message` */
  publish(channel: string, message: string): Promise<unknown>
  /** `SUBSCRIBE channel`; messages arrive as `message` events */
  subscribe(channel: string): Promise<unknown>
  /** `UNSUBSCRIBE channel` */
  unsubscribe(channel: string): Promise<unknown>
  /** EventEmitter `on`: the broker listens to `message`, `ready`, `reconnecting`, `error` and `end` */
  // `any[]` as in EventEmitter's own signature: with `unknown[]` or `never[]`
  // the typed `on` overloads of the libraries would not fit.
  on(event: string, listener: (...args: any[]) => void): unknown
}

/** A node-redis or an ioredis client; which one is detected at run time from its shape. */
export type RedisClient = NodeRedisClient | IoRedisClient

/** Options of {@link createRedisBroker}. */
export interface RedisBrokerOptions {
  /**
   * Sends `PUBLISH`. A connected client, dedicated or shared with the rest of
   * the application; it must not be in subscriber mode. `publish` rejects
   * until it is ready: connect it first (with ioredis, create it with
   * `lazyConnect: true` and `await client.connect()`).
   */
  publisher: RedisClient
  /**
   * Receives messages. A connected client of its own (a subscribed
   * connection can do nothing else): `publisher.duplicate()`, connected. Keep
   * the client's automatic reconnection on (the default of both libraries):
   * once it gives up, the broker reports it, resets every topic's streams,
   * and refuses new subscriptions.
   */
  subscriber: RedisClient
  /**
   * Prepended to every topic to form the Redis channel name, so that several
   * applications can share one Redis.
   * @defaultValue `'patchwire:'`
   */
  prefix?: string
  /**
   * How long a `publish` may wait for Redis to confirm, in milliseconds,
   * before it rejects. It bounds a publish caught by a connection that hangs
   * instead of failing; a publish that timed out may still reach subscribers
   * later.
   * @defaultValue `5000`
   */
  publishTimeoutMs?: number
  /**
   * Called with each runtime failure: a lost connection (once per outage and
   * client), a client that closed for good (it gave up reconnecting), a
   * `SUBSCRIBE` or `UNSUBSCRIBE` that failed, a listener that threw. Failed
   * publishes are not reported here: their promise rejects.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

const DEFAULT_PREFIX = 'patchwire:'
const DEFAULT_PUBLISH_TIMEOUT_MS = 5000
// setTimeout fires at once (after 1 ms) for any delay above this.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Creates a {@link Broker} over Redis pub/sub, so that a publish in any
 * process reaches the streams of every process connected to the same Redis.
 *
 * Each topic is the Redis channel `prefix + topic`; the process holds one
 * `SUBSCRIBE` per topic however many listeners it has, and sends
 * `UNSUBSCRIBE` when the last one leaves. Payloads cross Redis unchanged.
 * The function `subscribe` returns carries a `ready` Promise that settles
 * when Redis has answered the topic's `SUBSCRIBE` (it rejects with
 * `ERR_PATCHWIRE_BROKER` if that failed); a handler holds a topic's first
 * streams until then. A subscription to a topic whose last `SUBSCRIBE`
 * failed sends another.
 *
 * The broker adds an `error` listener to both clients, so a lost connection
 * is reported through `onError` instead of crashing the process. While the
 * publisher is not connected, `publish` rejects at once instead of waiting in
 * the client's offline queue. When the subscriber reconnects, every active
 * topic is subscribed again, then each subscription's `onGap` is called,
 * since messages published during the outage are lost. If the subscriber's
 * client gives up reconnecting, that is reported once, every `onGap` is
 * called, and `subscribe` hands out subscriptions whose `ready` rejects
 * (until the client connects again).
 *
 * @param options - see {@link RedisBrokerOptions}
 * @returns a {@link Broker}; its `publish` rejects with a {@link PatchwireError}
 * of code `ERR_PATCHWIRE_BROKER` (the client's error as `cause`) when Redis
 * is unreachable or does not confirm within `publishTimeoutMs`
 * @throws TypeError when a client is missing or is neither a node-redis nor an
 * ioredis client, when both options are the same client, or when `prefix` is
 * not a string or `onError` not a function
 * @throws RangeError when `publishTimeoutMs` is not a positive number up to
 * 2147483647 (the longest `setTimeout` delay)
 * @example
 * import { createClient } from 'redis'
 * import { createHandler, publish } from 'patchwire'
 * import { createRedisBroker } from 'patchwire/redis'
 *
 * const publisher = await createClient({ url: process.env.REDIS_URL }).connect()
 * const subscriber = await publisher.duplicate().connect()
 * const broker = createRedisBroker({ publisher, subscriber })
 * const events = createHandler({ broker })
 * await publish(broker, 'room:1', [['add', '/messages/-', 'hi']])
 */
export function createRedisBroker(options: RedisBrokerOptions): Broker {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('createRedisBroker(options): options must be an object with publisher and subscriber clients')
  }
  const { publisher, subscriber } = options
  const publisherKind = clientKind(publisher, 'publisher')
  const subscriberKind = clientKind(subscriber, 'subscriber')
  if (publisher === subscriber) {
    throw new TypeError('createRedisBroker: publisher and subscriber must be two connections, since a subscribed one cannot PUBLISH; pass subscriber: publisher.duplicate() (node-redis) or a second new Redis() (ioredis)')
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') {
    throw new TypeError(`createRedisBroker: prefix must be a string, got ${typeof prefix}`)
  }
  const publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS
  if (typeof publishTimeoutMs !== 'number' || !(publishTimeoutMs > 0 && publishTimeoutMs <= MAX_TIMER_MS)) {
    throw new RangeError(`createRedisBroker: publishTimeoutMs must be a positive number of milliseconds, at most ${MAX_TIMER_MS} (the longest setTimeout delay), got ${String(publishTimeoutMs)}`)
  }
  const onError = options.onError ?? reportToConsole
  if (typeof onError !== 'function') {
    throw new TypeError(`createRedisBroker: onError must be a function, got ${typeof onError}`)
  }

  // Keyed by channel (prefix + topic). A topic's entry exists exactly while it
  // has listeners; an entry replaced by a newer one (unsubscribed, then
  // subscribed again) ignores the outcome of its old SUBSCRIBE.
  const topics = new Map<string, Topic>()
  // Channels let go whose UNSUBSCRIBE was not confirmed: it is sent again
  // when the subscriber reconnects. One cut off by an outage would otherwise
  // stay subscribed, since node-redis subscribes it again by itself. The
  // value stands for the channel's latest UNSUBSCRIBE: only its confirmation
  // clears the entry, not that of an older one (the channel was subscribed
  // and let go again meanwhile) while the latest may still be cut off.
  const leaving = new Map<string, object>()
  // Set while the subscriber's client is closed for good: nothing can be
  // subscribed until it connects again.
  let subscriberClosed: PatchwireError | undefined

  const deliver = (message: string, channel: string): void => {
    const topic = topics.get(channel)
    if (topic === undefined) return
    // A snapshot, so that a listener that subscribes during delivery does not
    // get this message; `active` skips one that unsubscribed meanwhile.
    for (const subscription of [...topic.subscriptions]) {
      if (!subscription.active) continue
      try {
        subscription.listener(message)
      } catch (error) {
        onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `a listener of topic "${topic.name}" threw; the others still got the message`, { cause: error }))
      }
    }
  }

  const channels = subscriberKind === 'node-redis'
    ? nodeRedisChannels(subscriber as NodeRedisClient, deliver)
    : ioRedisChannels(subscriber as IoRedisClient, deliver)

  const gap = (topic: Topic): void => {
    for (const subscription of [...topic.subscriptions]) {
      if (!subscription.active || subscription.onGap === undefined) continue
      try {
        subscription.onGap()
      } catch (error) {
        onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `the onGap callback of topic "${topic.name}" threw`, { cause: error }))
      }
    }
  }

  /**
   * Sends SUBSCRIBE; the promise settles with Redis's answer, which also
   * decides the `ready` that later subscriptions of the topic get.
   */
  const subscribeChannel = (topic: Topic, afterOutage: boolean): Promise<void> => {
    const confirmed = attempt(() => channels.subscribe(topic.channel)).then(
      () => {
        if (topics.get(topic.channel) !== topic) return
        // Live now, even if an earlier SUBSCRIBE of the topic failed.
        topic.ready = RESOLVED
        if (afterOutage) gap(topic)
      },
      (error: unknown) => {
        const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', `could not subscribe to Redis channel "${topic.channel}"; its streams are reset, and it is subscribed again when the subscriber reconnects`, { cause: error })
        if (topics.get(topic.channel) === topic) {
          // The next subscription sends SUBSCRIBE again instead of
          // inheriting this failure while other subscriptions keep the topic.
          topic.ready = undefined
          onError(failure)
          gap(topic)
        }
        throw failure
      },
    )
    // Whoever reads `ready` gets the rejection; nobody has to.
    confirmed.catch(noop)
    return confirmed
  }

  const unsubscribeChannel = (channel: string): void => {
    const latest = {}
    leaving.set(channel, latest)
    // A closed connection holds no subscription; should the client connect
    // again, the channel is unsubscribed then.
    if (subscriberClosed !== undefined) return
    attempt(() => channels.unsubscribe(channel)).then(
      () => {
        if (leaving.get(channel) === latest) leaving.delete(channel)
      },
      (error: unknown) => {
        // The channel stays in `leaving` (only a new subscription or the
        // confirmation of a later UNSUBSCRIBE takes it out), so the reconnect
        // sends UNSUBSCRIBE again.
        if (topics.has(channel)) return
        onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `could not unsubscribe from Redis channel "${channel}"; its messages are ignored, and it is unsubscribed again when the subscriber reconnects`, { cause: error }))
      },
    )
  }

  const publisherError = watchConnection(publisher, publisherKind, 'publisher', onError, noop, noop)
  watchConnection(subscriber, subscriberKind, 'subscriber', onError, () => {
    subscriberClosed = undefined
    // Both libraries resubscribe by themselves, but node-redis forgets a
    // channel whose SUBSCRIBE was cut off, and ioredis may be configured not
    // to; SUBSCRIBE is idempotent, so the broker makes sure of every topic.
    for (const topic of topics.values()) void subscribeChannel(topic, true)
    for (const channel of leaving.keys()) {
      if (!topics.has(channel)) unsubscribeChannel(channel)
    }
  }, (closed) => {
    subscriberClosed = closed
    // Nothing more will arrive: the streams must not wait in silence.
    for (const topic of [...topics.values()]) gap(topic)
  })

  return {
    publish(topic, payload) {
      const channel = prefix + topic
      if (!isReady(publisher, publisherKind)) {
        return Promise.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot publish to topic "${topic}": the Redis publisher is not connected (${connectionState(publisher, publisherKind)})`, { cause: publisherError() }))
      }
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis did not confirm the publish to topic "${topic}" within ${publishTimeoutMs} ms; it may still be delivered later`))
        }, publishTimeoutMs)
        timer.unref()
        attempt(() => publisher.publish(channel, payload)).then(
          () => {
            clearTimeout(timer)
            resolve()
          },
          (error: unknown) => {
            clearTimeout(timer)
            reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis refused the publish to topic "${topic}"`, { cause: error }))
          },
        )
      })
    },
    subscribe(name, listener, onGap) {
      if (typeof listener !== 'function') {
        throw new TypeError('subscribe(topic, listener, onGap?): listener must be a function')
      }
      if (subscriberClosed !== undefined) {
        // A rejection the handler answers at once, rather than a subscription
        // that never hears anything.
        const ready = Promise.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot subscribe to topic "${name}": the Redis subscriber is closed for good`, { cause: subscriberClosed }))
        ready.catch(noop)
        return Object.assign(() => undefined, { ready })
      }
      const channel = prefix + name
      const subscription: Subscription = { listener, onGap, active: true }
      let topic = topics.get(channel)
      if (topic === undefined) {
        topic = { name, channel, subscriptions: new Set(), ready: undefined }
        topics.set(channel, topic)
        leaving.delete(channel)
      }
      topic.subscriptions.add(subscription)
      // A new topic, or one whose last SUBSCRIBE failed.
      topic.ready ??= subscribeChannel(topic, false)
      const owner = topic
      const unsubscribe = (): void => {
        if (!subscription.active) return
        subscription.active = false
        owner.subscriptions.delete(subscription)
        if (owner.subscriptions.size > 0 || topics.get(channel) !== owner) return
        topics.delete(channel)
        unsubscribeChannel(channel)
      }
      return Object.assign(unsubscribe, { ready: topic.ready })
    },
  }
}

interface Subscription {
  readonly listener: BrokerListener
  readonly onGap: (() => void) | undefined
  active: boolean
}

interface Topic {
  readonly name: string
  readonly channel: string
  readonly subscriptions: Set<Subscription>
  /**
   * Settles once Redis answered the topic's SUBSCRIBE; resolved once one
   * succeeded, undefined once the last one failed.
   */
  ready: Promise<void> | undefined
}

const RESOLVED = Promise.resolve()

function noop(): void {}

type ClientKind = 'node-redis' | 'ioredis'

/** SUBSCRIBE/UNSUBSCRIBE on one channel, whatever the client library. */
interface Channels {
  subscribe(channel: string): Promise<unknown>
  unsubscribe(channel: string): Promise<unknown>
}

function clientKind(client: unknown, option: 'publisher' | 'subscriber'): ClientKind {
  if (client !== null && typeof client === 'object') {
    const shape = client as Partial<Record<string, unknown>>
    const hasMethods = ['publish', 'subscribe', 'unsubscribe', 'on'].every((name) => typeof shape[name] === 'function')
    if (hasMethods && typeof shape['isReady'] === 'boolean' && typeof shape['isOpen'] === 'boolean') return 'node-redis'
    if (hasMethods && typeof shape['status'] === 'string') return 'ioredis'
  }
  throw new TypeError(`createRedisBroker: ${option} must be a connected node-redis client (createClient()) or ioredis client (new Redis()), got ${client === null ? 'null' : typeof client}`)
}

function isReady(client: RedisClient, kind: ClientKind): boolean {
  return kind === 'node-redis' ? (client as NodeRedisClient).isReady : (client as IoRedisClient).status === 'ready'
}

function connectionState(client: RedisClient, kind: ClientKind): string {
  return kind === 'node-redis' ? 'isReady: false' : `status: ${(client as IoRedisClient).status}`
}

function nodeRedisChannels(client: NodeRedisClient, deliver: (message: string, channel: string) => void): Channels {
  // One listener function for every channel, so that UNSUBSCRIBE removes
  // exactly what SUBSCRIBE added.
  return {
    // node-redis keeps a SUBSCRIBE sent to a closed client pending forever.
    subscribe: (channel) => client.isOpen
      ? client.subscribe(channel, deliver)
      : Promise.reject(new Error('the node-redis subscriber is closed (isOpen: false)')),
    unsubscribe: (channel) => client.unsubscribe(channel, deliver),
  }
}

function ioRedisChannels(client: IoRedisClient, deliver: (message: string, channel: string) => void): Channels {
  // ioredis emits every message of the connection; channels the broker did
  // not subscribe are ignored by `deliver`.
  client.on('message', (channel: string, message: string) => deliver(message, channel))
  return {
    subscribe: (channel) => client.subscribe(channel),
    unsubscribe: (channel) => client.unsubscribe(channel),
  }
}

/**
 * Reports the loss of a client's connection once per outage and calls
 * `onReconnect` when it is back; reports a client that closed for good once
 * and calls `onClose` with that report. Listening to `error` is also what
 * keeps an unhandled `error` event from crashing the process.
 * @returns a function giving the error that took the connection down, while it is down
 */
function watchConnection(client: RedisClient, kind: ClientKind, role: 'publisher' | 'subscriber', onError: (error: PatchwireError) => void, onReconnect: () => void, onClose: (error: PatchwireError) => void): () => unknown {
  let down = !isReady(client, kind)
  let closed = false
  let lastError: unknown
  const consequence = role === 'publisher'
    ? 'publish rejects until it is back'
    : 'once it is back, every topic is subscribed again and its streams are reset'
  const closedConsequence = role === 'publisher'
    ? 'publish rejects'
    : 'every topic\'s streams are reset, and new subscriptions are refused'
  const lose = (error?: unknown): void => {
    if (error !== undefined) lastError = error
    if (down) return
    down = true
    onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `lost the connection of the Redis ${role}; the client reconnects by itself, and ${consequence}`, { cause: error }))
  }
  const close = (): void => {
    if (closed) return
    closed = true
    down = true
    const report = new PatchwireError('ERR_PATCHWIRE_BROKER', `the Redis ${role} closed for good: its client stopped reconnecting; ${closedConsequence} until the client is connected again`, { cause: lastError })
    onError(report)
    onClose(report)
  }
  client.on('error', (error: unknown) => {
    // node-redis emits no `end` when its reconnectStrategy gives up: the
    // client has closed itself by the time it emits the last `error`.
    if (kind === 'node-redis' && !(client as NodeRedisClient).isOpen) {
      lastError = error
      close()
    } else {
      lose(error)
    }
  })
  // Both libraries emit `reconnecting` when a connection drops, including an
  // ioredis one closed by the server without an error; a deliberate
  // `quit()`/`close()` emits none of these, so a shutdown is not reported.
  client.on('reconnecting', () => lose())
  // ioredis emits `end` when its retryStrategy gives up, and both libraries
  // when the application closes the client: reported only for a connection
  // that was already lost, since a shutdown closes a working one.
  client.on('end', () => {
    if (down) close()
  })
  client.on('ready', () => {
    if (!down) return
    down = false
    closed = false
    lastError = undefined
    onReconnect()
  })
  return () => lastError
}

/** Calls a client method, turning a synchronous throw into a rejection. */
function attempt(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return call()
  } catch (error) {
    return Promise.reject(error)
  }
}

import { resolveHistorySettings } from '../broker-settings.js'
import type { PatchwireError } from '../../errors.js'
import { connectionOf } from './clients.js'
import type { Connection, RedisClient } from './clients.js'

/** Options of {@link createRedisBroker}. */
export interface RedisBrokerOptions {
  /**
   * Runs the broker's scripts (publish, position, replay). A client of
   * either library, dedicated or shared with the rest of the application;
   * it must not be in subscriber mode. Created the usual way
   * (`await createClient({ url }).connect()`, or `new Redis(url)`): a
   * publish made before its first connection waits for it (up to
   * `publishTimeoutMs`); during a later outage, publish rejects at once.
   */
  publisher: RedisClient
  /**
   * Receives messages; needed by `subscribe`, `position` and `replay`, so
   * that a process that only publishes (a worker, a job) can leave it out
   * and hold one connection. A client of its own (a subscribed connection can do
   * nothing else but `PING`, which the broker sends to confirm delivery):
   * `publisher.duplicate()` (node-redis, connected) or a second
   * `new Redis(url)`; its user must be allowed `SUBSCRIBE`, `UNSUBSCRIBE`
   * and `PING`. Keep the client's automatic reconnection on
   * (the default of both libraries): once it gives up, the broker reports
   * it, resets every topic's streams, and refuses new subscriptions.
   * @defaultValue none: the broker only publishes
   */
  subscriber?: RedisClient | undefined
  /**
   * Prepended to every topic to form its Redis channel, and to the broker's
   * keys (`<prefix>epoch`, `<prefix>seq`, `<prefix>last:<topic>`,
   * `<prefix>stream:<topic>`, and the revocation log `<prefix>\u0000revocations`),
   * so that several applications can share one
   * Redis. Brokers with the same prefix on the same Redis share one history
   * and one order; under Redis Cluster it must contain a hash tag
   * (`{app}:`), see {@link createRedisBroker}.
   * @defaultValue `'patchwire:'`
   */
  prefix?: string
  /**
   * Messages kept per topic for resume, in a Redis Stream (trimmed with
   * `MAXLEN ~`, so a few more may be kept); `0` keeps none, so that every
   * reconnect that missed a message is reset. The same bound applies to the
   * process's own cache of recent messages.
   * @defaultValue `1000`
   */
  history?: number
  /**
   * How long a topic's history is kept after its last publish, in
   * milliseconds: the stream key expires then. A topic published at least
   * that often keeps its last `history` messages whatever their age.
   * @defaultValue `300000` (5 minutes)
   */
  historyMs?: number
  /**
   * How long a `publish` may take, in milliseconds, including the wait for
   * the publisher's first connection; also bounds the reads of `position`,
   * `replay` and after a reconnect, and the wait of `position` and `replay`
   * for the subscriber to deliver what came before them. A publish that
   * timed out may still reach subscribers later.
   * @defaultValue `5000`
   */
  publishTimeoutMs?: number
  /**
   * Called with each runtime failure: a lost connection (once per outage and
   * client), a client that closed for good (it gave up reconnecting), a
   * `SUBSCRIBE` or `UNSUBSCRIBE` that failed, a listener that threw, a
   * message on a topic's channel that the broker did not publish, and a
   * publish that failed while nobody awaited or caught its promise (one that
   * is awaited rejects instead, and is not reported).
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

/**
 * {@link RedisBrokerOptions} checked, with the defaults filled in and each
 * client recognised as node-redis or ioredis.
 * @internal
 */
export interface RedisBrokerSettings {
  readonly publisher: Connection
  /** Undefined for a broker that only publishes. */
  readonly subscriber: Connection | undefined
  readonly prefix: string
  readonly history: number
  readonly historyMs: number
  readonly publishTimeoutMs: number
  readonly onError: (error: PatchwireError) => void
}

const DEFAULT_PREFIX = 'patchwire:'

/**
 * Checks the options of `createRedisBroker` before anything is connected to
 * or listened on, so that a mistake is a synchronous error naming the option.
 * @param options - what the user passed
 * @returns the settings, defaults filled in
 * @throws TypeError when a client is missing or is neither a node-redis nor an
 * ioredis client, when both are the same client, or when `prefix` is not a
 * string or `onError` not a function
 * @throws RangeError when `history` is not a whole number from 0, `historyMs`
 * not a whole number of milliseconds from 1, or `publishTimeoutMs` not a
 * positive number up to 2147483647
 * @internal
 */
export function resolveOptions(options: RedisBrokerOptions): RedisBrokerSettings {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('createRedisBroker(options): options must be an object with a publisher client (and a subscriber client, unless the process only publishes)')
  }
  const publisher = connectionOf(options.publisher, 'publisher')
  const subscriber = options.subscriber === undefined ? undefined : connectionOf(options.subscriber, 'subscriber')
  if (options.publisher === options.subscriber) {
    throw new TypeError('createRedisBroker: publisher and subscriber must be two connections, since a subscribed one can run nothing else; pass subscriber: publisher.duplicate() (node-redis) or a second new Redis() (ioredis)')
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') {
    throw new TypeError(`createRedisBroker: prefix must be a string, got ${typeof prefix}`)
  }
  const settings = resolveHistorySettings('createRedisBroker', options)
  return { publisher, subscriber, prefix, ...settings }
}

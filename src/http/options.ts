import type { Broker } from '../broker/broker.js'
import { defaultBroker } from '../broker/memory.js'
import type { CoreOptions } from '../core/fanout.js'
import { reportToConsole, type PatchwireError } from '../errors.js'
import type { QueryLimits } from './request.js'

/**
 * What `authorize` answers for one topic: `true` (authorized), `{ until }`
 * (authorized until then: an epoch time in milliseconds, or a `Date`), or
 * anything else (refused).
 */
export type AuthorizeResult = boolean | { until: number | Date }

/**
 * Options of {@link createHandler} and {@link createFetchHandler}. Every
 * field is optional.
 * @typeParam Req - the request type `authorize` and `snapshot` receive
 */
export interface StreamHandlerOptions<Req> {
  /**
   * Where topics are subscribed: the in-process default, a {@link createBroker}
   * broker, or an adapter such as `patchwire/redis`.
   * @defaultValue the process-wide default broker (the one `publish(topic, ops)` uses)
   */
  broker?: Broker
  /**
   * Interval of the keep-alive comment, in milliseconds. One shared timer per
   * handler drives it for all streams; a stream that got a frame during the
   * interval is skipped. A stream whose reader took nothing of its backlog
   * for two intervals (and at least 10 s) is cut.
   * @defaultValue 15000
   */
  heartbeatMs?: number
  /**
   * Reconnection delay, in milliseconds, sent once on open as `retry: <ms>`.
   * Each stream gets a value spread over 0.75 to 1.25 × `retryMs`, so that
   * clients dropped together do not all come back in the same instant.
   * @defaultValue 3000
   */
  retryMs?: number
  /**
   * Only topics starting with this string are served; a stream asking for
   * any other gets 403.
   * @defaultValue '' (any topic)
   */
  topicPrefix?: string
  /**
   * Decides whether `req` may subscribe to `topic`; called for each topic of
   * a stream when it opens. `true` authorizes; `{ until }` authorizes until
   * then (an epoch time in milliseconds, or a `Date`): when the earliest
   * `until` of a stream's topics passes, the stream ends with a `retry:`
   * spread around `retryMs`, and the client comes back, is authorized again
   * with its own credentials and resumes exactly (an `until` already past
   * refuses with 403). Anything else (or a Promise of it) for any topic
   * refuses the whole stream with 403. A throw or rejection, or an object
   * that is not `{ until }` with a valid time, answers 500 and is reported
   * to `onError` (`ERR_PATCHWIRE_AUTHORIZE`). See docs/access.md.
   * @defaultValue none: every topic that passes `topicPrefix` is served
   */
  authorize?: (req: Req, topic: string) => AuthorizeResult | PromiseLike<AuthorizeResult>
  /**
   * Whose stream `req` is (a user or session id), asked once per stream when
   * it opens: a non-empty string, `undefined` (nobody in particular: the
   * stream is not capped), or a Promise of one. Used by
   * `maxStreamsPerIdentity` and by `revoke({ identity })`. A throw,
   * rejection or other value answers 500 and is reported to `onError`
   * (`ERR_PATCHWIRE_AUTHORIZE`). The handler keeps the string, not `req`.
   * @defaultValue none: streams have no identity
   */
  identify?: (req: Req) => string | undefined | PromiseLike<string | undefined>
  /**
   * Streams one identity (see `identify`) may have open at once on this
   * handler, requests still opening included; more are refused with 429.
   * @defaultValue 32
   */
  maxStreamsPerIdentity?: number
  /**
   * The state of `topic` for `req`, sent as an `event: snapshot` frame to a
   * stream that starts fresh (no id) and after any reset of the topic, before
   * any later patch of the topic. It may return a Promise (a database read):
   * see docs/loading-state.md for what a patch published while it
   * runs does. A throw or rejection is reported to `onError` (code
   * `ERR_PATCHWIRE_SNAPSHOT`): an opening stream gets 500, an open one is
   * ended so that it reconnects.
   * @defaultValue none: no snapshot frames
   */
  snapshot?: (req: Req, topic: string) => unknown
  /**
   * When set, only this exact path (without query) is answered; other
   * requests go to `next()` (node:http), or get 404.
   * @defaultValue none: every request given to the handler is answered
   */
  path?: string
  /**
   * Answer `GET <path>/client.js` with the browser client (`patchwire/client`
   * as one ES module, `text/javascript`, cacheable, with an ETag), so that a
   * page imports it from the handler: `import { subscribe } from
   * '/events/client.js'`. Without `path`, any request path ending in
   * `/client.js` is answered (a handler mounted under a prefix).
   * @defaultValue true
   */
  serveClient?: boolean
  /**
   * Topics one stream may carry (`?topic=a&topic=b`); more is refused with 400.
   * @defaultValue 16
   */
  maxTopics?: number
  /**
   * Slow-reader cut-off, in bytes. Before a frame is written, a stream whose
   * backlog (bytes written but not yet taken by the client's side, plus 128
   * bytes for each write still queued) exceeds this is closed instead and
   * counted in `stats().dropped`. Two batches of writes (one event-loop
   * turn's each) are left out of it while unsent: the latest, and the
   * earlier one with the most left to send; so one large frame or a large
   * replay alone never cuts a stream.
   * @defaultValue 1048576 (1 MiB)
   */
  maxBufferedBytes?: number
  /**
   * How long, in milliseconds, a topic's broker subscription outlives its
   * last stream.
   * @defaultValue 30000
   */
  lingerMs?: number
  /**
   * Longest topic served, in UTF-16 code units; longer ones get 414.
   * @defaultValue 256
   */
  maxTopicLength?: number
  /**
   * Requests that may wait at once for `authorize`, the broker's
   * subscription or `snapshot` before their stream opens; more get 503 at once.
   * @defaultValue 1024
   */
  maxPending?: number
  /**
   * How long, in milliseconds, a request may wait for `authorize`, the
   * broker or `snapshot` before it gets 503.
   * @defaultValue 10000
   */
  pendingTimeoutMs?: number
  /**
   * Receives runtime failures (an `authorize` or `snapshot` that threw, a
   * broker that could not subscribe, a payload that cannot be framed). Never
   * throws into the request.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

/** Options of `handler.close()`. */
export interface CloseOptions {
  /**
   * Each stream is told to reconnect after `retryMs` plus a random share of
   * this many milliseconds, so that a rolling deploy does not send every
   * page to the next process in the same second.
   * @defaultValue 10000
   */
  reconnectSpreadMs?: number
}

/**
 * Validates `close()` options.
 * @returns the reconnect spread, in milliseconds
 * @throws RangeError for a spread that is not a number of milliseconds from 0 to 2147483647
 * @internal
 */
export function resolveCloseOptions(options: CloseOptions): number {
  const spreadMs = options.reconnectSpreadMs ?? DEFAULT_RECONNECT_SPREAD_MS
  if (typeof spreadMs !== 'number' || !(spreadMs >= 0 && spreadMs <= MAX_TIMER_MS)) {
    throw new RangeError(`handler.close: option "reconnectSpreadMs" must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${String(spreadMs)}`)
  }
  return spreadMs
}

/** What a transport needs of the options, resolved. @internal */
export interface ResolvedOptions<Req> extends CoreOptions<Req>, QueryLimits {
  readonly path: string | undefined
  readonly serveClient: boolean
}

const DEFAULT_HEARTBEAT_MS = 15_000
const DEFAULT_RETRY_MS = 3_000
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024
const DEFAULT_LINGER_MS = 30_000
const DEFAULT_MAX_TOPIC_LENGTH = 256
const DEFAULT_MAX_TOPICS = 16
const DEFAULT_MAX_PENDING = 1024
const DEFAULT_PENDING_TIMEOUT_MS = 10_000
const DEFAULT_RECONNECT_SPREAD_MS = 10_000
const DEFAULT_MAX_STREAMS_PER_IDENTITY = 32

const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Validates options and fills in defaults.
 * @param caller - the factory's name, for messages
 * @throws TypeError for an unknown option or a wrong type; RangeError for a number out of range
 * @internal
 */
export function resolveOptions<Req>(options: StreamHandlerOptions<Req>, caller: string): ResolvedOptions<Req> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${caller}(options): options must be an object, got ${options === null ? 'null' : typeof options}`)
  }
  for (const name of Object.keys(options)) {
    if (name === 'history' || name === 'historyBytes') {
      throw new TypeError(`${caller}: option "${name}" moved to the broker: createBroker({ ${name} }) (or createRedisBroker({ history })), and pass it as option "broker"`)
    }
    if (!KNOWN.has(name)) throw new TypeError(`${caller}: unknown option "${name}"; the options are ${[...KNOWN].join(', ')}`)
  }
  const broker = options.broker === undefined ? defaultBroker : options.broker
  if (broker === null || typeof broker !== 'object' || typeof broker.publish !== 'function' || typeof broker.subscribe !== 'function') {
    throw new TypeError(`${caller}: option "broker" must implement Broker (publish and subscribe methods); use createBroker() or an adapter`)
  }
  const read = { options, caller }
  let path: string | undefined
  if (options.path !== undefined) {
    path = string(read, 'path', '')
    if (!path.startsWith('/') || path.includes('?') || path.includes('#')) {
      throw new TypeError(`${caller}: option "path" must be a URL path starting with "/" and without a query, got "${path}"`)
    }
  }
  if (options.serveClient !== undefined && typeof options.serveClient !== 'boolean') {
    throw new TypeError(`${caller}: option "serveClient" must be a boolean, got ${options.serveClient === null ? 'null' : typeof options.serveClient}`)
  }
  return {
    broker,
    path,
    serveClient: options.serveClient !== false,
    heartbeatMs: integer(read, 'heartbeatMs', DEFAULT_HEARTBEAT_MS, 1, MAX_TIMER_MS),
    retryMs: integer(read, 'retryMs', DEFAULT_RETRY_MS, 0, MAX_TIMER_MS),
    topicPrefix: string(read, 'topicPrefix', ''),
    maxTopics: integer(read, 'maxTopics', DEFAULT_MAX_TOPICS, 1, 1024),
    maxBufferedBytes: integer(read, 'maxBufferedBytes', DEFAULT_MAX_BUFFERED_BYTES, 0, Number.MAX_SAFE_INTEGER),
    lingerMs: integer(read, 'lingerMs', DEFAULT_LINGER_MS, 0, MAX_TIMER_MS),
    maxTopicLength: integer(read, 'maxTopicLength', DEFAULT_MAX_TOPIC_LENGTH, 1, 65_536),
    maxPending: integer(read, 'maxPending', DEFAULT_MAX_PENDING, 0, Number.MAX_SAFE_INTEGER),
    pendingTimeoutMs: integer(read, 'pendingTimeoutMs', DEFAULT_PENDING_TIMEOUT_MS, 1, MAX_TIMER_MS),
    authorize: fn(read, 'authorize'),
    identify: fn(read, 'identify'),
    maxStreamsPerIdentity: integer(read, 'maxStreamsPerIdentity', DEFAULT_MAX_STREAMS_PER_IDENTITY, 1, Number.MAX_SAFE_INTEGER),
    snapshot: fn(read, 'snapshot'),
    onError: fn(read, 'onError') ?? reportToConsole,
  }
}

const KNOWN = new Set<string>([
  'broker', 'heartbeatMs', 'retryMs', 'topicPrefix', 'authorize', 'snapshot', 'path', 'serveClient', 'maxTopics', 'maxBufferedBytes',
  'lingerMs', 'maxTopicLength', 'maxPending', 'pendingTimeoutMs', 'onError', 'identify', 'maxStreamsPerIdentity',
] satisfies (keyof StreamHandlerOptions<unknown>)[])

type NumberOption = 'heartbeatMs' | 'retryMs' | 'maxTopics' | 'maxBufferedBytes' | 'lingerMs' | 'maxTopicLength' | 'maxPending' | 'pendingTimeoutMs' | 'maxStreamsPerIdentity'

interface Read<Req> {
  readonly options: StreamHandlerOptions<Req>
  readonly caller: string
}

function integer<Req>({ options, caller }: Read<Req>, name: NumberOption, fallback: number, min: number, max: number): number {
  const value: unknown = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new TypeError(`${caller}: option "${name}" must be an integer, got ${typeof value}`)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${caller}: option "${name}" must be an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

function string<Req>({ options, caller }: Read<Req>, name: 'topicPrefix' | 'path', fallback: string): string {
  const value: unknown = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'string') throw new TypeError(`${caller}: option "${name}" must be a string, got ${typeof value}`)
  return value
}

function fn<Req, K extends 'authorize' | 'snapshot' | 'onError' | 'identify'>({ options, caller }: Read<Req>, name: K): StreamHandlerOptions<Req>[K] {
  const value: unknown = options[name]
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`${caller}: option "${name}" must be a function, got ${value === null ? 'null' : typeof value}`)
  }
  return value as StreamHandlerOptions<Req>[K]
}

import { defaultBroker, type Broker } from './broker.js'
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_HISTORY,
  DEFAULT_HISTORY_BYTES,
  DEFAULT_LINGER_MS,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_TOPIC_LENGTH,
  DEFAULT_RETRY_MS,
} from './constants.js'
import { reportToConsole, type PatchwireError } from './errors.js'
import type { Request } from './stream.js'

/** Options of {@link createHandler}. Every field is optional. */
export interface HandlerOptions {
  /**
   * Where topics are subscribed: the in-process default, a {@link createBroker}
   * broker, or an adapter such as `patchwire/redis`.
   * @defaultValue the process-wide default broker (the one `publish(topic, ops)` uses)
   */
  broker?: Broker
  /**
   * Interval of the keep-alive comment, in milliseconds. One shared timer per
   * handler drives it for all streams; a stream that got a frame during the
   * interval is skipped.
   * @defaultValue 15000
   */
  heartbeatMs?: number
  /**
   * Reconnection delay sent once on open as `retry: <ms>`, in milliseconds.
   * @defaultValue 3000
   */
  retryMs?: number
  /**
   * Only topics starting with this string are served; others get 403.
   * @defaultValue '' (any topic)
   */
  topicPrefix?: string
  /**
   * Decides whether `req` may subscribe to `topic`. Anything but `true`
   * (or a Promise of `true`) refuses with 403; a throw or rejection answers
   * 500 and is reported to `onError`.
   * @defaultValue none: every topic that passes `topicPrefix` is served
   */
  authorize?: (req: Request, topic: string) => boolean | Promise<boolean>
  /**
   * When set, only this exact path (without query) is answered; other
   * requests go to `next()`, or get 404 without one.
   * @defaultValue none: every request given to the handler is answered
   */
  path?: string
  /**
   * Slow-reader cut-off, in bytes. Before a frame is written, a stream whose
   * backlog (bytes written but not yet taken by the kernel) exceeds this is
   * closed instead and counted in `stats().dropped`. Two batches of writes
   * (one event-loop turn's each) are left out while unsent: the latest, and
   * the earlier one with the most left to send; so one large frame or a
   * large replay alone never cuts a stream.
   * @defaultValue 1048576 (1 MiB)
   */
  maxBufferedBytes?: number
  /**
   * Frames kept per topic for `Last-Event-ID` replay; `0` disables replay
   * (a reconnect that missed a frame then gets `event: reset`).
   * @defaultValue 1000
   */
  history?: number
  /**
   * Byte cap on each topic's history.
   * @defaultValue 1048576 (1 MiB)
   */
  historyBytes?: number
  /**
   * How long, in milliseconds, a topic's broker subscription and history
   * outlive its last stream, so that an ordinary reconnect replays instead of
   * resetting.
   * @defaultValue 30000
   */
  lingerMs?: number
  /**
   * Longest topic served, in UTF-16 code units; longer ones get 414.
   * @defaultValue 256
   */
  maxTopicLength?: number
  /**
   * Receives runtime failures (an `authorize` that threw, a broker that
   * could not subscribe, a payload that cannot be framed). Never throws into
   * the request.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

/** @internal */
export type ResolvedOptions = Required<Omit<HandlerOptions, 'authorize' | 'path'>> & Pick<HandlerOptions, 'authorize' | 'path'>

const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Validates options and fills in defaults.
 * @throws TypeError for an unknown option or a wrong type; RangeError for a number out of range
 * @internal
 */
export function resolveOptions(options: HandlerOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`createHandler(options): options must be an object, got ${options === null ? 'null' : typeof options}`)
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) {
      throw new TypeError(`createHandler: unknown option "${name}"; the options are ${[...KNOWN].join(', ')}`)
    }
  }
  const broker = options.broker === undefined ? defaultBroker : options.broker
  if (broker === null || typeof broker !== 'object' || typeof broker.publish !== 'function' || typeof broker.subscribe !== 'function') {
    throw new TypeError('createHandler: option "broker" must implement Broker (publish and subscribe methods); use createBroker() or an adapter')
  }
  const resolved: ResolvedOptions = {
    broker,
    heartbeatMs: integer(options, 'heartbeatMs', DEFAULT_HEARTBEAT_MS, 1, MAX_TIMER_MS),
    retryMs: integer(options, 'retryMs', DEFAULT_RETRY_MS, 0, MAX_TIMER_MS),
    topicPrefix: string(options, 'topicPrefix', ''),
    maxBufferedBytes: integer(options, 'maxBufferedBytes', DEFAULT_MAX_BUFFERED_BYTES, 0, Number.MAX_SAFE_INTEGER),
    history: integer(options, 'history', DEFAULT_HISTORY, 0, Number.MAX_SAFE_INTEGER),
    historyBytes: integer(options, 'historyBytes', DEFAULT_HISTORY_BYTES, 0, Number.MAX_SAFE_INTEGER),
    lingerMs: integer(options, 'lingerMs', DEFAULT_LINGER_MS, 0, MAX_TIMER_MS),
    maxTopicLength: integer(options, 'maxTopicLength', DEFAULT_MAX_TOPIC_LENGTH, 1, Number.MAX_SAFE_INTEGER),
    onError: fn(options, 'onError') ?? reportToConsole,
  }
  const authorize = fn(options, 'authorize')
  if (authorize !== undefined) resolved.authorize = authorize
  if (options.path !== undefined) {
    const path = string(options, 'path', '')
    if (!path.startsWith('/') || path.includes('?')) {
      throw new TypeError(`createHandler: option "path" must be a URL path starting with "/" and without a query, got "${path}"`)
    }
    resolved.path = path
  }
  return resolved
}

const KNOWN = new Set<string>([
  'broker', 'heartbeatMs', 'retryMs', 'topicPrefix', 'authorize', 'path', 'maxBufferedBytes',
  'history', 'historyBytes', 'lingerMs', 'maxTopicLength', 'onError',
] satisfies (keyof HandlerOptions)[])

type NumberOption = 'heartbeatMs' | 'retryMs' | 'maxBufferedBytes' | 'history' | 'historyBytes' | 'lingerMs' | 'maxTopicLength'

function integer(options: HandlerOptions, name: NumberOption, fallback: number, min: number, max: number): number {
  const value: unknown = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number') {
    throw new TypeError(`createHandler: option "${name}" must be an integer, got ${typeof value}`)
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`createHandler: option "${name}" must be an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

function string(options: HandlerOptions, name: 'topicPrefix' | 'path', fallback: string): string {
  const value: unknown = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'string') throw new TypeError(`createHandler: option "${name}" must be a string, got ${typeof value}`)
  return value
}

function fn<K extends 'authorize' | 'onError'>(options: HandlerOptions, name: K): HandlerOptions[K] {
  const value: unknown = options[name]
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`createHandler: option "${name}" must be a function, got ${value === null ? 'null' : typeof value}`)
  }
  return value as HandlerOptions[K]
}

import type { PatchwireError } from '../errors.js'
import type { ResetReason } from '../protocol/reset-reason.js'
import type { EventSourceConstructor, SubscriptionState } from './event-source.js'


/** What comes with a snapshot besides the state. */
export interface SnapshotMeta {
  /** The topic the state belongs to. */
  readonly topic: string
}

/**
 * Options of `subscribe`.
 * @typeParam T - the topic's state, as `onSnapshot` receives it
 */
export interface SubscribeOptions<T = unknown> {
  /**
   * The URL path (or full URL) of the server's event handler; the topics are
   * added as `topic` query parameters.
   * @defaultValue the page's directory followed by `__events`
   * (`/dashboard/` and `/dashboard` → `/dashboard/__events`; a page that
   * is a file, `/reports/x.html` → `/reports/__events`); required outside a
   * page (in a worker, say)
   */
  path?: string
  /**
   * Send cookies and HTTP authentication on a cross-origin stream.
   * @defaultValue false
   */
  withCredentials?: boolean
  /**
   * Called with the topic's state: when the subscription starts (unless it
   * has a `lastEventId`) and after every reset. It comes from the server's
   * `snapshot` option, and every patch that follows applies to it. With
   * `onSnapshot`, a reset never reloads the page. Each call gets its own copy.
   * @param state - the topic's state, parsed from JSON; typed as `subscribe<T>` says
   * @param meta - `{ topic }`
   * @defaultValue none: the page loads its state itself
   */
  onSnapshot?: (state: T, meta: SnapshotMeta) => void
  /**
   * Start from this position instead of from now: an event id the server
   * rendered the page's state at (`position(topic)` on the server). The
   * subscription then gets every patch of its topic after it, or a reset
   * when the server cannot replay them.
   * @defaultValue none: from the shared stream's current position
   */
  lastEventId?: string
  /**
   * Called when the server could not resume the stream exactly for this
   * topic (it restarted, or the gap was longer than its history): patches
   * were missed. With `onSnapshot`, the snapshot that follows replaces the
   * state; without it, the page's state must be loaded again, and the
   * patches that follow apply to that new state.
   * @param reason - why; see {@link ResetReason}
   * @defaultValue with `onSnapshot`, nothing; without it, reloads the page
   * (`location.reload()`, once per reset however many subscriptions), and
   * outside a browser reports `ERR_PATCHWIRE_RESET` to `onError`
   */
  onReset?: (reason: ResetReason) => void
  /**
   * Called with every runtime failure, told apart by `error.code`:
   * `ERR_PATCHWIRE_DISCONNECTED` (a drop or a failed reconnect attempt; the
   * stream reconnects by itself, so this is not an incident: the default
   * reporter ignores it),
   * `ERR_PATCHWIRE_REFUSED` (the server refused the topic; state is `closed`),
   * `ERR_PATCHWIRE_FRAME` (a frame was not what the protocol says; skipped),
   * `ERR_PATCHWIRE_CALLBACK` (a callback threw; `error.cause` is what it threw),
   * `ERR_PATCHWIRE_RESET`.
   * @defaultValue logs every code but `ERR_PATCHWIRE_DISCONNECTED` to `console.error`
   */
  onError?: (error: PatchwireError) => void
  /**
   * Called when the server revoked this subscription's topic (an
   * `event: revoked` frame, see docs/access.md): the subscription has ended
   * for good, its state is `revoked`, and no request for the topic is made
   * again. The shared stream goes on for the other topics.
   * @param topic - the revoked topic
   * @defaultValue none: the subscription ends quietly (its state says so)
   */
  onRevoked?: (topic: string) => void
  /**
   * Called when `state` changes: the stream opened, dropped, was refused or
   * revoked. Not called by `stop()`.
   * @defaultValue none
   */
  onStateChange?: (state: SubscriptionState) => void
  /**
   * The `EventSource` to use: a polyfill, or Node's (`eventsource` package).
   * @defaultValue the global `EventSource` in a page or a worker; elsewhere
   * (server-side rendering) subscribe does nothing
   */
  EventSource?: EventSourceConstructor
  /**
   * Share one stream per path with the other tabs of the origin: the leader
   * tab holds it and passes the frames on. Needs Web Locks and
   * BroadcastChannel; without them each tab has its own stream anyway.
   * Subscriptions that share a path must agree on it: the first one decides.
   * @defaultValue true
   */
  shareTabs?: boolean
  /**
   * Log each frame, state change and reconnect of this subscription to the
   * console (`console.log`, lines starting `[patchwire] <topic>:`).
   * @defaultValue false
   */
  debug?: boolean
}

/**
 * The options `subscribe` takes, checked before anything starts: a
 * misspelled one (`onSnapShot`) would otherwise be ignored, and the page
 * would fail later, far from the typo.
 */

// Every option, as the type names it: a new option that is not listed here
// fails the typecheck instead of being refused at run time.
const KNOWN = {
  path: true,
  withCredentials: true,
  onSnapshot: true,
  lastEventId: true,
  onReset: true,
  onError: true,
  onStateChange: true,
  onRevoked: true,
  EventSource: true,
  shareTabs: true,
  debug: true,
} as const satisfies Record<keyof SubscribeOptions, true>

/**
 * Refuses what `subscribe` cannot work with, before anything starts: a
 * topic that is not a non-empty, well-formed string, an `onPatch` that is
 * not a function, unknown options, a `lastEventId` that is not an id.
 * @throws TypeError
 * @internal
 */
export function checkSubscribeArguments(topic: unknown, onPatch: unknown, options: unknown): void {
  if (typeof topic !== 'string' || topic === '') {
    throw new TypeError('subscribe: topic must be a non-empty string')
  }
  if (typeof onPatch !== 'function') {
    throw new TypeError('subscribe: onPatch must be a function')
  }
  try {
    encodeURIComponent(topic)
  } catch {
    throw new TypeError('subscribe: topic must be well-formed Unicode')
  }
  checkSubscribeOptions(options)
  const { lastEventId } = options as SubscribeOptions
  if (lastEventId !== undefined && (typeof lastEventId !== 'string' || lastEventId === '')) {
    throw new TypeError('subscribe: options.lastEventId must be a non-empty event id string (from position(topic))')
  }
}

/**
 * Refuses an options argument that is not an object, and any option that
 * `subscribe` does not know, naming it (with the known option it most
 * likely meant) and listing the valid ones.
 * @throws TypeError
 * @internal
 */
function checkSubscribeOptions(options: unknown): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`subscribe: options must be an object, got ${options === null ? 'null' : typeof options}`)
  }
  const known = Object.keys(KNOWN)
  const unknown = Object.keys(options).filter((name) => !known.includes(name))
  if (unknown.length === 0) return
  const named = unknown.map((name) => {
    const meant = known.find((option) => option.toLowerCase() === name.toLowerCase())
    return `"${name}"${meant === undefined ? '' : ` (did you mean "${meant}"?)`}`
  })
  throw new TypeError(`subscribe: unknown option${unknown.length === 1 ? '' : 's'} ${named.join(', ')}; the options are ${known.join(', ')}`)
}

/**
 * The handler path a page connects to when `subscribe` is given none: the
 * page's directory followed by `__events`. A last segment with a dot is a
 * file (`/reports/x.html` → `/reports/__events`); any other is a directory
 * (`/dashboard` and `/dashboard/` → `/dashboard/__events`).
 * @param pathname - the page's `location.pathname`
 * @internal
 */
export function defaultPath(pathname: string): string {
  const slash = pathname.lastIndexOf('/')
  const last = pathname.slice(slash + 1)
  const dir = last.includes('.') ? pathname.slice(0, slash) : pathname.replace(/\/$/, '')
  return `${dir}/__events`
}

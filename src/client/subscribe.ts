import { PatchwireError, reportToConsole } from '../errors.js'
import type { PatchOp } from '../patch-op.js'
import { isTuple } from './patch.js'

/**
 * Where a subscription stands: `connecting` (opening, or reconnecting after a
 * drop), `open` (the stream is live), `closed` (stopped, or refused by the
 * server for good).
 */
export type SubscriptionState = 'connecting' | 'open' | 'closed'

/**
 * What {@link subscribe} returns: call it to stop (idempotent), read `state`
 * to see where the stream stands.
 */
export interface Subscription {
  /** Stops this subscription. The shared `EventSource` closes when its last subscriber stops. */
  (): void
  /** The current state; `closed` once stopped. */
  readonly state: SubscriptionState
}

/** What comes with each patch besides the ops. */
export interface PatchMeta {
  /** The frame's event id: opaque, the position the stream resumes after. */
  readonly id: string
}

/** The part of an `EventSource` that {@link subscribe} uses. */
export interface EventSourceLike {
  /** `0` connecting, `1` open, `2` closed. */
  readonly readyState: number
  /** Adds a listener for `open`, `error` or a named event. */
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void
  /** Closes the stream for good. */
  close(): void
}

/** A constructor of {@link EventSourceLike}: the browser's `EventSource`, or a polyfill. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike

/** Options of {@link subscribe}. */
export interface SubscribeOptions {
  /**
   * The URL path (or full URL) of the server's event handler; the topic is
   * added as the `topic` query parameter.
   * @defaultValue the page's path followed by `/__events`
   * (`/dashboard/` → `/dashboard/__events`); required outside a page (in a worker, say)
   */
  path?: string
  /**
   * Send cookies and HTTP authentication on a cross-origin stream.
   * @defaultValue false
   */
  withCredentials?: boolean
  /**
   * Called when the server could not resume the stream exactly (it restarted,
   * or the gap was longer than its history): patches were missed, so the
   * page's state must be loaded again. Patches that follow apply to that new state.
   * @param reason - the server's short reason
   * @defaultValue reloads the page (`location.reload()`); outside a browser,
   * reports `ERR_PATCHWIRE_RESET` to `onError`
   */
  onReset?: (reason: string) => void
  /**
   * Called with every runtime failure, told apart by `error.code`:
   * `ERR_PATCHWIRE_DISCONNECTED` (a drop; the stream reconnects by itself),
   * `ERR_PATCHWIRE_REFUSED` (the server refused the stream; state is `closed`),
   * `ERR_PATCHWIRE_FRAME` (a frame was not ops; skipped),
   * `ERR_PATCHWIRE_CALLBACK` (a callback threw; `error.cause` is what it threw),
   * `ERR_PATCHWIRE_RESET`.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
  /**
   * Called when `state` changes: the stream opened, dropped or was refused.
   * Not called by `stop()`.
   * @defaultValue none
   */
  onStateChange?: (state: SubscriptionState) => void
  /**
   * The `EventSource` to use: a polyfill, or Node's (`eventsource` package,
   * or the global one on Node 22+).
   * @defaultValue the global `EventSource` in a page or a worker; elsewhere
   * (server-side rendering) subscribe does nothing
   */
  EventSource?: EventSourceConstructor
}

/**
 * Subscribes to a topic's JSON-Patch stream.
 *
 * Subscriptions to the same path and topic in one page share one
 * `EventSource`, which closes when the last of them stops. Dropped streams
 * reconnect by themselves and resume without loss; when they cannot, the
 * server says so and `onReset` runs. Outside a page or a worker (server-side
 * rendering) and without `options.EventSource`, it does nothing and returns
 * a stop function whose state is `closed`.
 *
 * @param topic - the topic, as the server publishes it
 * @param onPatch - called with each frame's ops (already checked to be op tuples)
 * and `{ id }`; typically `(ops) => applyPatch(state, ops)`
 * @param options - see {@link SubscribeOptions}
 * @returns the stop function, with a `state` getter; see {@link Subscription}
 * @throws TypeError when `topic` is not a non-empty string of well-formed
 * Unicode, `onPatch` is not a function, or `options.path` is missing outside a page
 * @example
 * const stop = subscribe('dashboard:user:42', (ops) => applyPatch(state, ops), {
 *   path: '/dashboard/__events',
 *   onReset: () => reloadState(),
 * })
 * stop.state // 'connecting'
 * stop()
 */
export function subscribe(
  topic: string,
  onPatch: (ops: PatchOp[], meta: PatchMeta) => void,
  options: SubscribeOptions = {},
): Subscription {
  if (typeof topic !== 'string' || topic === '') {
    throw new TypeError('subscribe: topic must be a non-empty string')
  }
  if (typeof onPatch !== 'function') {
    throw new TypeError('subscribe: onPatch must be a function, such as (ops) => applyPatch(state, ops)')
  }
  let query: string
  try {
    query = `topic=${encodeURIComponent(topic)}`
  } catch {
    throw new TypeError('subscribe: topic must be well-formed Unicode')
  }
  const win = typeof window === 'undefined' ? undefined : window
  // A page, or a worker (no `window`, but a browser all the same); anywhere
  // else, without options.EventSource, is server-side rendering.
  const isWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined'
  const Source = options.EventSource ?? (win ?? (isWorker ? globalThis : undefined))?.EventSource
  if (Source === undefined) return CLOSED
  let path = options.path
  if (path === undefined) {
    if (win === undefined) throw new TypeError('subscribe: options.path is required outside a page')
    path = `${win.location.pathname.replace(/\/$/, '')}/__events`
  }
  // The query goes before any #fragment, which is never sent.
  const hash = path.indexOf('#')
  const base = hash === -1 ? path : path.slice(0, hash)
  const url = `${base}${base.includes('?') ? '&' : '?'}${query}`
  const withCredentials = options.withCredentials === true
  const id = `${withCredentials}${url}`
  const stream = streams.get(id) ?? open(id, new Source(url, { withCredentials }), url)
  const subscriber: Subscriber = { onPatch, options }
  stream.subscribers.add(subscriber)
  let stopped = false
  const stop = (): void => {
    if (stopped) return
    stopped = true
    stream.subscribers.delete(subscriber)
    if (stream.subscribers.size === 0) {
      stream.source.close()
      if (streams.get(id) === stream) streams.delete(id)
    }
  }
  return Object.defineProperty(stop, 'state', { get: () => (stopped ? 'closed' : stream.state) }) as Subscription
}

interface Subscriber {
  onPatch: (ops: PatchOp[], meta: PatchMeta) => void
  options: SubscribeOptions
}

interface Stream {
  source: EventSourceLike
  subscribers: Set<Subscriber>
  state: SubscriptionState
}

// One EventSource per (credentials, URL) in the page: browsers allow only six
// HTTP/1.1 connections per origin, so every subscribe must not open its own.
const streams = new Map<string, Stream>()

const CLOSED = Object.defineProperty(() => {}, 'state', { value: 'closed' }) as Subscription

function open(id: string, source: EventSourceLike, url: string): Stream {
  const stream: Stream = { source, subscribers: new Set(), state: 'connecting' }
  streams.set(id, stream)

  // An onError that throws must not escape into the EventSource either.
  const report = (subscriber: Subscriber, error: PatchwireError): void => {
    try {
      ;(subscriber.options.onError ?? reportToConsole)(error)
    } catch (thrown) {
      reportToConsole(new PatchwireError('ERR_PATCHWIRE_CALLBACK', `the onError callback of the subscription to ${url} threw`, { cause: thrown }))
    }
  }

  // A callback may stop any subscriber; those stopped are skipped, and one
  // that throws does not keep the event from the others.
  const each = (deliver: (subscriber: Subscriber) => void): void => {
    for (const subscriber of [...stream.subscribers]) {
      if (!stream.subscribers.has(subscriber)) continue
      try {
        deliver(subscriber)
      } catch (error) {
        report(subscriber, new PatchwireError('ERR_PATCHWIRE_CALLBACK', `a callback of the subscription to ${url} threw`, { cause: error }))
      }
    }
  }

  const become = (state: SubscriptionState, error?: PatchwireError): void => {
    if (stream.state !== state) {
      stream.state = state
      each((subscriber) => subscriber.options.onStateChange?.(state))
    }
    if (error !== undefined) each((subscriber) => report(subscriber, error))
  }

  source.addEventListener('open', () => become('open'))

  // An EventSource that gives up (HTTP error status, wrong content type) is
  // CLOSED when it fires `error`; after a mere drop it is CONNECTING again.
  source.addEventListener('error', (event) => {
    const detail = (event as { message?: unknown }).message
    const why = typeof detail === 'string' && detail !== '' ? `: ${detail}` : ''
    if (source.readyState === 2) {
      if (streams.get(id) === stream) streams.delete(id)
      become('closed', new PatchwireError('ERR_PATCHWIRE_REFUSED', `the server refused the stream ${url}${why}`))
    } else {
      become('connecting', new PatchwireError('ERR_PATCHWIRE_DISCONNECTED', `the stream ${url} dropped; reconnecting${why}`))
    }
  })

  source.addEventListener('patch', (event) => {
    let ops: unknown
    try {
      ops = JSON.parse(event.data)
    } catch {
      // Reported below with the frame's text.
    }
    if (!Array.isArray(ops) || !ops.every(isTuple)) {
      const error = new PatchwireError('ERR_PATCHWIRE_FRAME', `a patch frame on ${url} is not a JSON array of [op, path, value] tuples: ${event.data.slice(0, 100)}`)
      each((subscriber) => report(subscriber, error))
      return
    }
    const meta: PatchMeta = { id: event.lastEventId }
    each((subscriber) => subscriber.onPatch(ops as PatchOp[], meta))
  })

  source.addEventListener('reset', (event) => {
    let reason: unknown
    try {
      reason = JSON.parse(event.data).reason
    } catch {
      // The raw data is the reason then.
    }
    const text = typeof reason === 'string' ? reason : event.data
    // Subscribers without onReset share one reload of the page.
    let reloaded = false
    each((subscriber) => {
      if (subscriber.options.onReset !== undefined) subscriber.options.onReset(text)
      else if (typeof location !== 'undefined' && typeof location.reload === 'function') {
        if (!reloaded) location.reload()
        reloaded = true
      }
      else report(subscriber, new PatchwireError('ERR_PATCHWIRE_RESET', `the server reset the stream ${url} (${text}) and no onReset reloads the state`))
    })
  })

  return stream
}

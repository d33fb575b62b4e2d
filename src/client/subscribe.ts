import { PatchwireError, reportToConsole } from '../errors.js'
import type { PatchOp } from '../patch-op.js'
import type { ResetReason } from '../protocol/reset-reason.js'
import { logEvent } from './debug.js'
import type { EventSourceConstructor, SubscriptionState } from './event-source.js'
import { isAfter, later } from './positions.js'
import { pageHref } from './refusal.js'
import type { StreamEvent } from './shared-stream.js'
import { checkSubscribeArguments, defaultPath, type SnapshotMeta, type SubscribeOptions } from './subscribe-options.js'
import { Hub, type Local } from './tabs.js'

export type { SnapshotMeta, SubscribeOptions }

/**
 * What {@link subscribe} returns: call it to stop (idempotent), read `state`
 * to see where the stream stands.
 */
export interface Subscription {
  /** Stops this subscription. The shared stream drops the topic when its last subscriber stops, and closes with the last topic. */
  (): void
  /** The current state; `closed` once stopped, `revoked` once the server revoked the topic. */
  readonly state: SubscriptionState
}

/** What comes with each patch besides the ops. */
export interface PatchMeta {
  /** The frame's event id: opaque, the position the stream resumes after. */
  readonly id: string
  /** The topic the ops belong to. */
  readonly topic: string
}

/**
 * Subscribes to a topic's JSON-Patch stream.
 *
 * Every subscription to one path (and credentials) in a page shares ONE
 * stream that carries all their topics, and with Web Locks and
 * BroadcastChannel the tabs of the origin share it too. Subscribing to a new
 * topic or stopping one reopens that stream once for all the calls of the
 * same tick, from the last event id seen, so the other topics lose and
 * repeat nothing. Dropped streams reconnect by themselves and resume without
 * loss; when they cannot, the server says so: `onReset` runs, and
 * `onSnapshot` gets the topic's new state. Outside a page or a worker
 * (server-side rendering) and without `options.EventSource`, it does
 * nothing and returns a stop function whose state is `closed`.
 *
 * A new topic starts at the shared stream's position, or at its
 * `lastEventId`; with `onSnapshot`, it starts with the topic's snapshot. The
 * stream only ever goes back to a topic's position a little (by a catch-up,
 * see docs/client.md), never to an old `lastEventId` of one topic.
 *
 * @param topic - the topic, as the server publishes it
 * @param onPatch - called with each frame's ops (already checked to be op tuples)
 * and `{ id, topic }`; typically `(ops) => applyPatch(state, ops)`
 * @typeParam T - the topic's state: `onSnapshot` receives a `T` (what the
 * server's `snapshot` sends; not checked at run time)
 * @param options - see {@link SubscribeOptions}
 * @returns the stop function, with a `state` getter; see {@link Subscription}
 * @throws TypeError when `topic` is not a non-empty string of well-formed
 * Unicode, `onPatch` is not a function, `options` is not an object or has
 * an option subscribe does not know (the message names it and lists the
 * valid ones), `options.lastEventId` is not a non-empty string, or
 * `options.path` is missing outside a page or is not a URL
 * @example
 * let state: { counter: number } | undefined
 * const stop = subscribe<{ counter: number }>('dashboard:user:42', (ops) => applyPatch(state, ops), {
 *   path: '/dashboard/__events',
 *   onSnapshot: (snapshot) => { state = snapshot },
 * })
 * stop.state // 'connecting'
 * stop()
 */
export function subscribe<T = unknown>(
  topic: string,
  onPatch: (ops: PatchOp[], meta: PatchMeta) => void,
  options: SubscribeOptions<T> = {},
): Subscription {
  checkSubscribeArguments(topic, onPatch, options)
  const { lastEventId, onSnapshot, onReset, onStateChange, onRevoked, onError = quiet } = options
  const win = typeof window === 'undefined' ? undefined : window
  // A page, or a worker (no `window`, but a browser all the same); anywhere
  // else, without options.EventSource, is server-side rendering.
  const isWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined'
  const Source = options.EventSource ?? (win ?? (isWorker ? globalThis : undefined))?.EventSource
  if (Source === undefined) return CLOSED
  const hub = hubOf(options, win, Source)

  let state: SubscriptionState = 'connecting'
  let stopped = false
  // Where it stands: it has every frame of its topic up to `pos`; it waits
  // for a snapshot (none has come since it joined or since a reset); it is
  // in step with the shared stream, so also at the tab's position of it.
  let pos = lastEventId
  let snap = lastEventId === undefined && onSnapshot !== undefined
  let inMain = false
  const report = (error: PatchwireError): void => {
    try {
      onError(error)
    } catch (thrown) {
      reportToConsole(new PatchwireError('ERR_PATCHWIRE_CALLBACK', `the onError callback of ${topic} threw`, { cause: thrown }))
    }
  }
  // A callback that throws does not keep the event from the other subscriptions.
  const call = (callback: () => void): void => {
    try {
      callback()
    } catch (error) {
      report(new PatchwireError('ERR_PATCHWIRE_CALLBACK', `a callback of ${topic} threw`, { cause: error }))
    }
  }
  const become = (next: SubscriptionState): void => {
    if (state === next) return
    state = next
    if (onStateChange !== undefined) call(() => onStateChange(next))
  }
  const local: Local = {
    id: '',
    member(position) {
      if (inMain) pos = later(pos, position)
      inMain = false
      return { id: local.id, topic, need: snap || (pos ?? false), snapshot: onSnapshot !== undefined }
    },
    receive(event, position) {
      if (!event.main) inMain = false
      switch (event.type) {
        case 'patch':
          if (!isAfter(event.id, inMain ? later(pos, position) : pos)) return
          pos = event.id
          break
        case 'ready':
          snap = false
          inMain ||= event.main
          pos = later(pos, event.id)
          return
        case 'snapshot':
          pos = undefined
          break
        case 'reset':
          snap ||= onSnapshot !== undefined
      }
      if (stopped) return
      if (options.debug === true) logEvent(topic, event)
      switch (event.type) {
        case 'patch':
          return call(() => onPatch(event.ops, { id: event.id, topic }))
        case 'snapshot': {
          if (onSnapshot === undefined) return
          let value: unknown
          try {
            value = JSON.parse(event.data)
          } catch {
            return report(new PatchwireError('ERR_PATCHWIRE_FRAME', `bad snapshot frame of ${topic}: ${event.data.slice(0, 100)}`))
          }
          return call(() => onSnapshot(value as T, { topic }))
        }
        case 'reset':
          if (onReset !== undefined) return call(() => onReset(event.reason as ResetReason))
          if (onSnapshot !== undefined || reload(event)) return
          return report(new PatchwireError('ERR_PATCHWIRE_RESET', `the server reset ${topic} (${event.reason}); give onReset or onSnapshot`))
        case 'state':
          if (event.state === 'closed') stopped = true
          become(event.state)
          break
        case 'revoked':
          stopped = true
          become('revoked')
          if (onRevoked !== undefined) call(() => onRevoked(event.topic))
      }
      if ('code' in event && event.code !== undefined) report(new PatchwireError(event.code, event.message as string))
    },
  }
  hub.add(local)
  const stop = (): void => {
    if (stopped) return
    stopped = true
    hub.remove(local)
  }
  return Object.defineProperty(stop, 'state', { get: () => (stopped && state !== 'revoked' ? 'closed' : state) }) as Subscription
}

// One hub per (credentials, path) in the page: browsers allow only six
// HTTP/1.1 connections per origin, so every subscribe must not open its own.
const hubs = new Map<string, Hub>()

// The hub of the subscription's path (and credentials), created with its first subscription.
function hubOf(options: SubscribeOptions<never>, win: Window | undefined, Source: EventSourceConstructor): Hub {
  let path = options.path
  if (path === undefined) {
    if (win === undefined) throw new TypeError('subscribe: options.path is required outside a page')
    path = defaultPath(win.location.pathname)
  }
  // The query goes before any #fragment, which is never sent.
  const base = path.split('#')[0] as string
  try {
    new URL(base, pageHref() ?? 'http://localhost/')
  } catch {
    throw new TypeError(`subscribe: options.path must be a URL path or a URL, got ${JSON.stringify(path)}`)
  }
  const withCredentials = options.withCredentials === true
  const key = `${withCredentials} ${base}`
  let hub = hubs.get(key)
  if (hub === undefined) {
    const created: Hub = new Hub(base, withCredentials, Source, options.shareTabs !== false, () => {
      if (hubs.get(key) === created) hubs.delete(key)
    })
    hubs.set(key, (hub = created))
  }
  return hub
}

// Reset events that reloaded the page already.
const reloaded = new WeakSet<StreamEvent>()

// Reloads the page for a reset, once however many subscriptions it
// concerns; false outside a page.
function reload(event: StreamEvent): boolean {
  if (typeof location === 'undefined' || typeof location.reload !== 'function') return false
  if (!reloaded.has(event)) location.reload()
  reloaded.add(event)
  return true
}

const CLOSED = Object.defineProperty(() => {}, 'state', { value: 'closed' }) as Subscription

// The default onError: a drop that reconnects by itself is not an error.
function quiet(error: PatchwireError): void {
  if (error.code !== 'ERR_PATCHWIRE_DISCONNECTED') reportToConsole(error)
}

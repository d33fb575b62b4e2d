/**
 * `patchwire/react`: a topic's live state as a React hook. React is an
 * optional peer dependency: only an app that imports this entry loads it.
 */
import { useEffect, useRef, useState } from 'react'
import { follow, type LiveOptions } from './live.js'

export type { LiveInitial, LiveOptions } from './live.js'

/**
 * The live state of a topic: `undefined` until its snapshot (or
 * `options.initial.state`), then a new object for every patch, so that
 * React re-renders what changed. Every component on one path shares one
 * stream (and, with Web Locks, one per origin across tabs). A changed topic
 * resubscribes (the hook returns `undefined` until the new topic's
 * snapshot); unmounting stops the subscription. On the server (no
 * `EventSource`) it returns `options.initial?.state` and subscribes to
 * nothing. A patch that fails goes to `options.onError`, never to render.
 * @param topic - the topic, as the server publishes it
 * @param options - every option of `subscribe`, and `initial`; callbacks may
 * change between renders without resubscribing, while a change of `path`,
 * `withCredentials`, `EventSource` or `shareTabs` resubscribes
 * @returns the current state, or `undefined` before the snapshot
 * @throws TypeError as `subscribe` does, for a bad topic or option (from the effect)
 * @example
 * function Orders() {
 *   const state = useLive<{ orders: Order[] }>('orders', { path: '/events' })
 *   return state === undefined ? <p>Loading…</p> : <OrderList orders={state.orders} />
 * }
 */
export function useLive<State = unknown>(topic: string, options: LiveOptions<State> = {}): State | undefined {
  const latest = useRef(options)
  // The first topic's `initial` only: the state is kept with the topic it belongs to.
  const [live, setLive] = useState({ topic, state: options.initial?.state })
  const { path, withCredentials, EventSource, shareTabs } = options
  useEffect(() => {
    latest.current = options
  })
  useEffect(() => {
    // `initial` holds while the state is still the one it gave: a Strict Mode
    // remount resumes from its position, a later change of path does not.
    const { initial } = latest.current
    const start = initial !== undefined && live.topic === topic && live.state === initial.state ? initial : undefined
    return follow(topic, () => latest.current, (state) => setLive({ topic, state }), start)
    // The other options are read through `latest` when they are called.
  }, [topic, path, withCredentials, EventSource, shareTabs])
  return live.topic === topic ? live.state : undefined
}

/**
 * `patchwire/svelte`: a topic's live state as a Svelte store. It implements
 * the store contract (`subscribe` calls back at once with the current value
 * and returns an unsubscribe function) and imports nothing from Svelte, so
 * it works with `$store` in Svelte 4 and 5 components, and in Svelte 5
 * runes (`$store`, or `fromStore(store).current` in `.svelte.ts` files).
 */
import { follow, type LiveInitial, type LiveOptions } from './live.js'

export type { LiveInitial, LiveOptions } from './live.js'

/** A readable store, as Svelte's `Readable` is: what {@link live} returns. */
export interface LiveStore<State> {
  /**
   * Calls `run` now with the current value, then with every new one. The
   * first subscriber starts the subscription to the topic; the last one to
   * leave stops it.
   * @param run - called with the state, or `undefined` before the snapshot
   * @returns the function that unsubscribes
   */
  subscribe(run: (state: State | undefined) => void): () => void
}

/**
 * A store of a topic's live state: `undefined` until its snapshot (or
 * `options.initial.state`), then a new object for every patch. The topic is
 * subscribed to while the store has subscribers (a component using `$store`
 * subscribes on mount and unsubscribes when it goes); every store on one
 * path shares one stream. For a topic that changes, make a new store
 * (`const store = $derived(live(topic))`). On the server (no `EventSource`)
 * the store holds `options.initial?.state` and subscribes to nothing. A
 * patch that fails goes to `options.onError`.
 * @param topic - the topic, as the server publishes it
 * @param options - every option of `subscribe`, and `initial`
 * @returns the store
 * @throws TypeError as `subscribe` does, for a bad topic or option (on the first subscriber)
 * @example
 * <script>
 *   import { live } from 'patchwire/svelte'
 *   const orders = live('orders', { path: '/events' })
 * </script>
 * {#if $orders}<p>{$orders.count} orders</p>{/if}
 */
export function live<State = unknown>(topic: string, options: LiveOptions<State> = {}): LiveStore<State> {
  let value = options.initial?.state
  // `initial` starts the first subscription only; a later one starts from a snapshot.
  let initial: LiveInitial<State> | undefined = options.initial
  let stop: (() => void) | undefined
  const runs = new Set<(state: State | undefined) => void>()
  return {
    subscribe(run) {
      // A wrapper per call, so that one function subscribed twice is two subscribers.
      const each = (state: State | undefined): void => run(state)
      runs.add(each)
      each(value)
      if (stop === undefined) {
        stop = follow(topic, () => options, (state) => {
          value = state
          for (const r of runs) r(state)
        }, initial)
        initial = undefined
      }
      return () => {
        if (!runs.delete(each) || runs.size > 0) return
        stop?.()
        stop = undefined
      }
    },
  }
}

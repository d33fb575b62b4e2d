/**
 * `patchwire/vue`: a topic's live state as a Vue shallow ref. Vue is an
 * optional peer dependency: only an app that imports this entry loads it.
 */
import { shallowRef, toValue, watch, type MaybeRefOrGetter, type ShallowRef } from 'vue'
import { follow, type LiveInitial, type LiveOptions } from './live.js'

export type { LiveInitial, LiveOptions } from './live.js'

/**
 * The live state of a topic, as a shallow ref: `undefined` until its
 * snapshot (or `options.initial.state`), then a new object for every patch
 * (Vue tracks the reference, not a deep proxy). Call it in `setup` (or in
 * an effect scope). A topic given as a ref or a getter resubscribes when it
 * changes (the ref is `undefined` until the new topic's snapshot); the
 * subscription stops with the component. Every component on one path
 * shares one stream. On the server (no `EventSource`) the ref holds
 * `options.initial?.state` and nothing is subscribed. A patch that fails goes
 * to `options.onError`.
 * @param topic - the topic, or a ref or getter of it
 * @param options - every option of `subscribe`, and `initial`
 * @returns a shallow ref of the current state
 * @throws TypeError as `subscribe` does, for a bad topic or option
 * @example
 * <script setup lang="ts">
 * import { useLive } from 'patchwire/vue'
 * const orders = useLive<{ count: number }>('orders', { path: '/events' })
 * </script>
 * <template><p v-if="orders">{{ orders.count }} orders</p></template>
 */
export function useLive<State = unknown>(topic: MaybeRefOrGetter<string>, options: LiveOptions<State> = {}): ShallowRef<State | undefined> {
  const state = shallowRef<State | undefined>(options.initial?.state)
  // `initial` belongs to the first topic only; a changed topic starts from its snapshot.
  let initial: LiveInitial<State> | undefined = options.initial
  watch(() => toValue(topic), (current, _previous, onCleanup) => {
    if (initial === undefined) state.value = undefined
    onCleanup(follow(current, () => options, (next) => (state.value = next), initial))
    initial = undefined
  }, { immediate: true })
  return state
}

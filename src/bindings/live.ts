/**
 * What the React, Svelte and Vue bindings share: one topic's state kept from
 * its snapshot and its patches, each change a new reference, handed to the
 * framework through a setter. Each binding is then only the framework's way
 * of holding a value and of ending with the component.
 */
import { applyPatch, subscribe, type PatchwireError, type SubscribeOptions } from '../client/index.js'
import { reportToConsole } from '../errors.js'

/**
 * Where a page rendered on the server starts: the state it rendered and the
 * position it rendered it at (`position(topic)` on the server, taken before
 * the state was read).
 */
export interface LiveInitial<State> {
  /** The state the server rendered; the first value the binding returns, on the server and in the browser. */
  readonly state: State
  /** The event id the state was read at; the subscription resumes after it, so no patch is lost or applied twice. */
  readonly position: string
}

/** Options of the bindings: every option of `subscribe`, and `initial`. */
export interface LiveOptions<State> extends SubscribeOptions {
  /**
   * Start from the server-rendered state and resume from its position,
   * without waiting for a snapshot (and without a flash of no state). It
   * replaces `lastEventId`, and applies to the first topic only: a changed
   * topic starts from its snapshot.
   * @defaultValue none: the state is `undefined` until the snapshot
   */
  initial?: LiveInitial<State>
}

/**
 * Subscribes to `topic` and passes its state to `set`: the snapshot, then
 * each patch applied immutably (a new reference per change, untouched
 * branches shared). A patch that cannot be applied leaves the state as it
 * was and goes to `onError` (a `PatchError`, `ERR_PATCHWIRE_PATCH`): it is
 * never thrown where the framework renders. A reset's snapshot replaces the
 * state.
 * @param topic - the topic
 * @param read - the binding's current options; callbacks are read from it
 * at each call, so a component that passes new callbacks on every render does
 * not resubscribe
 * @param set - where each new state goes
 * @param initial - where to start, when the server rendered the state
 * @returns the subscription's stop function
 * @internal
 */
export function follow<State>(
  topic: string,
  read: () => LiveOptions<State>,
  set: (state: State) => void,
  initial?: LiveInitial<State>,
): () => void {
  const { initial: _ignored, ...options } = read()
  let current = initial?.state
  // Without an onError, as subscribe does: a drop that reconnects by itself is not logged.
  const report = (error: PatchwireError): void => {
    const { onError } = read()
    if (onError !== undefined) onError(error)
    else if (error.code !== 'ERR_PATCHWIRE_DISCONNECTED') reportToConsole(error)
  }
  return subscribe(topic, (ops) => {
    let next: State
    try {
      next = applyPatch(current as State, ops, { immutable: true })
    } catch (error) {
      return report(error as PatchwireError)
    }
    set((current = next))
  }, {
    ...options,
    ...(initial === undefined ? {} : { lastEventId: initial.position }),
    onSnapshot: (state, meta) => {
      set((current = state as State))
      read().onSnapshot?.(state, meta)
    },
    onError: report,
    onReset: (reason) => read().onReset?.(reason),
    onStateChange: (state) => read().onStateChange?.(state),
  })
}

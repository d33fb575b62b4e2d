import type { BrokerListener } from '../broker/broker.js'
import { PatchwireError } from '../errors.js'

/** One `subscribe` call on a broker adapter. @internal */
export interface Subscription {
  readonly listener: BrokerListener
  readonly onGap: (() => void) | undefined
  active: boolean
}

/**
 * Hands one message to a topic's listeners. A copy of the set: a
 * subscription that a listener adds while it runs does not get this
 * message (one it removes is skipped as no longer active). A listener that
 * throws goes to `onError`; the others still get the message.
 * @internal
 */
export function deliverToListeners(topic: { readonly name: string; readonly subscriptions: ReadonlySet<Subscription> }, payload: string, id: string, onError: (error: PatchwireError) => void): void {
  for (const subscription of [...topic.subscriptions]) {
    if (!subscription.active) continue
    try {
      subscription.listener(payload, id)
    } catch (error) {
      onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `a listener of topic "${topic.name}" threw; the others still got the message`, { cause: error }))
    }
  }
}

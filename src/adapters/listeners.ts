import type { BrokerListener } from '../broker/broker.js'
import { PatchwireError } from '../errors.js'

/** One `subscribe` call on a broker adapter. @internal */
export interface Subscription {
  readonly listener: BrokerListener
  readonly onGap: (() => void) | undefined
  active: boolean
}

/** A topic of a broker adapter, as its listeners see it. @internal */
export interface ListenedTopic {
  readonly name: string
  readonly subscriptions: ReadonlySet<Subscription>
}

/**
 * Hands one message to a topic's listeners. A copy of the set: a
 * subscription that a listener adds while it runs does not get this
 * message (one it removes is skipped as no longer active). A listener that
 * throws goes to `onError`; the others still get the message.
 * @internal
 */
export function deliverToListeners(topic: ListenedTopic, payload: string, id: string, onError: (error: PatchwireError) => void): void {
  for (const subscription of [...topic.subscriptions]) {
    if (!subscription.active) continue
    try {
      subscription.listener(payload, id)
    } catch (error) {
      onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `a listener of topic "${topic.name}" threw; the others still got the message`, { cause: error }))
    }
  }
}

/**
 * Calls every `onGap` of `topic`: messages may have been lost. One that
 * throws is reported, and the others still run.
 * @internal
 */
export function reportGap(topic: ListenedTopic, onError: (error: PatchwireError) => void): void {
  for (const subscription of [...topic.subscriptions]) {
    if (!subscription.active || subscription.onGap === undefined) continue
    try {
      subscription.onGap()
    } catch (error) {
      onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `the onGap callback of topic "${topic.name}" threw`, { cause: error }))
    }
  }
}

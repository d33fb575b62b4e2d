import { PatchwireError, reportToConsole } from './errors.js'
import { serialiseOps } from './frame.js'
import type { PatchOp } from './patch-op.js'

/** Receives a topic's payloads: the ops already serialised as JSON, exactly once per publish. */
export type BrokerListener = (payload: string) => void

/**
 * Stops a subscription. Calling it again does nothing. `ready`, when present,
 * settles once the subscription is live (see {@link Broker.subscribe}).
 */
export type Unsubscribe = (() => void) & { readonly ready?: PromiseLike<unknown> }

/**
 * The minimal interface every broker implements: the in-process one from
 * {@link createBroker}, and adapters such as `patchwire/redis`.
 *
 * Payloads cross the broker already serialised (ops encoded once per publish,
 * never per connection), and never contain CR or LF.
 */
export interface Broker {
  /**
   * Delivers `payload` to every listener of `topic`, in publish order.
   * @returns a Promise that settles when the broker has taken the message;
   * it rejects when the broker cannot take it (for example it is disconnected).
   */
  publish(topic: string, payload: string): Promise<void>
  /**
   * Subscribes `listener` to `topic`.
   * @param onGap - called when messages on this topic may have been lost
   * (for example a connection to Redis dropped and came back). Subscribers
   * that promise ordered delivery must then tell their readers to resync.
   * @returns a function that unsubscribes; it is idempotent. A broker whose
   * subscription takes effect later (a network round trip) gives that
   * function a `ready` Promise that settles once messages flow, or rejects if
   * subscribing failed: the handler holds a topic's first streams until then,
   * so that none of them can miss a message published in between.
   */
  subscribe(topic: string, listener: BrokerListener, onGap?: () => void): Unsubscribe
}

/** Options of {@link createBroker}. */
export interface BrokerOptions {
  /**
   * Called when a listener throws. The other listeners still get the message.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

/**
 * Creates an in-process broker: `publish` calls every listener of the topic
 * synchronously, then resolves.
 *
 * @param options - see {@link BrokerOptions}
 * @returns a {@link Broker}
 * @example
 * const broker = createBroker()
 * const events = createHandler({ broker })
 * await publish(broker, 'room:1', [['add', '/messages/-', 'hi']])
 */
export function createBroker(options: BrokerOptions = {}): Broker {
  const onError = options.onError ?? reportToConsole
  // Listener arrays are replaced, never mutated, so a listener that
  // unsubscribes (or subscribes) during delivery cannot skip or repeat one.
  const topics = new Map<string, BrokerListener[]>()

  return {
    publish(topic, payload) {
      const listeners = topics.get(topic)
      if (listeners !== undefined) {
        for (const listener of listeners) {
          try {
            listener(payload)
          } catch (error) {
            onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `a listener of topic "${topic}" threw; the others still got the message`, { cause: error }))
          }
        }
      }
      return RESOLVED
    },
    subscribe(topic, listener) {
      topics.set(topic, [...(topics.get(topic) ?? []), listener])
      let subscribed = true
      return () => {
        if (!subscribed) return
        subscribed = false
        // Remove this subscription only: the same function may be subscribed twice.
        const rest = [...(topics.get(topic) ?? [])]
        rest.splice(rest.indexOf(listener), 1)
        if (rest.length === 0) topics.delete(topic)
        else topics.set(topic, rest)
      }
    },
  }
}

const RESOLVED = Promise.resolve()

/** The process-wide broker used by `publish(topic, ops)` and by handlers created without `broker`. */
export const defaultBroker: Broker = createBroker()

/**
 * Publishes JSON-Patch ops to every stream subscribed to `topic`.
 *
 * The ops are validated and serialised once, synchronously; a bad argument
 * throws before anything is sent.
 *
 * @param topic - a non-empty string
 * @param ops - JSON-Patch tuples, see {@link PatchOp}
 * @returns a Promise that settles when the broker has taken the message (at once in-process)
 * @throws TypeError when the topic is not a non-empty string, or the ops are not an
 * array of tuples, or are not JSON-serialisable (circular, BigInt)
 * @example
 * publish('dashboard:user:42', [['replace', '/counter', 7]])
 * publish(redisBroker, 'dashboard:user:42', [['replace', '/counter', 7]])
 */
export function publish(topic: string, ops: readonly PatchOp[]): Promise<void>
/**
 * Publishes on an explicit broker.
 * @param broker - the broker to publish on
 * @param topic - a non-empty string
 * @param ops - JSON-Patch tuples
 */
export function publish(broker: Broker, topic: string, ops: readonly PatchOp[]): Promise<void>
export function publish(...args: [string, readonly PatchOp[]] | [Broker, string, readonly PatchOp[]]): Promise<void> {
  const [broker, topic, ops] = args.length === 3 ? args : [defaultBroker, ...args]
  if (broker === null || typeof broker !== 'object' || typeof broker.publish !== 'function') {
    throw new TypeError('publish(broker, topic, ops): broker must implement Broker (a publish method); use createBroker() or an adapter')
  }
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`publish: topic must be a non-empty string, got ${topic === '' ? 'an empty string' : typeof topic}`)
  }
  return broker.publish(topic, serialiseOps(ops))
}

import type { PatchwireError } from '../errors.js'
import type { PatchOp } from '../patch-op.js'
import { serialiseOps } from '../protocol/frame.js'
import { defaultBroker } from './memory.js'

/**
 * Receives a topic's messages, exactly once per publish: the ops already
 * serialised as JSON, and the message's event id when the broker issues ids
 * (see {@link Broker.replay}).
 */
export type BrokerListener = (payload: string, id?: string) => void

/**
 * Stops a subscription. Calling it again does nothing. `ready`, when present,
 * settles once the subscription is live (see {@link Broker.subscribe}).
 */
export type Unsubscribe = (() => void) & { readonly ready?: PromiseLike<unknown> }

/** One kept message, as {@link Broker.replay} returns it. */
export interface HistoryFrame {
  /** The message's event id. */
  readonly id: string
  /** The serialised ops, as published. */
  readonly payload: string
}

/**
 * Why a broker cannot replay from an id: `malformed-id` (not an id this
 * library writes), `foreign-id` (issued by a history that is gone: a
 * restarted in-process broker, a flushed Redis), `history-exceeded` (some
 * messages after it are no longer kept).
 */
export type ReplayRefusal = 'malformed-id' | 'foreign-id' | 'history-exceeded'

/** What {@link Broker.replay} answers: the messages after the id, or why it cannot. */
export type ReplayResult = { readonly frames: readonly HistoryFrame[] } | { readonly reset: ReplayRefusal }

/**
 * The interface every broker implements: the in-process one from
 * {@link createBroker}, and adapters such as `patchwire/redis`.
 *
 * Two methods are required: `publish` and `subscribe`. Payloads cross the
 * broker already serialised (ops encoded once per publish, never per
 * connection), and never contain CR or LF. With only these two, streams get
 * patches and the handler numbers them itself; a reconnect that missed a
 * message gets a reset.
 *
 * Keeping history is an optional capability: a broker that has `position`
 * and `replay` issues the event ids (`<epoch>-<seq>`, `seq` one increasing
 * order across all of its topics), passes each message's id to its
 * listeners, and delivers one subscriber's messages of all topics in id
 * order. Resume is then exact on every process that shares the broker.
 */
export interface Broker {
  /**
   * Delivers `payload` to every listener of `topic`, in publish order.
   * @returns a Promise that settles when the broker has taken the message,
   * with its event id when the broker issues ids; it rejects when the broker
   * cannot take it (for example it is disconnected).
   */
  publish(topic: string, payload: string): Promise<string | void>
  /**
   * Subscribes `listener` to `topic`.
   * @param onGap - called when messages on this topic may have been lost and
   * could not be recovered (for example a connection to Redis dropped and
   * the history no longer holds what was missed). Subscribers that promise
   * ordered delivery must then tell their readers to resync.
   * @returns a function that unsubscribes; it is idempotent. A broker whose
   * subscription takes effect later (a network round trip) gives that
   * function a `ready` Promise that settles once messages flow, or rejects if
   * subscribing failed: the handler holds a topic's first streams until then,
   * so that none of them can miss a message published in between.
   */
  subscribe(topic: string, listener: BrokerListener, onGap?: () => void): Unsubscribe
  /**
   * History capability: the current position of `topic`, an id `P` such
   * that every message of `topic` published after the call has an id above
   * `P`, and `replay(topic, P)` answers exactly those. It settles only once
   * every message with an id up to `P` that this broker delivers to this
   * process's listeners has been delivered (Redis: a `PING` on the
   * subscriber connection after reading the counter), so that a stream
   * started at `P` can neither miss nor repeat one.
   */
  position?(topic: string): string | PromiseLike<string>
  /**
   * History capability: the kept messages of `topic` after the id `after`,
   * oldest first, all of them (none missing up to the broker's position when
   * it answers), or why they cannot be had.
   */
  replay?(topic: string, after: string): ReplayResult | PromiseLike<ReplayResult>
}

/** Options of {@link createBroker}. */
export interface BrokerOptions {
  /**
   * Messages kept per topic for resume; `0` keeps none.
   * @defaultValue 1000
   */
  history?: number
  /**
   * Bytes of kept messages over all topics together; the oldest messages go
   * first, whatever their topic. A message counts as its payload's length
   * plus 136 bytes of bookkeeping, so this bounds the heap the history holds.
   * @defaultValue 67108864 (64 MiB)
   */
  historyBytes?: number
  /**
   * How long a message is kept, in milliseconds.
   * @defaultValue 300000 (5 minutes)
   */
  historyMs?: number
  /**
   * Called when a listener throws (the other listeners still get the
   * message), and with publishes that failed while nobody awaited them.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

/**
 * Publishes JSON-Patch ops to every stream subscribed to `topic`.
 *
 * The ops are validated and serialised once, synchronously; a bad argument
 * throws before anything is sent.
 *
 * @param topic - a non-empty string
 * @param ops - JSON-Patch tuples, see {@link PatchOp}
 * @returns a Promise of the message's event id, once the broker has taken
 * it (at once in-process). A broker without history resolves with whatever
 * its `publish` gives (nothing, for most).
 * @throws TypeError when the topic is not a non-empty string, or the ops are
 * not an array of valid op tuples (one of the eight op names, the right
 * length), or hold values that are not JSON (circular, BigInt, `undefined`,
 * `NaN`, `Infinity`, functions)
 * @example
 * const id = await publish('dashboard:user:42', [['replace', '/counter', 7]])
 * publish(redisBroker, 'dashboard:user:42', [['replace', '/counter', 7]])
 */
export function publish(topic: string, ops: readonly PatchOp[]): Promise<string>
/**
 * Publishes on an explicit broker.
 * @param broker - the broker to publish on
 * @param topic - a non-empty string
 * @param ops - JSON-Patch tuples
 */
export function publish(broker: Broker, topic: string, ops: readonly PatchOp[]): Promise<string>
export function publish(...args: [string, readonly PatchOp[]] | [Broker, string, readonly PatchOp[]]): Promise<string> {
  const [broker, topic, ops] = args.length === 3 ? args : [defaultBroker, ...args]
  checkBroker(broker, 'publish(broker, topic, ops)', 'publish')
  checkTopic(topic, 'publish')
  // Returned as the broker gives it: a broker may hand out a promise that
  // reports a failure nobody awaited (see patchwire/redis), which a `then`
  // here would count as awaited.
  return broker.publish(topic, serialiseOps(ops)) as Promise<string>
}

/**
 * The current position of `topic`: a stream that starts from this id (as
 * `Last-Event-ID`, `?lastEventId=`, or the client's `lastEventId` option)
 * gets exactly the messages of `topic` published after the call, on any
 * process that shares the broker. Render a page's state and its position
 * together, and the browser loses nothing in between.
 *
 * @param topic - a non-empty string
 * @returns a Promise of the event id
 * @throws TypeError when the topic is not a non-empty string, or the broker
 * keeps no history (it has no `position` method)
 * @example
 * const [state, at] = [loadState(), await position('dashboard:user:42')]
 * res.end(render(state, at)) // the page subscribes with { lastEventId: at }
 */
export function position(topic: string): Promise<string>
/**
 * The current position of `topic` on an explicit broker.
 * @param broker - a broker with the history capability
 * @param topic - a non-empty string
 */
export function position(broker: Broker, topic: string): Promise<string>
export function position(...args: [string] | [Broker, string]): Promise<string> {
  const [broker, topic] = args.length === 2 ? args : [defaultBroker, ...args]
  checkBroker(broker, 'position(broker, topic)', 'position')
  checkTopic(topic, 'position')
  if (typeof broker.position !== 'function') {
    throw new TypeError('position: this broker keeps no history (it has no position method), so no stream can start from a position; use createBroker() or patchwire/redis')
  }
  return Promise.resolve(broker.position(topic))
}

function checkBroker(broker: unknown, call: string, name: string): asserts broker is Broker {
  if (broker === null || typeof broker !== 'object' || typeof (broker as Broker).publish !== 'function') {
    throw new TypeError(`${call}: broker must implement Broker (a publish method); use createBroker() or an adapter, or call ${name} without a broker for the default one`)
  }
}

function checkTopic(topic: unknown, name: string): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`${name}: topic must be a non-empty string, got ${topic === '' ? 'an empty string' : typeof topic}`)
  }
}

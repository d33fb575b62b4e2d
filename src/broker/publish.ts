import type { PatchOp } from '../patch-op.js'
import { serialiseOps } from '../protocol/frame.js'
import type { Broker } from './broker.js'
import { defaultBroker } from './memory.js'

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
 * length, a path that is a JSON Pointer: `""` or starting with `/`, `~` only
 * as `~0`/`~1`), or hold values that JSON would not carry as they are
 * (circular, BigInt, `undefined`, `NaN`, `Infinity`, functions, a `Map`, a
 * `Set`, or any object that is not plain or an array and has no `toJSON`;
 * a `Date` is fine)
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

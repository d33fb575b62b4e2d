import type { PatchOp } from '../patch-op.js'
import { serialiseOps } from '../protocol/frame.js'
import type { Broker } from './broker.js'
import { defaultBroker } from './memory.js'

/** Options of {@link publish} on an explicit broker. */
export interface PublishOptions {
  /**
   * Publish as part of this database transaction, on a broker that can
   * (`patchwire/postgres`: a client of its pool inside `BEGIN … COMMIT`):
   * streams get the message if and only if the transaction commits.
   * Other brokers refuse it with a `TypeError`.
   * @defaultValue none: the publish is not part of any transaction
   */
  readonly transaction?: object
}

/** A broker whose `publish` takes {@link PublishOptions} (it declares a third parameter). */
interface TransactionalBroker extends Broker {
  publish(topic: string, payload: string, options?: PublishOptions): Promise<string | void>
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
 * @param options - see {@link PublishOptions}
 * @throws TypeError also when `options` is not an object, or has a
 * `transaction` that the broker cannot publish in
 * @example
 * await client.query('BEGIN')
 * await client.query('UPDATE rooms SET title = $1 WHERE id = 1', [title])
 * await publish(pgBroker, 'room:1', [['replace', '/title', title]], { transaction: client })
 * await client.query('COMMIT')
 */
export function publish(broker: Broker, topic: string, ops: readonly PatchOp[], options?: PublishOptions): Promise<string>
export function publish(...args: [string, readonly PatchOp[]] | [Broker, string, readonly PatchOp[], (PublishOptions | undefined)?]): Promise<string> {
  const [broker, topic, ops, options]: [Broker, string, readonly PatchOp[], PublishOptions?] = args.length >= 3 ? args as [Broker, string, readonly PatchOp[], PublishOptions?] : [defaultBroker, ...args as [string, readonly PatchOp[]]]
  checkBroker(broker, 'publish(broker, topic, ops)', 'publish')
  checkTopic(topic, 'publish')
  if (options === undefined) {
    // Returned as the broker gives it: a broker may hand out a promise that
    // reports a failure nobody awaited (see patchwire/redis), which a `then`
    // here would count as awaited.
    return broker.publish(topic, serialiseOps(ops)) as Promise<string>
  }
  checkOptions(options, broker)
  return (broker as TransactionalBroker).publish(topic, serialiseOps(ops), options) as Promise<string>
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

function checkOptions(options: unknown, broker: Broker): asserts options is PublishOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`publish(broker, topic, ops, options): options must be an object such as { transaction }, got ${options === null ? 'null' : typeof options}`)
  }
  const { transaction } = options as PublishOptions
  if (transaction === undefined) return
  if (transaction === null || typeof transaction !== 'object') {
    throw new TypeError('publish(broker, topic, ops, { transaction }): transaction must be a client of the broker\'s pool inside BEGIN … COMMIT')
  }
  if (broker.publish.length < 3) {
    throw new TypeError('publish(broker, topic, ops, { transaction }): this broker cannot publish inside a transaction; use createPostgresBroker from patchwire/postgres, or publish after the commit')
  }
}

function checkTopic(topic: unknown, name: string): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`${name}: topic must be a non-empty string, got ${topic === '' ? 'an empty string' : typeof topic}`)
  }
}

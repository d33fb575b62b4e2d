import type { Broker, Revocation } from './broker.js'
import { defaultBroker } from './memory.js'

/** Which streams a revocation ends: at least one of the two; both means that identity's streams of that topic. */
export interface RevokeFilter {
  /**
   * Whose streams: the value the handler's `identify` gave them.
   * @defaultValue none: every identity's streams of `topic`
   */
  identity?: string
  /**
   * Which topic.
   * @defaultValue none: every topic of the identity's streams
   */
  topic?: string
}

/**
 * Ends every matching stream on every process that shares the default
 * broker: each gets, for each matching topic, `event: revoked` with
 * `data: {"topic":"<topic>"}`, and then ends. A revoke is an event, not a
 * deny list: a stream that opens after it is judged by `authorize` again.
 *
 * @param filter - `{ identity?, topic? }`, at least one
 * @returns a Promise that resolves once the broker has taken the revocation
 * @throws TypeError for an empty filter, an unknown key, or an identity or
 * topic that is not a non-empty string
 * @example
 * // logout: every stream of this user, on every process
 * await revoke({ identity: session.userId })
 */
export function revoke(filter: RevokeFilter): Promise<void>
/**
 * Revokes through an explicit broker. A broker with the revocation
 * capability (`revoke` and `onRevoke`, as `createBroker()` and
 * `patchwire/redis` have) carries it to every process that shares it; a
 * broker without it revokes on the handlers of this process that use that
 * broker object only, and the call still resolves.
 * @param broker - the broker the handlers use
 * @param filter - `{ identity?, topic? }`, at least one
 */
export function revoke(broker: Broker, filter: RevokeFilter): Promise<void>
export function revoke(...args: [RevokeFilter] | [Broker, RevokeFilter]): Promise<void> {
  const [broker, filter] = args.length === 2 ? args : [defaultBroker, args[0]]
  if (broker === null || typeof broker !== 'object' || typeof (broker as Broker).publish !== 'function') {
    throw new TypeError('revoke(broker, filter): broker must implement Broker (a publish method); use createBroker() or an adapter, or call revoke(filter) for the default broker')
  }
  const revocation = checkRevocation(filter, 'revoke')
  if (canRevoke(broker)) return Promise.resolve(broker.revoke(revocation)).then(() => undefined)
  for (const listener of localListeners.get(broker) ?? []) listener(revocation)
  return Promise.resolve()
}

/**
 * Checks a revoke filter.
 * @param caller - the call's name, for messages
 * @returns the revocation, with only the keys that are set
 * @throws TypeError naming what is wrong and the fix
 * @internal
 */
export function checkRevocation(filter: unknown, caller: string): Revocation {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new TypeError(`${caller}: filter must be an object { identity?, topic? }, such as { identity: userId }, got ${filter === null ? 'null' : Array.isArray(filter) ? 'an array' : typeof filter}`)
  }
  const unknown = Object.keys(filter).filter((key) => key !== 'identity' && key !== 'topic')
  if (unknown.length > 0) {
    throw new TypeError(`${caller}: unknown filter key(s) ${unknown.map((key) => `"${key}"`).join(', ')}; the keys are identity and topic`)
  }
  const { identity, topic } = filter as Record<string, unknown>
  for (const [name, value] of [['identity', identity], ['topic', topic]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new TypeError(`${caller}: filter.${name} must be a non-empty string${name === 'identity' ? ' (the value identify gave the streams)' : ''}, got ${value === '' ? 'an empty string' : value === null ? 'null' : typeof value}`)
    }
  }
  if (identity === undefined && topic === undefined) {
    throw new TypeError(`${caller}: filter must name an identity, a topic or both, such as { identity: userId } or { topic }; an empty filter would match every stream`)
  }
  const revocation: { identity?: string; topic?: string } = {}
  if (identity !== undefined) revocation.identity = identity as string
  if (topic !== undefined) revocation.topic = topic as string
  return revocation
}

/**
 * Listens for the revocations of `broker`: through its `onRevoke` when it
 * has the capability, else those that `revoke(broker, filter)` makes in
 * this process.
 * @returns a function that stops listening; it is idempotent
 * @internal
 */
export function listenForRevocations(broker: Broker, listener: (revocation: Revocation) => void): () => void {
  if (canRevoke(broker)) return broker.onRevoke(listener)
  let listeners = localListeners.get(broker)
  if (listeners === undefined) localListeners.set(broker, (listeners = new Set()))
  const own = listeners
  // A wrapper, so that one function listening twice is two listeners.
  const entry = (revocation: Revocation): void => listener(revocation)
  own.add(entry)
  return () => {
    own.delete(entry)
  }
}

/** Whether a broker carries revocations itself: both methods, as the capability is defined. */
function canRevoke(broker: Broker): broker is Broker & Required<Pick<Broker, 'revoke' | 'onRevoke'>> {
  return typeof broker.revoke === 'function' && typeof broker.onRevoke === 'function'
}

/**
 * The handlers of this process listening on a broker without the
 * capability; weak, so that a broker nobody holds is forgotten with them.
 */
const localListeners = new WeakMap<Broker, Set<(revocation: Revocation) => void>>()

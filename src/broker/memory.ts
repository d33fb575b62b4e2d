import { randomBytes } from 'node:crypto'
import { PatchwireError, reportToConsole } from '../errors.js'
import { formatEventId, parseEventId } from '../protocol/event-id.js'
import type { Broker, BrokerListener, BrokerOptions, HistoryFrame, ReplayResult, Revocation } from './broker.js'
import { History } from './history.js'

export const DEFAULT_HISTORY = 1000
export const DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024
export const DEFAULT_HISTORY_MS = 300_000

/**
 * Creates an in-process broker: `publish` numbers the message, keeps it in
 * the history and calls every listener of the topic synchronously, then
 * resolves with the message's id.
 *
 * Ids are `<epoch>-<seq>`: one order across all topics, and an epoch drawn
 * anew for each broker, so an id from before a restart is recognised as
 * foreign. Resume is exact within the process for as long as the history
 * keeps the messages after the id.
 *
 * @param options - see {@link BrokerOptions}
 * A revocation (`revoke(broker, filter)`) reaches the broker's `onRevoke`
 * listeners synchronously: the handlers of this process that use it.
 *
 * @returns a {@link Broker} with the history capability (`position`,
 * `replay`) and the revocation capability (`revoke`, `onRevoke`)
 * @throws TypeError for an unknown option or one of the wrong type;
 * RangeError for a number out of range
 * @example
 * const broker = createBroker({ historyBytes: 16 * 1024 * 1024 })
 * const events = createHandler({ broker })
 * const id = await publish(broker, 'room:1', [['add', '/messages/-', 'hi']])
 */
export function createBroker(options: BrokerOptions = {}): Broker {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`createBroker(options): options must be an object, got ${options === null ? 'null' : typeof options}`)
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw new TypeError(`createBroker: unknown option "${name}"; the options are ${[...KNOWN].join(', ')}`)
  }
  const history = new History(
    count(options, 'history', DEFAULT_HISTORY),
    count(options, 'historyBytes', DEFAULT_HISTORY_BYTES),
    count(options, 'historyMs', DEFAULT_HISTORY_MS),
  )
  const onError = options.onError ?? reportToConsole
  if (typeof onError !== 'function') {
    throw new TypeError(`createBroker: option "onError" must be a function, got ${typeof onError}`)
  }
  const epoch = randomBytes(8).readBigUInt64BE().toString(36).slice(0, 12)
  let seq = 0
  // Listener arrays are replaced, never mutated, so a listener that
  // unsubscribes (or subscribes) during delivery cannot skip or repeat one.
  const topics = new Map<string, BrokerListener[]>()
  // Replaced, never mutated, for the same reason.
  let revokeListeners: readonly ((revocation: Revocation) => void)[] = []

  return {
    publish(topic, payload) {
      const id = formatEventId(epoch, ++seq)
      history.push(topic, seq, payload)
      const listeners = topics.get(topic)
      if (listeners !== undefined) {
        for (const listener of listeners) {
          try {
            listener(payload, id)
          } catch (error) {
            onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', `a listener of topic "${topic}" threw; the others still got the message`, { cause: error }))
          }
        }
      }
      return Promise.resolve(id)
    },
    subscribe(topic, listener) {
      topics.set(topic, [...(topics.get(topic) ?? []), listener])
      history.watch(topic)
      let subscribed = true
      return () => {
        if (!subscribed) return
        subscribed = false
        history.unwatch(topic)
        // Remove this subscription only: the same function may be subscribed twice.
        const rest = [...(topics.get(topic) ?? [])]
        rest.splice(rest.indexOf(listener), 1)
        if (rest.length === 0) topics.delete(topic)
        else topics.set(topic, rest)
      }
    },
    position() {
      return formatEventId(epoch, seq)
    },
    replay(topic, after): ReplayResult {
      const parsed = parseEventId(after)
      if (parsed === undefined) return MALFORMED
      // A position this broker has not reached was not issued by it either.
      if (parsed.epoch !== epoch || parsed.seq > seq) return FOREIGN
      const entries = history.after(topic, parsed.seq)
      if (entries === undefined) return EXCEEDED
      const frames: HistoryFrame[] = entries.map((entry) => ({ id: formatEventId(epoch, entry.seq), payload: entry.payload }))
      return { frames }
    },
    revoke(revocation) {
      for (const listener of revokeListeners) {
        try {
          listener(revocation)
        } catch (error) {
          onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', 'a revocation listener threw; the others still got the revocation', { cause: error }))
        }
      }
      return Promise.resolve()
    },
    onRevoke(listener) {
      revokeListeners = [...revokeListeners, listener]
      let listening = true
      return () => {
        if (!listening) return
        listening = false
        const rest = [...revokeListeners]
        rest.splice(rest.indexOf(listener), 1)
        revokeListeners = rest
      }
    },
  }
}

const MALFORMED: ReplayResult = { reset: 'malformed-id' }
const FOREIGN: ReplayResult = { reset: 'foreign-id' }
const EXCEEDED: ReplayResult = { reset: 'history-exceeded' }

const KNOWN = new Set<string>(['history', 'historyBytes', 'historyMs', 'onError'] satisfies (keyof BrokerOptions)[])

function count(options: BrokerOptions, name: 'history' | 'historyBytes' | 'historyMs', fallback: number): number {
  const value: unknown = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new TypeError(`createBroker: option "${name}" must be an integer, got ${typeof value}`)
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`createBroker: option "${name}" must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got ${value}`)
  }
  return value
}

/** The process-wide broker used by `publish(topic, ops)` and by handlers created without `broker`. */
export const defaultBroker: Broker = createBroker()

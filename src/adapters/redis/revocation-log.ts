/**
 * The revocation log: every revocation the Redis broker sends is appended
 * to a capped Redis Stream under the prefix, and published on the control
 * channel with its entry id, in one script. A process whose subscriber
 * connection was down reads there what it missed.
 *
 * Both names are `<prefix>` followed by a NUL and `revocations` (a key and
 * a channel live apart in Redis): a topic's key is `<prefix>last:<topic>`
 * or `<prefix>stream:<topic>`, its channel `<prefix><topic>`, and a
 * handler refuses a topic with a control character, so neither can be one
 * of a topic. Under Redis Cluster the prefix's hash tag puts the key in the
 * slot of the broker's other keys.
 */

import type { Connection } from './clients.js'
import { Script } from './scripts.js'

/**
 * About how many revocations the log keeps (`MAXLEN ~`): an outage of a
 * subscriber during which more are made loses the oldest of them, which
 * the process reports. A revocation's entry is its JSON, tens of bytes.
 */
const LOG_LENGTH = 10_000

/**
 * KEYS: the log. ARGV: the control channel, the revocation's JSON, the
 * log's length. Appends the revocation and publishes `<entry id> <json>`:
 * atomically, so that a process hears every revocation either on the
 * channel or, after an outage, in the log, with the id that tells which
 * ones it already has. Returns the entry id.
 */
const APPEND = new Script(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'r', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
`)

/** KEYS: the log. Returns the id of its newest entry, '0-0' when it has none. */
const NEWEST = new Script(`
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if newest then return newest[1] end
return '0-0'
`)

/** KEYS: the log. ARGV: an entry id. Returns the entries from that id on, it included when still kept. */
const FROM = new Script(`
return redis.call('XRANGE', KEYS[1], ARGV[1], '+')
`)

/** A log entry id, `<ms>-<seq>`. @internal */
export type LogId = string

/** The id before every entry: the log was empty. @internal */
export const EMPTY_LOG: LogId = '0-0'

/** One revocation of the log. @internal */
export interface LogEntry {
  readonly id: LogId
  /** The revocation's JSON, as sent. */
  readonly text: string
}

/**
 * Runs a read script on the publisher connection within `publishTimeoutMs`
 * (`ScriptRunner.run`, waiting for a publisher that is reconnecting).
 * @internal
 */
export type RunRead = (script: Script, keys: string[], args: string[], what: string) => Promise<unknown>

/** The revocation log of one prefix. @internal */
export class RevocationLog {
  /** The control channel. */
  readonly channel: string
  readonly #key: string
  readonly #publisher: Connection
  readonly #read: RunRead

  /**
   * @param prefix - the broker's prefix
   * @param publisher - the connection revocations are appended on
   * @param read - runs the reads
   */
  constructor(prefix: string, publisher: Connection, read: RunRead) {
    this.channel = `${prefix}\u0000revocations`
    this.#key = this.channel
    this.#publisher = publisher
    this.#read = read
  }

  /**
   * Appends a revocation and publishes it, in one script call.
   * @param text - the revocation's JSON
   * @returns the script's reply; it rejects with the client's error
   */
  append(text: string): Promise<unknown> {
    return APPEND.run(this.#publisher, [this.#key], [this.channel, text, String(LOG_LENGTH)])
  }

  /** The id of the log's newest entry, {@link EMPTY_LOG} when there is none. */
  async newest(): Promise<LogId> {
    return asId(await this.#read(NEWEST, [this.#key], [], 'read the newest id of the revocation log'))
  }

  /** The log's entries from `id` on, oldest first: the first is `id` itself while the log still has it. */
  async from(id: LogId): Promise<LogEntry[]> {
    const reply = await this.#read(FROM, [this.#key], [id], 'read the revocations missed while the subscriber was down')
    return asArray(reply).map((entry) => {
      const [entryId, fields] = asArray(entry)
      const values = asArray(fields).map(String)
      return { id: asId(entryId), text: values[values.indexOf('r') + 1] ?? '' }
    })
  }
}

/**
 * Splits a message of the control channel, `<entry id> <json>`.
 * @returns undefined for a message of another shape
 * @internal
 */
export function splitMessage(message: string): { readonly id: LogId; readonly text: string } | undefined {
  const space = message.indexOf(' ')
  const id = space > 0 ? message.slice(0, space) : ''
  return ID.test(id) ? { id, text: message.slice(space + 1) } : undefined
}

/**
 * Orders two entry ids, as Redis does: by milliseconds, then sequence.
 * Compared as digit strings (by length, then text), since a sequence may
 * exceed what a number holds exactly.
 * @returns below 0, 0 or above 0, as `a` comes before, is, or comes after `b`
 * @internal
 */
export function compareIds(a: LogId, b: LogId): number {
  const [aMs = '', aSeq = ''] = a.split('-')
  const [bMs = '', bSeq = ''] = b.split('-')
  return compareDigits(aMs, bMs) || compareDigits(aSeq, bSeq)
}

/** An entry id as Redis writes it: no sign, no leading zero. */
const ID = /^(?:0|[1-9][0-9]*)-(?:0|[1-9][0-9]*)$/

function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}

function asId(value: unknown): LogId {
  const text = String(value)
  if (!ID.test(text)) throw new TypeError(`unexpected revocation log id from Redis: ${text}`)
  return text
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`unexpected reply from Redis: ${String(value)}`)
  return value
}

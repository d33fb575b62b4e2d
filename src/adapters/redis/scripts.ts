/**
 * What the broker keeps in Redis, and the two Lua scripts that keep it.
 *
 * Keys, for a broker prefix `P` (default `patchwire:`):
 * - `P epoch`: names the history; created (random) when missing.
 * - `P seq`: the position counter, one order across all topics. When the
 *   history is created its first value is Redis's `TIME` in microseconds
 *   (or above the old counter, if one survived), so that positions keep
 *   increasing across a flush or a restart without persistence; at today's
 *   clock that leaves about 230 years below 2^53.
 * - `P last:<topic>`: the position of the topic's latest message (or of the
 *   moment the key was created); kept for a day after the topic's last
 *   publish or position read, or `historyMs` if longer.
 * - `P stream:<topic>`: a Redis Stream of the topic's messages, entry id
 *   `<seq>-0`, fields `d` (payload) and `p` (the position of the topic's
 *   previous message, from `last`, or empty when that was unknown),
 *   trimmed to about `history` entries and expiring `historyMs` after the
 *   topic's last publish.
 *
 * Every message also goes out on the channel `P<topic>` as
 * `<epoch>:<seq>:<prev>:<payload>`. Since a script runs atomically, every
 * subscriber connection receives the messages of all channels in position
 * order, and `prev` lets it check that it has the topic's previous message:
 * a message whose `prev` is above what it last delivered follows a hole,
 * which it refills from the stream. `prev` chains the topic's messages
 * exactly, whatever the other topics do, which a per-topic counter alone
 * could not do for `replay(topic, after)`: the entry right after `after`
 * is complete history exactly when its `prev` is at most `after`.
 *
 * Under Redis Cluster a script may only touch keys of one hash slot: give
 * the broker a prefix with a hash tag (`{app}:`), so that all of them share
 * one slot. That slot's node then does all of this broker's work.
 */

import { createHash, randomFillSync } from 'node:crypto'
import type { Connection } from './clients.js'

/** The Redis keys of one broker prefix. @internal */
export interface KeyLayout {
  readonly epoch: string
  readonly seq: string
  last(topic: string): string
  stream(topic: string): string
  channel(topic: string): string
}

/** @internal */
export function keyLayout(prefix: string): KeyLayout {
  return {
    epoch: `${prefix}epoch`,
    seq: `${prefix}seq`,
    last: (topic) => `${prefix}last:${topic}`,
    stream: (topic) => `${prefix}stream:${topic}`,
    channel: (topic) => prefix + topic,
  }
}

/**
 * How long a topic's `last` key outlives its last publish (or position
 * read), at least: the chain of its messages is only as long as that key's
 * life. A day, so that a quiet topic's subscribers ride out a reconnect.
 */
const LAST_TTL_MIN_MS = 86_400_000

/**
 * The life of a topic's `last` key, in milliseconds: a day, or the life of
 * its stream (`historyMs`) if longer.
 * @internal
 */
export function lastKeyTtlMs(historyMs: number): number {
  return Math.max(historyMs, LAST_TTL_MIN_MS)
}

/**
 * Ensures the history exists and is the one this process knows: KEYS[1] is
 * the epoch, KEYS[2] the counter; ARGV[1] a new epoch to use, ARGV[2] and
 * ARGV[3] the epoch this process knows and the highest position it has seen
 * in it. A counter below that position means Redis came back from an older
 * snapshot (persistence that lost its last writes), so the positions above
 * it would be issued twice: that, like a missing epoch or counter, starts a
 * new history.
 */
const ENSURE_HISTORY = `
local epoch = redis.call('GET', KEYS[1])
local counter = tonumber(redis.call('GET', KEYS[2]) or '')
local seen = tonumber(ARGV[3])
if not epoch or not counter or (epoch == ARGV[2] and counter < seen) then
  local now = redis.call('TIME')
  local start = tonumber(now[1]) * 1000000 + tonumber(now[2])
  if counter and counter >= start then start = counter + 1 end
  if seen >= start then start = seen + 1 end
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('SET', KEYS[2], string.format('%.0f', start))
end
`

/**
 * The publishes of one batch, in order. KEYS: epoch, counter, then
 * last:<topic> and stream:<topic> for each topic of the batch (once per
 * topic). ARGV: new epoch, known epoch, highest seen, ttl of last (ms),
 * history, historyMs, each topic's channel, then for each message the
 * number of its topic (from 1) and its payload.
 *
 * One `INCRBY` takes the positions of the whole batch, and each topic's
 * `last` is read once and written once, so a batch of n messages on one
 * topic runs n `XADD`s and n `PUBLISH`es plus six commands. A message
 * whose key Redis refuses (a `last` or stream key of another type, a
 * stream whose top entry is above the position) is not published; its
 * position is left unused, the others go on, and the reply says why.
 * Returns { epoch, base, results }: the messages' positions follow `base`
 * (the counter before the batch), and each result is the message's
 * position, or Redis's error for it.
 */
const PUBLISH = `${ENSURE_HISTORY}
local topics = (#KEYS - 2) / 2
local count = (#ARGV - 6 - topics) / 2
local base = tonumber(redis.call('INCRBY', KEYS[2], count)) - count
local keep = tonumber(ARGV[5]) > 0
local prevs = {}
local published = {}
local results = {}
for i = 1, count do
  local t = tonumber(ARGV[5 + topics + 2 * i])
  local payload = ARGV[6 + topics + 2 * i]
  local seq = string.format('%.0f', base + i)
  local prev = prevs[t]
  if prev == nil then
    prev = redis.pcall('GET', KEYS[1 + 2 * t])
    if type(prev) == 'table' then
      results[i] = prev.err
    else
      prev = prev or ''
      prevs[t] = prev
    end
  end
  if results[i] == nil and keep then
    local added = redis.pcall('XADD', KEYS[2 + 2 * t], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'd', payload, 'p', prev)
    if type(added) == 'table' and added.err then results[i] = added.err end
  end
  if results[i] == nil then
    redis.call('PUBLISH', ARGV[6 + t], epoch .. ':' .. seq .. ':' .. prev .. ':' .. payload)
    prevs[t] = seq
    published[t] = true
    results[i] = seq
  end
end
for t = 1, topics do
  if published[t] then
    redis.call('SET', KEYS[1 + 2 * t], prevs[t], 'PX', ARGV[4])
    if keep then redis.call('PEXPIRE', KEYS[2 + 2 * t], ARGV[6]) end
  end
end
return { epoch, string.format('%.0f', base), results }
`

/**
 * KEYS: epoch, counter, then last:<topic> and stream:<topic> for each topic.
 * ARGV: new epoch, known epoch, highest seen, ttl of last (ms), then for
 * each topic the position to read its stream after ('' for none).
 * A missing last:<topic> is created at the counter: the topic's messages
 * from now on are chained, what came before is unknown.
 * Returns { epoch, counter, { { last, entries }, ... } }.
 */
const READ = `${ENSURE_HISTORY}
local counter = redis.call('GET', KEYS[2])
local topics = {}
for i = 1, (#KEYS - 2) / 2 do
  local key = KEYS[1 + 2 * i]
  local last = redis.call('GET', key)
  if last then
    redis.call('PEXPIRE', key, ARGV[4])
  else
    last = counter
    redis.call('SET', key, last, 'PX', ARGV[4])
  end
  local after = ARGV[4 + i]
  local entries = {}
  if after ~= '' then
    entries = redis.call('XRANGE', KEYS[2 + 2 * i], string.format('%.0f', tonumber(after) + 1), '+')
  end
  topics[i] = { last, entries }
end
return { epoch, counter, topics }
`

/** A Lua script, sent by hash with a fallback to its source. @internal */
export class Script {
  readonly #source: string
  readonly #sha: string

  /** @param source - the Lua source */
  constructor(source: string) {
    this.#source = source
    this.#sha = createHash('sha1').update(source).digest('hex')
  }

  /**
   * Runs the script: `EVALSHA`, and `EVAL` (which also caches it in Redis)
   * when Redis does not know the hash yet (`NOSCRIPT`: a new or restarted
   * server, or `SCRIPT FLUSH`).
   * @returns the script's reply
   */
  run(connection: Connection, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const command = ['EVALSHA', this.#sha, String(keys.length)]
    for (const key of keys) command.push(key)
    for (const arg of args) command.push(arg)
    return connection.command(command).then(undefined, (error: unknown) => {
      if (!isNoScript(error)) throw error
      const source = command.slice()
      source[0] = 'EVAL'
      source[1] = this.#source
      return connection.command(source)
    })
  }
}

/** @internal */
export const PUBLISH_SCRIPT = new Script(PUBLISH)
/** @internal */
export const READ_SCRIPT = new Script(READ)

/** What this process knows of the history, sent with every script. @internal */
export interface Known {
  readonly epoch: string | undefined
  /** The highest position seen in that epoch, 0 when none. */
  readonly seen: number
}

/** One kept message of a topic, as read from its stream. @internal */
export interface Entry {
  readonly seq: number
  /** The position of the topic's previous message, undefined when unknown. */
  readonly prev: number | undefined
  readonly payload: string
}

/** A topic's part of a read. @internal */
export interface TopicRead {
  /** The position of the topic's latest message, or of when that became unknown. */
  readonly last: number
  /** The stream's entries after the position asked for, oldest first. */
  readonly entries: readonly Entry[]
}

/** What a read answers. @internal */
export interface ReadReply {
  readonly epoch: string
  /** The counter: the position at the time of the read. */
  readonly position: number
  readonly topics: readonly TopicRead[]
}

/**
 * The script arguments that come before a script's own: a fresh epoch to
 * use if the history must be created, and what this process knows.
 * @internal
 */
export function historyArgs(known: Known, lastTtlMs: number): string[] {
  return [newEpoch(), known.epoch ?? '', String(known.seen), String(lastTtlMs)]
}

/** The PUBLISH script's reply. @internal */
export interface PublishReply {
  readonly epoch: string
  /** The counter before the batch: its positions follow. */
  readonly base: number
  /** Each message's position, or Redis's error for it (it was not published). */
  readonly results: readonly (number | string)[]
}

/** Parses the PUBLISH script's reply. @internal */
export function parsePublishReply(reply: unknown): PublishReply {
  const [epoch, base, results] = asArray(reply)
  return {
    epoch: String(epoch),
    base: asPosition(base),
    results: asArray(results).map((result) => {
      const text = String(result)
      return /^[0-9]+$/.test(text) ? asPosition(text) : text
    }),
  }
}

/** Parses the READ script's reply. @internal */
export function parseReadReply(reply: unknown): ReadReply {
  const [epoch, counter, topics] = asArray(reply)
  return {
    epoch: String(epoch),
    position: asPosition(counter),
    topics: asArray(topics).map((topic) => {
      const [last, entries] = asArray(topic)
      return { last: asPosition(last), entries: asArray(entries).map(parseEntry) }
    }),
  }
}

function parseEntry(entry: unknown): Entry {
  const [id, fields] = asArray(entry)
  const text = String(id)
  const values = asArray(fields).map(String)
  let payload = ''
  let prev: number | undefined
  for (let i = 0; i + 1 < values.length; i += 2) {
    if (values[i] === 'd') payload = values[i + 1] as string
    else if (values[i] === 'p' && values[i + 1] !== '') prev = asPosition(values[i + 1])
  }
  return { seq: asPosition(text.slice(0, text.indexOf('-'))), prev, payload }
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`unexpected reply from Redis: ${String(value)}`)
  return value
}

function asPosition(value: unknown): number {
  const number = Number(String(value))
  if (!Number.isSafeInteger(number) || number < 0) throw new TypeError(`unexpected position from Redis: ${String(value)}`)
  return number
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/**
 * Random bytes for epochs, filled 64 epochs at a time: every script call
 * carries a fresh one (used only if the history must be created), and one
 * call to the generator per call was a visible share of a publish's cost.
 */
const epochBytes = Buffer.alloc(8 * 64)
let epochOffset = epochBytes.length

/** 13 characters of [0-9a-z], random. @internal */
export function newEpoch(): string {
  if (epochOffset === epochBytes.length) {
    randomFillSync(epochBytes)
    epochOffset = 0
  }
  const epoch = epochBytes.readBigUInt64BE(epochOffset).toString(36)
  epochOffset += 8
  return epoch
}

/**
 * Whether a topic's stream read after `after` holds every message of the
 * topic since: the first entry's predecessor is at most `after`, each entry
 * follows the one before, and the newest is the topic's latest message; or,
 * with no entry, nothing of the topic came after `after`.
 * @internal
 */
export function isCompleteAfter(read: TopicRead, after: number): boolean {
  const { entries, last } = read
  const first = entries[0]
  if (first === undefined) return last <= after
  if (first.prev === undefined || first.prev > after || entries.at(-1)?.seq !== last) return false
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]?.prev !== entries[i - 1]?.seq) return false
  }
  return true
}

/**
 * The script of a lone publish: one message, the keys of scripts.ts, the
 * same guarantees as the batch script, in fewer Redis calls.
 *
 * A publish made while no other call is under way waits for this script
 * alone, so its run in Redis is a large share of what a sequential publish
 * costs over a plain `PUBLISH`. Each `redis.call` costs about 0.5 µs in
 * Redis 7 on top of the command itself; measured on redis-server 7.0
 * (bench/README.md, "Sequential publishes: a lighter script"), the batch
 * script runs 13–15 µs for one message against 9–11 µs for this one, which:
 * - takes the position with `INCR` and checks the history from its reply
 *   and one `GET` of the epoch, instead of two `GET`s and an `INCRBY`;
 * - reads and writes the topic's `last` key in one `SET … GET` (Redis 6.2
 *   and later; detected as Redis 7, which names its version to scripts),
 *   undone when the message is refused afterwards;
 * - answers with the position alone (an integer) while the epoch is the one
 *   the process sent, instead of `{ epoch, base, { seq } }`.
 */

import { Script } from './scripts.js'

/**
 * KEYS: epoch, counter, last:<topic>, stream:<topic>. ARGV: the epoch the
 * process knows ('' for none), the highest position it has seen there, a
 * new epoch to use if the history must be created, ttl of last (ms),
 * history, historyMs, the channel, the payload.
 *
 * The history is created anew, as by ENSURE_HISTORY in scripts.ts, when
 * the epoch is missing, when the counter was missing (`INCR` made it 1:
 * positions start from Redis's clock, never from 0), or when the counter is
 * below the position the process has seen in the same epoch (Redis came
 * back from an older snapshot). A counter that is not an integer fails the
 * call before anything is written.
 *
 * Replies: the position (an integer) when the epoch is the one sent;
 * `{ epoch, position }` when it is another; a status reply with Redis's
 * error when the topic's keys are refused (another type, a stream whose top
 * entry is above the position): the message is then not published, its
 * position is left unused, and the `last` key is as it was.
 */
/** @internal (exported for the tests of the path taken before Redis 7) */
export const LONE_PUBLISH = `
local epoch = redis.call('GET', KEYS[1])
local seq = redis.call('INCR', KEYS[2])
if seq == 1 or not epoch or (epoch == ARGV[1] and seq <= tonumber(ARGV[2])) then
  local now = redis.call('TIME')
  local start = tonumber(now[1]) * 1000000 + tonumber(now[2])
  if seq > start then start = seq end
  local seen = tonumber(ARGV[2])
  if seen >= start then start = seen + 1 end
  epoch = ARGV[3]
  seq = start + 1
  redis.call('SET', KEYS[1], epoch)
  redis.call('SET', KEYS[2], string.format('%.0f', seq))
end
local id = string.format('%.0f', seq)
local swap = redis.REDIS_VERSION_NUM ~= nil
local prev
if swap then
  prev = redis.pcall('SET', KEYS[3], id, 'PX', ARGV[4], 'GET')
else
  prev = redis.pcall('GET', KEYS[3])
end
if type(prev) == 'table' then return redis.status_reply(prev.err) end
prev = prev or ''
if ARGV[5] ~= '0' then
  local added = redis.pcall('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], id .. '-0', 'd', ARGV[8], 'p', prev)
  if type(added) == 'table' and added.err then
    if swap and prev == '' then redis.call('DEL', KEYS[3]) elseif swap then redis.call('SET', KEYS[3], prev, 'PX', ARGV[4]) end
    return redis.status_reply(added.err)
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
redis.call('PUBLISH', ARGV[7], epoch .. ':' .. id .. ':' .. prev .. ':' .. ARGV[8])
if not swap then redis.call('SET', KEYS[3], id, 'PX', ARGV[4]) end
if epoch == ARGV[1] then return seq end
return { epoch, id }
`

/** @internal */
export const LONE_PUBLISH_SCRIPT = new Script(LONE_PUBLISH)

/** The lone PUBLISH script's reply, read. @internal */
export type LonePublishReply =
  | { readonly epoch: string, readonly seq: number }
  | { readonly refused: string }

/**
 * Reads the lone PUBLISH script's reply.
 * @param reply - as the client library gives it: a number (or a string of
 * digits, depending on the client's settings), an array, or a status string
 * @param sentEpoch - the epoch the call was sent with, which an integer reply is in
 * @throws TypeError when the reply is none of those
 * @internal
 */
export function parseLonePublishReply(reply: unknown, sentEpoch: string): LonePublishReply {
  if (typeof reply === 'number' && Number.isSafeInteger(reply) && reply > 0) return { epoch: sentEpoch, seq: reply }
  if (Array.isArray(reply) && reply.length === 2) {
    const seq = Number(String(reply[1]))
    if (Number.isSafeInteger(seq) && seq > 0) return { epoch: String(reply[0]), seq }
  } else if (typeof reply === 'string' || typeof reply === 'bigint') {
    const text = String(reply)
    if (!/^[0-9]+$/.test(text)) return { refused: text }
    const seq = Number(text)
    if (Number.isSafeInteger(seq) && seq > 0) return { epoch: sentEpoch, seq }
  }
  throw new TypeError(`unexpected reply from Redis: ${String(reply)}`)
}

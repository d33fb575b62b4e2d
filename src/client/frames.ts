import type { PatchOp } from '../patch-op.js'
import { isTuple } from './patch-error.js'

/**
 * A `patch` or `snapshot` frame's data, split into its topic and its body.
 *
 * On a stream of one topic the data is the body alone. On a stream of
 * several, the first data line is the topic as a JSON string and the rest is
 * the body (`"<topic>"\n<JSON>`). The client knows which form to expect
 * from the topics it asked for: a snapshot's body may itself be a JSON
 * string, so the first character alone would not tell.
 *
 * @param data - the event's `data`
 * @param topics - the topics the stream was opened with
 * @returns `[topic, body]`, or `undefined` when, on a stream of several
 * topics, the first line is not a JSON string naming one of them
 * @internal
 */
export function splitFrame(data: string, topics: readonly string[]): [topic: string, body: string] | undefined {
  if (topics.length === 1) return [topics[0] as string, data]
  const end = data.indexOf('\n')
  const topic = end === -1 ? undefined : parse(data.slice(0, end))
  return typeof topic === 'string' && topics.includes(topic) ? [topic, data.slice(end + 1)] : undefined
}

/**
 * Reads a patch frame's body.
 * @returns the ops, or `undefined` when the body is not a JSON array of op tuples
 * @internal
 */
export function parseOps(body: string): PatchOp[] | undefined {
  const ops = parse(body)
  return Array.isArray(ops) && ops.every(isTuple) ? (ops as PatchOp[]) : undefined
}

/**
 * Reads a reset frame's data, `{"reason": …}` on a stream of one topic and
 * `{"reason": …, "topic": …}` on a stream of several.
 * @returns the reason (the raw data when it is not that JSON form, so that a
 * reason from another server version still reaches `onReset`) and the topic
 * it concerns (`undefined`: every topic of the stream)
 * @internal
 */
export function parseReset(data: string): { reason: string; topic: string | undefined } {
  const value = parse(data) as { reason?: unknown; topic?: unknown } | null | undefined
  const reason = value?.reason
  const topic = value?.topic
  return { reason: typeof reason === 'string' ? reason : data, topic: typeof topic === 'string' ? topic : undefined }
}

/**
 * Reads a revoked frame's data, `{"topic": …}`.
 * @returns the topic, or `undefined` when the data is not that JSON form
 * @internal
 */
export function parseRevoked(data: string): string | undefined {
  const topic = (parse(data) as { topic?: unknown } | null | undefined)?.topic
  return typeof topic === 'string' ? topic : undefined
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

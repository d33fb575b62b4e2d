import type { PatchOp, PatchOpName } from '../patch-op.js'
import { isJsonObject, kindOf, pointerProblem } from './op-values.js'

/**
 * The wire text of every frame patchwire writes. Pure functions: the
 * fan-out calls them once per publish (or per stream for the few frames that
 * differ per stream), never per stream for a patch.
 */

/**
 * Formats JSON-Patch ops as one SSE `patch` frame.
 *
 * `JSON.stringify` escapes every control character, so the ops always fit on
 * one `data:` line whatever their strings contain.
 *
 * @param ops - the JSON-Patch ops, as tuples
 * @param id - the frame's event id; omitted when undefined
 * @returns `event: patch\ndata: <json>\n\n`, preceded by `id: <id>\n` when an id is given
 * @throws TypeError when `id` contains CR, LF or NUL, or when the ops are not
 * valid op tuples of JSON values (see {@link publish})
 * @example
 * formatPatch([['replace', '/counter', 7]], '42')
 * // 'id: 42\nevent: patch\ndata: [["replace","/counter",7]]\n\n'
 */
export function formatPatch(ops: readonly PatchOp[], id?: string): string {
  if (id !== undefined && /[\r\n\0]/.test(id)) {
    throw new TypeError('formatPatch: id must not contain CR, LF or NUL; it would break the SSE frame')
  }
  return patchFrame(serialiseOps(ops), id)
}

/**
 * The `patch` frame of a single-topic stream, for an already serialised payload.
 * @internal
 */
export function patchFrame(payload: string, id?: string): string {
  const head = id === undefined ? '' : `id: ${id}\n`
  return `${head}event: patch\ndata: ${payload}\n\n`
}

/**
 * The `patch` frame of a multi-topic stream: a first `data:` line names the
 * topic as a JSON string, so the event's data is `"<topic>"\n<ops>`. The
 * topic line starts with `"` and ops with `[`, so a reader can tell the two
 * forms apart by the first character.
 * @param topicLine - the topic as {@link topicLine} encodes it
 * @internal
 */
export function multiPatchFrame(topicLine: string, payload: string, id: string): string {
  return `id: ${id}\nevent: patch\ndata: ${topicLine}\ndata: ${payload}\n\n`
}

/**
 * A topic as the first `data:` line of a multi-topic frame. Topics with
 * control characters are refused before they get here, and JSON escapes the
 * rest, so the line cannot break the frame.
 * @internal
 */
export function topicLine(topic: string): string {
  return JSON.stringify(topic)
}

/**
 * The `reset` frame: the topic could not be resumed exactly, so its state
 * must be loaded again (a `snapshot` frame follows when the handler has a
 * `snapshot` option).
 * @param topic - named in the data on a multi-topic stream, else undefined
 * @param id - the position to resume from, when one is known to be safe
 * @internal
 */
export function resetFrame(reason: string, topic: string | undefined, id: string | undefined): string {
  const head = id === undefined ? '' : `id: ${id}\n`
  const data = topic === undefined ? JSON.stringify({ reason }) : JSON.stringify({ reason, topic })
  return `${head}event: reset\ndata: ${data}\n\n`
}

/**
 * The `snapshot` frame: a topic's whole state, serialised once.
 * @param topic - the topic's line on a multi-topic stream, else undefined
 * @internal
 */
export function snapshotFrame(state: string, topic: string | undefined): string {
  return topic === undefined ? `event: snapshot\ndata: ${state}\n\n` : `event: snapshot\ndata: ${topic}\ndata: ${state}\n\n`
}

/**
 * The `ready` frame: the stream's current position. The `data:` line makes
 * every client (not only browsers) dispatch it and record the id.
 * @internal
 */
export function readyFrame(id: string): string {
  return `id: ${id}\nevent: ready\ndata: ${id}\n\n`
}

/**
 * The `revoked` frame: the stream's right to `topic` was revoked, and the
 * stream ends after this frame (and those of its other revoked topics). No
 * `id:`, so that the stream's position stays that of its last patch.
 * @internal
 */
export function revokedFrame(topic: string): string {
  return `event: revoked\ndata: ${JSON.stringify({ topic })}\n\n`
}

/** @internal */
export function retryFrame(retryMs: number): string {
  return `retry: ${retryMs}\n\n`
}

/** A comment line keeps proxies from closing an idle stream; clients ignore it. @internal */
export const HEARTBEAT_FRAME = ':\n\n'

const OP_ARITY: Readonly<Record<PatchOpName, 2 | 3>> = {
  add: 3, remove: 2, replace: 3, move: 3, copy: 3, test: 3, upsert: 3, limit: 3,
}

/**
 * Validates ops and serialises them once. Every value must be JSON as it is:
 * `JSON.stringify` would silently turn `undefined`, `NaN` or a function into
 * `null` or nothing, and a `Map` or a `Set` into `{}`, and every client
 * would then apply something else than what was published. Every path must
 * be a JSON Pointer, or every client would fail to apply the op.
 * @throws TypeError naming the op index and what is wrong with it
 * @internal
 */
export function serialiseOps(ops: readonly PatchOp[]): string {
  if (!Array.isArray(ops)) {
    throw new TypeError(`ops must be an array of JSON-Patch tuples such as [['replace', '/path', value]], got ${describe(ops)}`)
  }
  // Op by op, joined as JSON.stringify(ops) would write them, so that an
  // error can name the op it is in.
  let json = '['
  for (let i = 0; i < ops.length; i++) {
    checkOp(ops[i], i)
    try {
      json += (i === 0 ? '' : ',') + JSON.stringify(ops[i], onlyJson)
    } catch (error) {
      const what = error instanceof NotJson ? error.message : `${(error as Error).message} (a circular reference or a BigInt?)`
      throw new TypeError(`ops[${i}] is not JSON: ${what}; publish only JSON values (no undefined, NaN, Infinity, functions, BigInt, Map, Set, class instances without toJSON, or cycles)`, { cause: error })
    }
  }
  return json + ']'
}

/** A JSON.stringify replacer that refuses what JSON would silently drop or turn into null. */
function onlyJson(key: string, value: unknown): unknown {
  // The replacer sees every value after toJSON (a Date is its string by then).
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'object') {
    if (isJsonObject(value)) return value
    throw new NotJson(`${kindOf(value)} at member "${key}" (JSON would write it as {}; convert it, e.g. Object.fromEntries(map) or [...set])`)
  }
  if (typeof value === 'number' && Number.isFinite(value)) return value
  throw new NotJson(`${typeof value === 'number' ? String(value) : typeof value} at member "${key}"`)
}

function checkOp(op: unknown, i: number): void {
  if (!Array.isArray(op) || typeof op[1] !== 'string') {
    throw new TypeError(`ops[${i}] must be a tuple [op, path, value?] with a string path, got ${describe(op)}`)
  }
  const name: unknown = op[0]
  const arity = typeof name === 'string' && Object.hasOwn(OP_ARITY, name) ? OP_ARITY[name as PatchOpName] : undefined
  if (arity === undefined) {
    throw new TypeError(`ops[${i}][0] must be one of ${Object.keys(OP_ARITY).join(', ')}, got ${JSON.stringify(name) ?? String(name)}`)
  }
  if (op.length !== arity) {
    const shape = arity === 2 ? `['${name}', path]` : name === 'move' || name === 'copy' ? `['${name}', path, from]` : `['${name}', path, value]`
    throw new TypeError(`ops[${i}] (${name}) must have ${arity} elements, ${shape}; got ${op.length}`)
  }
  if ((name === 'move' || name === 'copy') && typeof op[2] !== 'string') {
    throw new TypeError(`ops[${i}] (${name}) must name its source path as a string in third place, ['${name}', path, from]`)
  }
  const pathProblem = pointerProblem(op[1])
  if (pathProblem !== undefined) throw new TypeError(`ops[${i}] (${name}): the path ${pathProblem}`)
  const fromProblem = name === 'move' || name === 'copy' ? pointerProblem(op[2] as string) : undefined
  if (fromProblem !== undefined) throw new TypeError(`ops[${i}] (${name}): the from path ${fromProblem}`)
  if (name === 'limit' && !Number.isInteger(op[2])) {
    throw new TypeError(`ops[${i}] (limit) must give an integer count in third place, ['limit', path, n]`)
  }
}

/** A value JSON cannot carry as it is; caught and reported with its op. */
class NotJson extends TypeError {}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}

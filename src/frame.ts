import { EVENT_PATCH, EVENT_READY, EVENT_RESET } from './constants.js'
import type { PatchOp } from './patch-op.js'

/**
 * Formats JSON-Patch ops as one SSE `patch` frame.
 *
 * `JSON.stringify` escapes every control character, so the ops always fit on
 * one `data:` line whatever their strings contain.
 *
 * @param ops - the JSON-Patch ops, as tuples
 * @param id - the frame's event id; omitted when undefined
 * @returns `event: patch\ndata: <json>\n\n`, preceded by `id: <id>\n` when an id is given
 * @throws TypeError when `id` contains CR, LF or NUL, or when the ops are not serialisable
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
 * The `patch` frame for an already serialised payload.
 * @internal
 */
export function patchFrame(payload: string, id?: string): string {
  const head = id === undefined ? '' : `id: ${id}\n`
  return `${head}event: ${EVENT_PATCH}\ndata: ${payload}\n\n`
}

/**
 * The `reset` frame: the stream could not be resumed exactly, so the page
 * must reload its state. It carries the current position so that the next
 * reconnect starts from here.
 * @internal
 */
export function resetFrame(reason: string, id: string): string {
  return `id: ${id}\nevent: ${EVENT_RESET}\ndata: ${JSON.stringify({ reason })}\n\n`
}

/**
 * The `ready` frame: the stream's current position. The `data:` line makes
 * every client (not only browsers) dispatch it and record the id.
 * @internal
 */
export function readyFrame(id: string): string {
  return `id: ${id}\nevent: ${EVENT_READY}\ndata: ${id}\n\n`
}

/** @internal */
export function retryFrame(retryMs: number): string {
  return `retry: ${retryMs}\n\n`
}

/** A comment line keeps proxies from closing an idle stream; clients ignore it. @internal */
export const HEARTBEAT_FRAME = ':\n\n'

/**
 * Validates ops and serialises them once.
 * @internal
 */
export function serialiseOps(ops: readonly PatchOp[]): string {
  if (!Array.isArray(ops)) {
    throw new TypeError(`ops must be an array of JSON-Patch tuples such as [['replace', '/path', value]], got ${describe(ops)}`)
  }
  for (let i = 0; i < ops.length; i++) {
    const op: unknown = ops[i]
    if (!Array.isArray(op) || typeof op[0] !== 'string' || typeof op[1] !== 'string') {
      throw new TypeError(`ops[${i}] must be a tuple [op, path, value?] with string op and path, got ${describe(op)}`)
    }
  }
  try {
    return JSON.stringify(ops)
  } catch (error) {
    throw new TypeError(`ops are not JSON-serialisable (circular reference or BigInt?): ${(error as Error).message}`, { cause: error })
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}

import type { PatchOp } from '../patch-op.js'
import { insert, parent, remove, rollback, set, splice, startEdit, walk } from './edit.js'
import type { Edit } from './edit.js'
import { isObject } from './json.js'
import type { Container } from './json.js'
import { findByKey } from './key-index.js'
import { fail, isTuple, PatchError } from './patch-error.js'
import { parsePointer } from './pointer.js'

/** Options of {@link applyPatch}. */
export interface ApplyPatchOptions {
  /**
   * Leave `target` untouched and return a new structure that shares every
   * branch the ops did not touch, for React and stores that compare by
   * reference. When false, `target` is mutated in place and returned, which
   * keeps Svelte 5 `$state` and Vue `reactive` proxies reactive.
   * @defaultValue false
   */
  immutable?: boolean
  /**
   * The member that identifies an array item, for `upsert` and for `$$<key>`
   * path segments.
   * @defaultValue 'id'
   */
  key?: string
}

/**
 * Applies JSON-Patch ops to a JSON document, all or nothing.
 *
 * Ops are tuples: `[op, path, value]`, or `[op, path, from]` for `move` and
 * `copy`. Paths are JSON Pointers (RFC 6901, `~0` and `~1` escapes). The six
 * RFC 6902 operations are supported, plus two for live lists:
 * `['upsert', '/items/0', item]` replaces the array item whose key equals the
 * item's key, or else inserts the item at the index; `['limit', '/items', n]`
 * keeps the first `n` items, or the last `|n|` when `n` is negative. In an
 * array, a `$$<key>` segment selects the item whose key is `<key>`
 * (`/items/$$42/done`). Key lookups (`$$<key>`, `upsert`) share one index
 * per array and call, built as they read the array: a long list is not
 * scanned once per op.
 *
 * Inserted values are copied, so one ops array can be applied to several
 * documents. An op on the root path `""` (`add`/`replace`) returns the new
 * document instead of changing `target`.
 *
 * @param target - the document: mutated in place unless `options.immutable`
 * @param ops - the ops, applied in order
 * @param options - see {@link ApplyPatchOptions}
 * @returns the patched document: `target` itself in place mode (unless the root was replaced)
 * @throws PatchError (`ERR_PATCHWIRE_PATCH`) when an op fails: unknown op, bad path or index,
 * missing member or item, failed `test`, or a path through `__proto__`, `constructor` or
 * `prototype`. Nothing is changed then.
 * @throws TypeError when `ops` is not an array or `options.key` is not a non-empty string
 * @example
 * const state = { counter: 1, items: [{ id: 7, done: false }] }
 * applyPatch(state, [['replace', '/counter', 2], ['replace', '/items/$$7/done', true]])
 * const next = applyPatch(state, [['add', '/items/-', { id: 8 }]], { immutable: true })
 */
export function applyPatch<T>(target: T, ops: readonly PatchOp[], options: ApplyPatchOptions = {}): T {
  if (!Array.isArray(ops)) {
    throw new TypeError('applyPatch: ops must be an array')
  }
  const { immutable = false, key = 'id' } = options
  if (typeof key !== 'string' || key === '') {
    throw new TypeError('applyPatch: options.key must be a non-empty string')
  }
  const e = startEdit(target, immutable, key)
  for (let i = 0; i < ops.length; i++) {
    try {
      applyOp(e, ops[i])
    } catch (error) {
      rollback(e)
      throw typeof error === 'string' ? new PatchError(i, ops[i], error) : error
    }
  }
  return e.doc as T
}

// Returns what its step returns, unread: each case stays one statement.
function applyOp(e: Edit, op: unknown): unknown {
  if (!isTuple(op)) fail('not a tuple')
  const name = op[0]
  const path = op[1]
  const arg = op[2]
  const segments = parsePointer(path)
  switch (name) {
    case 'add':
    case 'replace':
      return insert(e, segments, value(arg), name === 'replace')
    case 'remove':
      return remove(e, segments)
    case 'copy':
    case 'move': {
      const source = parsePointer(typeof arg === 'string' ? arg : fail('missing from'))
      if (name === 'copy') return insert(e, segments, clone(walk(e, source)))
      // Onto itself: nothing moves, but the value must exist.
      if (path === arg) return walk(e, source)
      if (path.startsWith(`${arg}/`)) fail('cannot move into itself')
      return insert(e, segments, remove(e, source))
    }
    case 'test':
      // `value` only to refuse a missing value: a test keeps nothing, so needs no copy.
      return equal(walk(e, segments), arg ?? value(arg)) || fail('test failed')
    case 'upsert':
      return upsert(e, segments, value(arg))
    case 'limit':
      return limit(e, segments, arg)
    default:
      fail(`unknown op "${name}"`)
  }
}

// Replaces the item with the value's key, else inserts the value at the path.
function upsert(e: Edit, segments: string[], value: unknown): void {
  const [node, k] = segments.length > 0 ? parent(e, segments, true) : []
  if (!Array.isArray(node)) fail('not an array')
  const id = isObject(value) ? value[e.key] : undefined
  const found = id === undefined ? -1 : findByKey(e, node, id, true)
  if (found < 0) splice(e, node, k as number, 0, value)
  else set(e, node, found, value)
}

// Keeps the first n items, or the last |n| when n is negative.
function limit(e: Edit, segments: string[], arg: unknown): void {
  const node = walk(e, segments)
  if (!Array.isArray(node)) fail('not an array')
  const n = Number.isInteger(arg) ? (arg as number) : fail('not an integer')
  const drop = node.length - Math.abs(n)
  // Made writable (copied, when immutable) only when something goes.
  if (drop > 0) splice(e, walk(e, segments, true) as unknown as unknown[], n < 0 ? 0 : n, drop)
}

// The op's value, copied.
function value(arg: unknown): unknown {
  return arg === undefined ? fail('missing value') : clone(arg)
}

// A deep copy of a JSON value. The spread defines members, so a
// "__proto__" member stays a plain member of the copy; assigning to it
// afterwards changes that own member, not the copy's prototype.
function clone(value: unknown): unknown {
  if (!isObject(value)) return value
  if (Array.isArray(value)) return value.map(clone)
  const copy: Container = { ...value }
  for (const k of Object.keys(copy)) copy[k] = clone(copy[k])
  return copy
}

// RFC 6902 section 4.6: equal JSON values; member order does not matter.
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (!isObject(a) || !isObject(b) || Array.isArray(a) !== Array.isArray(b)) return false
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]))
}

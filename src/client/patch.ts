import type { PatchOp } from '../patch-op.js'
import { isObject } from './json.js'
import type { Container } from './json.js'
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
    throw new TypeError('applyPatch: ops must be an array of [op, path, value] tuples')
  }
  const { immutable = false, key = 'id' } = options
  if (typeof key !== 'string' || key === '') {
    throw new TypeError('applyPatch: options.key must be a non-empty string such as "id"')
  }
  let doc: unknown = target
  // In place, every mutation appends its inverse here, four entries each
  // (node, member, old value, tag: true puts the old value back, false
  // deletes the member, a number n undoes a splice that inserted n items and
  // removed the old value's items), so a failed op costs only what was done
  // before it, never a clone of the document, and no closure per op.
  const undo: unknown[] = []
  // The member order of each object a remove touched, read once, before its
  // first remove: re-added members go last, so a rollback restores the order.
  const orders = new Map<Container, string[]>()
  // Immutable: nodes copied during this call, which later ops may change freely.
  const fresh = new Set<unknown>()
  // Key indexes of the arrays that `$$` segments and upsert look into, for
  // this call only, built as lookups read the items: a lookup near the start
  // reads only the start, and a lookup already indexed reads nothing. null
  // for an array whose items an index cannot stand for (see keyOf).
  const indexes = new Map<unknown[], KeyIndex | null>()

  const own = (node: unknown): unknown => {
    if (!immutable || !isObject(node) || fresh.has(node)) return node
    const copy = Array.isArray(node) ? node.slice() : { ...node }
    fresh.add(copy)
    return copy
  }

  // The key of an item as an index holds it: undefined for an item without
  // one, BAD for one whose key an index cannot stand for. Whether the key is
  // the item's own member is left to the lookup (one check, not one per item).
  const keyOf = (item: unknown): string | number | undefined | typeof BAD => {
    if (!isObject(item)) return undefined
    const id = item[key]
    if (id === undefined) return Object.hasOwn(item, key) ? BAD : undefined
    return (typeof id === 'string' || (typeof id === 'number' && id === id)) && !Array.isArray(item) ? id : BAD
  }

  // Indexes the item at position p and returns its key; BAD when it cannot:
  // a bad key, or a key the index has already (first-match order needs a scan).
  const put = (index: KeyIndex, p: number, item: unknown): ReturnType<typeof keyOf> => {
    const k = keyOf(item)
    if (k === undefined || k === BAD) return k
    if ((typeof k === 'number' ? index.nums[k] : index.strs.get(k)) !== undefined) return BAD
    if (typeof k === 'number') index.nums[k] = p - index.base
    else index.strs.set(k, p - index.base)
    return k
  }

  const unindex = (index: KeyIndex, item: unknown): void => {
    const k = keyOf(item)
    if (typeof k === 'number') delete index.nums[k]
    else if (typeof k === 'string') index.strs.delete(k)
  }

  // The position of the first item whose key is `id`: compared as strings
  // (`String(item[key]) === id`) for `$$` segments, strictly for upsert.
  const find = (array: unknown[], id: unknown, strict: boolean): number => {
    let index = indexes.get(array)
    if (index === undefined) indexes.set(array, (index = { nums: Object.create(null), strs: new Map(), base: 0, end: 0 }))
    if (index) {
      // The first indexed item whose key has id's string form, if any.
      const s = index.strs.get(id as string)
      const m = index.nums[id as number]
      let at = s === undefined || (m !== undefined && m < s) ? m : s
      // The number whose string form is id: "7" names 7, "07" none.
      const n = at !== undefined || typeof id === 'number' ? id : String(Number(id)) === id ? Number(id) : NaN
      while (at === undefined && index.end < array.length) {
        const p = index.end++
        const k = put(index, p, array[p])
        if (k === BAD) {
          indexes.set(array, (index = null))
          break
        }
        if (typeof k === 'string' ? k === id : k === n) at = p - index.base
      }
      if (index) {
        if (at === undefined) return -1
        const p = at + index.base
        const item = array[p] as Container
        // The same string form is not always a match: for upsert, 7 is not
        // "7"; for `$$`, an inherited key is none. A scan decides then.
        if (strict ? item[key] === id : Object.hasOwn(item, key)) return p
      }
    }
    return array.findIndex((item) => isObject(item) && (strict ? item[key] === id : Object.hasOwn(item, key) && String(item[key]) === id))
  }

  // Resolves one segment in a container. `insert` allows a new member, and
  // the array position just past the end (`-` or the length).
  const resolve = (node: unknown, segment: string, insert: boolean): string | number => {
    if (Array.isArray(node)) {
      if (segment.startsWith('$$')) {
        const id = segment.slice(2)
        const i = find(node, id, false)
        return i < 0 ? fail(`no item with ${key} "${id}"`) : i
      }
      if (insert && segment === '-') return node.length
      if (!INDEX.test(segment)) fail(`"${segment}" is not an array index`)
      const i = Number(segment)
      return i > node.length || (!insert && i === node.length) ? fail(`index ${i} is out of bounds (length ${node.length})`) : i
    }
    if (!isObject(node)) fail(`cannot look up "${segment}" in ${node === null ? 'null' : typeof node}`)
    return insert || Object.hasOwn(node, segment) ? segment : fail(`"${segment}" does not exist`)
  }

  // The node at the first `depth` segments. With `write`, each node on the way
  // is made writable: copied once in immutable mode.
  const walk = (segments: string[], depth: number, write: boolean): Container => {
    if (write) doc = own(doc)
    let node = doc as Container
    for (let i = 0; i < depth; i++) {
      const k = resolve(node, segments[i] as string, false)
      if (write && immutable) node[k] = own(node[k])
      node = node[k] as Container
    }
    return node
  }

  // Each change is made before its inverse is logged: a change that throws
  // (a frozen object, a proxy's trap) leaves nothing to undo.
  const set = (node: Container, k: string | number, value: unknown): void => {
    const had = Object.hasOwn(node, k)
    const old = node[k]
    node[k] = value
    if (!immutable) undo.push(node, k, old, had)
    if (!Array.isArray(node)) {
      if (k === key) indexes.clear()
    } else if (keyOf(old) !== keyOf(value)) {
      indexes.delete(node)
    }
  }

  const remove = (segments: string[]): unknown => {
    if (segments.length === 0) fail('the root cannot be removed')
    const [node, k] = parent(segments, false)
    const value = node[k]
    if (Array.isArray(node)) {
      splice(node, k as number, 1, false)
    } else {
      if (!immutable && !orders.has(node)) orders.set(node, Object.keys(node))
      delete node[k]
      if (!immutable) undo.push(node, k, value, true)
      if (k === key) indexes.clear()
    }
    return value
  }

  // Removes `count` items at `i`, or inserts `item` there, keeping the
  // array's index: a change at the start shifts every indexed position by
  // one offset; elsewhere, the index ends where the change begins.
  const splice = (array: unknown[], i: number, count: number, insert: boolean, item?: unknown): void => {
    let removed = NONE
    if (!insert) removed = array.splice(i, count)
    else if (i === array.length) array.push(item)
    else array.splice(i, 0, item)
    if (!immutable) undo.push(array, i, removed, insert ? 1 : 0)
    const index = indexes.get(array)
    if (!index || i >= index.end) return
    const added = insert ? 1 : 0
    for (let j = 0; j < removed.length && i + j < index.end; j++) unindex(index, removed[j])
    if (i === 0) {
      index.base += added - removed.length
      index.end = Math.max(index.end - removed.length, 0)
      if (insert && put(index, 0, item) === BAD) indexes.delete(array)
      else if (insert) index.end++
    } else {
      for (let p = i + added; p < index.end + added - removed.length; p++) unindex(index, array[p])
      index.end = i
    }
  }

  const insert = (segments: string[], value: unknown): void => {
    if (segments.length === 0) {
      doc = value
      return
    }
    const [node, k] = parent(segments, true)
    if (Array.isArray(node)) splice(node, k as number, 0, true, value)
    else set(node, k, value)
  }

  // The container of a non-root path's last segment, writable, and that segment resolved.
  const parent = (segments: string[], insert: boolean): [Container, string | number] => {
    const node = walk(segments, segments.length - 1, true)
    return [node, resolve(node, segments[segments.length - 1] as string, insert)]
  }

  const apply = (op: unknown): void => {
    if (!isTuple(op)) fail('not an [op, path, value] tuple')
    const name = op[0]
    const path = op[1]
    const arg = op[2]
    const segments = parsePointer(path)
    switch (name) {
      case 'add':
        return insert(segments, clone(given(arg)))
      case 'remove':
        return void remove(segments)
      case 'replace': {
        const v = clone(given(arg))
        if (segments.length === 0) doc = v
        else set(...parent(segments, false), v)
        return
      }
      case 'move': {
        const source = parsePointer(from(arg))
        if (path === arg) return void walk(source, source.length, false)
        if (path.startsWith(`${arg}/`)) fail('a value cannot move into itself')
        return insert(segments, remove(source))
      }
      case 'copy': {
        const source = parsePointer(from(arg))
        return insert(segments, clone(walk(source, source.length, false)))
      }
      case 'test':
        return equal(walk(segments, segments.length, false), given(arg)) ? undefined : fail('test failed')
      case 'upsert': {
        const v = clone(given(arg))
        if (segments.length === 0) fail('upsert needs a path into an array')
        const [node, k] = parent(segments, true)
        if (!Array.isArray(node)) fail('upsert needs a path into an array')
        const id = isObject(v) ? v[key] : undefined
        const found = id === undefined ? -1 : find(node, id, true)
        return found < 0 ? splice(node, k as number, 0, true, v) : set(node, found, v)
      }
      case 'limit': {
        const node = walk(segments, segments.length, false)
        if (!Array.isArray(node)) fail('limit needs a path to an array')
        if (!Number.isInteger(arg)) fail('limit needs an integer')
        const n = arg as number
        const drop = node.length - Math.abs(n)
        // Made writable (copied, when immutable) only when something goes.
        if (drop > 0) splice(walk(segments, segments.length, true) as unknown as unknown[], n < 0 ? 0 : n, drop, false)
        return
      }
      default:
        fail(`unknown op "${name}"`)
    }
  }

  for (let i = 0; i < ops.length; i++) {
    try {
      apply(ops[i])
    } catch (error) {
      for (let j = undo.length - 4; j >= 0; j -= 4) {
        const node = undo[j] as Container
        const k = undo[j + 1] as string | number
        const old = undo[j + 2]
        const tag = undo[j + 3]
        if (tag === true) node[k] = old
        else if (tag === false) delete node[k]
        // A loop, not a spread: `limit` can remove more items than a call takes arguments.
        else (old as unknown[]).concat((node as unknown as unknown[]).splice(k as number).slice(tag as number)).forEach((item) => (node as unknown as unknown[]).push(item))
      }
      for (const [node, keys] of orders) {
        for (const k of keys) {
          // A member that an earlier op of this call added is gone again.
          if (!Object.hasOwn(node, k)) continue
          const v = node[k]
          delete node[k]
          node[k] = v
        }
      }
      throw typeof error === 'string' ? new PatchError(i, ops[i], error) : error
    }
  }
  return doc as T
}

// A per-call index of an array's first `end` items by key: item p is held as
// p - base. Number keys are property names (array-like, fast), string keys
// are in a Map (a property name would be interned first, far slower).
interface KeyIndex {
  nums: Record<number, number>
  strs: Map<string, number>
  base: number
  end: number
}

const BAD = Symbol()
const NONE: unknown[] = []
const INDEX = /^(0|[1-9]\d*)$/

function given(value: unknown): unknown {
  return value === undefined ? fail('missing value') : value
}

function from(value: unknown): string {
  return typeof value === 'string' ? value : fail('missing from')
}

// A deep copy of a JSON value. A "__proto__" member is defined, not
// assigned, so it stays a plain member instead of setting the copy's prototype.
function clone(value: unknown): unknown {
  if (!isObject(value)) return value
  if (Array.isArray(value)) return value.map(clone)
  const copy: Container = {}
  for (const k of Object.keys(value)) {
    if (k === '__proto__') Object.defineProperty(copy, k, { value: clone(value[k]), writable: true, enumerable: true, configurable: true })
    else copy[k] = clone(value[k])
  }
  return copy
}

// RFC 6902 section 4.6: equal JSON values; member order does not matter.
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (!isObject(a) || !isObject(b) || Array.isArray(a) !== Array.isArray(b)) return false
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]))
}

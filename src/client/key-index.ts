/**
 * Lookups of array items by key (`$$<key>` path segments, `upsert`) within
 * one applyPatch call. Each array looked into gets an index of its first
 * `end` items by key, built as lookups read the items: a lookup near the
 * start reads only the start, and a lookup already indexed reads nothing, so
 * a long list is not scanned once per op. Changes to the array keep the
 * index or drop it.
 */
import { isObject } from './json.js'
import type { Container } from './json.js'

/**
 * An index of an array's first `end` items by key: item p is held as
 * p - base. Number keys are property names (array-like, fast), string keys
 * are in a Map (a property name would be interned first, far slower).
 * @internal
 */
export interface KeyIndex {
  nums: Record<number, number>
  strs: Map<string, number>
  base: number
  end: number
}

/**
 * The key lookups of one call.
 * @internal
 */
export interface KeyLookups {
  /** The member that identifies an array item (`options.key`). */
  readonly key: string
  /**
   * The index of each array looked into; null for an array whose items an
   * index cannot stand for (see {@link keyOf}).
   */
  readonly indexes: Map<unknown[], KeyIndex | null>
}

/** A key an index cannot stand for. */
const BAD = Symbol()

/**
 * The key of an item as an index holds it: undefined for an item without
 * one, BAD for one whose key an index cannot stand for. Whether the key is
 * the item's own member is left to the lookup (one check, not one per item).
 */
function keyOf(key: string, item: unknown): string | number | undefined | typeof BAD {
  if (!isObject(item)) return undefined
  const id = item[key]
  if (id === undefined) return Object.hasOwn(item, key) ? BAD : undefined
  return (typeof id === 'string' || (typeof id === 'number' && id === id)) && !Array.isArray(item) ? id : BAD
}

/**
 * Indexes the item at position p and returns its key; BAD when it cannot:
 * a bad key, or a key the index has already (first-match order needs a scan).
 */
function put(key: string, index: KeyIndex, p: number, item: unknown): ReturnType<typeof keyOf> {
  const k = keyOf(key, item)
  if (k === undefined || k === BAD) return k
  if ((typeof k === 'number' ? index.nums[k] : index.strs.get(k)) !== undefined) return BAD
  if (typeof k === 'number') index.nums[k] = p - index.base
  else index.strs.set(k, p - index.base)
  return k
}

function unindex(key: string, index: KeyIndex, item: unknown): void {
  const k = keyOf(key, item)
  if (typeof k === 'number') delete index.nums[k]
  else if (typeof k === 'string') index.strs.delete(k)
}

/**
 * The position of the first item whose key is `id`.
 * @param strict - compare strictly (`upsert`: 7 is not "7"), else as
 * strings (`$$` segments: `String(item[key]) === id`, own members only)
 * @returns the position, or -1 when no item has that key
 * @internal
 */
export function findByKey(lookups: KeyLookups, array: unknown[], id: unknown, strict: boolean): number {
  const { key, indexes } = lookups
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
      const k = put(key, index, p, array[p])
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

/**
 * Member `k` of `node` changed from `old` to `value` (undefined: removed):
 * drops the indexes that may no longer hold. A key member of an object may
 * belong to an item of any indexed array; an item replaced by one with
 * another key makes its array's index wrong.
 * @internal
 */
export function invalidate(lookups: KeyLookups, node: Container, k: string | number, old: unknown, value: unknown): void {
  if (!Array.isArray(node)) {
    if (k === lookups.key) lookups.indexes.clear()
  } else if (keyOf(lookups.key, old) !== keyOf(lookups.key, value)) {
    lookups.indexes.delete(node)
  }
}

/**
 * `count` items of `array` are about to be taken out at `i`, or (`count`
 * 0) `item` put in there: keeps its index. A change at the start shifts
 * every indexed position by one offset; elsewhere, the index ends where the
 * change begins. Called before the change, so that it reads the items that
 * go where they still are (a change that then fails ends the call, and its
 * lookups with it).
 * @internal
 */
export function splicing(lookups: KeyLookups, array: unknown[], i: number, count: number, item?: unknown): void {
  const { key, indexes } = lookups
  const index = indexes.get(array)
  if (!index || i >= index.end) return
  // The items that go; past the start, every indexed item after them too (they move).
  for (let p = i; p < index.end && (i > 0 || p < count); p++) unindex(key, index, array[p])
  if (i > 0) index.end = i
  else if (count > 0) {
    index.base -= count
    index.end = Math.max(index.end - count, 0)
  } else {
    index.base++
    if (put(key, index, 0, item) === BAD) indexes.delete(array)
    else index.end++
  }
}

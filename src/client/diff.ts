import type { PatchOp } from '../patch-op.js'
import { isObject } from './json.js'
import type { Container } from './json.js'
import { longestIncreasing } from './longest-increasing.js'
import { escapeSegment, FORBIDDEN } from './pointer.js'

/** Options of {@link diff}. */
export interface DiffOptions {
  /**
   * The member that identifies an array item, as for `applyPatch`: arrays
   * whose items all have it are diffed by key (`$$<key>` paths, `upsert`).
   * @defaultValue 'id'
   */
  key?: string
}

/**
 * The ops that turn `before` into `after`: `applyPatch(structuredClone(before),
 * diff(before, after))` deep-equals `after` for any JSON values. Pure: neither
 * input is changed.
 *
 * The ops are small enough for the wire. A changed member is one `replace` of
 * that member, not of its parent; an added one is an `add`, a removed one a
 * `remove`. A value of another type (object → array, number → null) is one
 * `replace`. Where the ops for a container would carry more than the
 * container itself, it is replaced whole instead.
 *
 * Arrays whose items are all objects with a string or number key
 * (`options.key`), each key distinct, are diffed by key: a changed item is
 * changed through `$$<key>` paths (`replace /items/$$42/done`), a removed one
 * is `remove /items/$$42`, a new one is an `upsert` before its successor (or
 * at `-`), and items out of order are moved with the fewest `move`s. Other
 * arrays are diffed by index, after their common start and end.
 *
 * Member names are escaped (RFC 6901: `~0`, `~1`). applyPatch refuses paths
 * through `__proto__`, `constructor` and `prototype`, so an object with such a
 * member that changed is replaced whole, at the nearest path it accepts.
 *
 * The ops share values with `after` (nothing is copied): serialise or apply
 * them before changing `after`.
 *
 * @param before - the old JSON value
 * @param after - the new JSON value
 * @param options - see {@link DiffOptions}
 * @returns the ops, `[]` when the two are equal
 * @throws TypeError when `options` is not an object or `options.key` is not a non-empty string
 * @example
 * const before = { title: 'Todo', items: [{ id: 1, done: false }, { id: 2, done: false }] }
 * const after = { title: 'Todo', items: [{ id: 2, done: true }, { id: 3, done: false }] }
 * diff(before, after)
 * // [['remove', '/items/$$1'], ['replace', '/items/$$2/done', true], ['upsert', '/items/-', { id: 3, done: false }]]
 */
export function diff(before: unknown, after: unknown, options: DiffOptions = {}): PatchOp[] {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('diff: options must be an object such as { key: "id" }')
  }
  const { key = 'id' } = options
  if (typeof key !== 'string' || key === '') {
    throw new TypeError('diff: options.key must be a non-empty string such as "id"')
  }
  const d: Diffing = { key, ops: [], weight: 0 }
  diffValue(d, before, after, '')
  return d.ops
}

/** The state of one diff call, handed to each step. */
interface Diffing {
  readonly key: string
  readonly ops: PatchOp[]
  /** What the ops so far would weigh on the wire, in values sent (see {@link size}). */
  weight: number
}

function emit(d: Diffing, op: PatchOp, cost: number): void {
  d.ops.push(op)
  d.weight += cost
}

// The ops turning a into b at path. Equal values give none.
function diffValue(d: Diffing, a: unknown, b: unknown, path: string): void {
  if (Object.is(a, b)) return
  const array = Array.isArray(a)
  if (!isObject(a) || !isObject(b) || array !== Array.isArray(b)) return emit(d, ['replace', path, b], 1 + size(b, Infinity))
  const mark = d.ops.length
  const start = d.weight
  let accepted = true
  if (!array) accepted = diffObjects(d, a, b, path)
  else if (!diffByKey(d, a as unknown as unknown[], b as unknown as unknown[], path)) diffByIndex(d, a as unknown as unknown[], b as unknown as unknown[], path)
  const piecewise = d.weight - start
  if (accepted && piecewise <= 1) return
  // On a tie, one op is better than several.
  const whole = 1 + size(b, accepted ? piecewise : Infinity)
  if (accepted && piecewise < whole) return
  d.ops.length = mark
  d.weight = start
  emit(d, ['replace', path, b], whole)
}

// False when a member applyPatch would refuse in a path changed: the
// caller then replaces the object whole.
function diffObjects(d: Diffing, a: Container, b: Container, path: string): boolean {
  for (const k of Object.keys(a)) {
    if (!Object.hasOwn(b, k)) {
      if (FORBIDDEN.has(k)) return false
      emit(d, ['remove', `${path}/${escapeSegment(k)}`], 1)
      continue
    }
    const x = a[k]
    const y = b[k]
    if (Object.is(x, y)) continue
    if (FORBIDDEN.has(k)) {
      if (equal(x, y)) continue
      return false
    }
    diffValue(d, x, y, `${path}/${escapeSegment(k)}`)
  }
  for (const k of Object.keys(b)) {
    if (Object.hasOwn(a, k)) continue
    if (FORBIDDEN.has(k)) return false
    const y = b[k]
    emit(d, ['add', `${path}/${escapeSegment(k)}`, y], 1 + size(y, Infinity))
  }
  return true
}

// By index: the common start and end are kept, the items between are
// diffed pairwise, and the rest removed or added.
function diffByIndex(d: Diffing, a: unknown[], b: unknown[], path: string): void {
  let start = 0
  while (start < a.length && start < b.length && equal(a[start], b[start])) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && equal(a[endA - 1], b[endB - 1])) {
    endA--
    endB--
  }
  const pairs = Math.min(endA, endB)
  for (let i = start; i < pairs; i++) diffValue(d, a[i], b[i], `${path}/${i}`)
  for (let i = endB; i < endA; i++) emit(d, ['remove', `${path}/${endB}`], 1)
  for (let i = endA; i < endB; i++) emit(d, ['add', `${path}/${i}`, b[i]], 1 + size(b[i], Infinity))
}

// By key, when every item of both arrays is an object with a string or
// number key and no key repeats: false (and no op) otherwise.
function diffByKey(d: Diffing, a: unknown[], b: unknown[], path: string): boolean {
  const { key } = d
  const matched = matchByKey(a, b, key)
  if (matched === undefined) return false
  const { match, kept } = matched
  const at = (item: unknown): string => `${path}/$$${escapeSegment(String((item as Container)[key]))}`
  for (let i = 0; i < a.length; i++) if (kept[i] === 0) emit(d, ['remove', at(a[i])], 1)
  for (let j = 0; j < b.length; j++) {
    const i = match[j] as number
    if (i >= 0 && !equal(a[i], b[j])) diffValue(d, a[i], b[j], at(b[j]))
  }
  // The kept items that stay where they are: a longest run of them already
  // in b's order.
  const stays = longestIncreasing(match)
  // Each other item is placed before the next item that stays (or at the
  // end), in b's order: the items placed after it land between the two.
  const following = new Int32Array(b.length)
  let next = b.length
  for (let j = b.length - 1; j >= 0; j--) {
    following[j] = next
    if (stays[j] === 1) next = j
  }
  for (let j = 0; j < b.length; j++) {
    if (stays[j] === 1) continue
    const item = b[j]
    const n = following[j] as number
    const to = n < b.length ? at(b[n]) : `${path}/-`
    if (match[j] === -1) emit(d, ['upsert', to, item], 1 + size(item, Infinity))
    else emit(d, ['move', to, at(item)], 1)
  }
  return true
}

/**
 * Pairs the items of two arrays by key: `match` holds, for each item of b,
 * its position in a or -1 for a new item, and `kept` marks (1) the items of
 * a that b keeps. Undefined when the arrays cannot be diffed by key: an item
 * that is not an object with a string or number key, or a key that repeats
 * in either array.
 */
function matchByKey(a: unknown[], b: unknown[], key: string): { match: number[], kept: Uint8Array } | undefined {
  let numbers = 0
  let strings = 0
  for (const list of [a, b]) {
    for (const item of list) {
      const id = isObject(item) && !Array.isArray(item) && Object.hasOwn(item, key) ? item[key] : undefined
      if (typeof id === 'number') numbers++
      else if (typeof id === 'string') strings++
      else return undefined
    }
  }
  // `$$7` selects by the key's string form: 7 and "7" are one item. Raw keys
  // are faster map keys, and mean the same when all are of one type (a Map
  // already takes 0 and -0, both "0", as one key).
  const name = numbers > 0 && strings > 0 ? (item: unknown): unknown => String((item as Container)[key]) : (item: unknown): unknown => (item as Container)[key]
  const where = new Map<unknown, number>()
  for (let i = 0; i < a.length; i++) {
    const k = name(a[i])
    if (where.has(k)) return undefined
    where.set(k, i)
  }
  const match = new Array<number>(b.length)
  const kept = new Uint8Array(a.length)
  const added = new Set<unknown>()
  for (let j = 0; j < b.length; j++) {
    const k = name(b[j])
    const i = where.get(k)
    if (i === undefined) {
      if (added.has(k)) return undefined
      added.add(k)
      match[j] = -1
    } else {
      if (kept[i] === 1) return undefined
      kept[i] = 1
      match[j] = i
    }
  }
  return { match, kept }
}

// What a value weighs in an op, counted in values (each scalar and each
// container is one), stopping once past `cap`. It decides between ops for
// the parts of a container and one `replace` of the whole.
function size(value: unknown, cap: number): number {
  if (!isObject(value)) return 1
  let n = 1
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    n += size(item, cap - n)
    if (n > cap) break
  }
  return n
}

// JSON equality: member order does not matter; -0 is not 0.
function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (!isObject(a) || !isObject(b)) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!equal(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const k of keys) if (!Object.hasOwn(b, k) || !equal(a[k], b[k])) return false
  return true
}

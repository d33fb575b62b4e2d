import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { applyPatch, diff } from '../src/client/index.ts'
import type { DiffOptions, PatchOp } from '../src/client/index.ts'
import { seededRandom } from './helpers/random.ts'

// An object built member by member, so that "__proto__" becomes a member
// (as JSON.parse makes it) instead of the prototype.
function object(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true })
  return out
}

// diff(before, after) must turn before into after, in place and immutably,
// also after a trip through JSON, and leave both inputs as they were.
function roundTrip(before: unknown, after: unknown, options?: DiffOptions): PatchOp[] {
  const snapshot = [structuredClone(before), structuredClone(after)]
  const ops = options === undefined ? diff(before, after) : diff(before, after, options)
  assert.deepEqual([before, after], snapshot, 'diff leaves its inputs alone')
  const patch = options === undefined ? {} : { key: options.key as string }
  assert.deepEqual(applyPatch(structuredClone(before), ops, patch), after, 'in place')
  const input = structuredClone(before)
  assert.deepEqual(applyPatch(input, ops, { ...patch, immutable: true }), after, 'immutable')
  assert.deepEqual(input, before, 'immutable leaves the input alone')
  // Over the wire, as JSON documents (JSON has no -0).
  const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v))
  assert.deepEqual(applyPatch(json(before), json(ops) as PatchOp[], patch), json(after), 'over JSON')
  return ops
}

describe('diff', () => {
  describe('gives the smallest ops for the common changes', () => {
    const todo = (items: unknown[]): unknown => ({ title: 'Todo', items })
    const cases: [string, unknown, unknown, PatchOp[]][] = [
      ['equal values', { a: [1, { b: null }] }, { a: [1, { b: null }] }, []],
      ['equal scalars', 'x', 'x', []],
      ['a changed member', { a: 1, b: { c: 2, d: 3 } }, { a: 1, b: { c: 2, d: 4 } }, [['replace', '/b/d', 4]]],
      ['an added member', { a: 1 }, { a: 1, b: [2] }, [['add', '/b', [2]]]],
      ['a removed member', { a: 1, b: 2 }, { a: 1 }, [['remove', '/b']]],
      ['a member that becomes null', { a: { b: 1 }, c: 1 }, { a: null, c: 1 }, [['replace', '/a', null]]],
      ['an object that becomes an array', { a: { 0: 1 }, c: 1 }, { a: [1], c: 1 }, [['replace', '/a', [1]]]],
      ['a scalar that becomes an object', { a: 1, c: 1 }, { a: { b: 1 }, c: 1 }, [['replace', '/a', { b: 1 }]]],
      ['a new root', { a: 1 }, [1], [['replace', '', [1]]]],
      ['-0 is not 0', { a: 0, b: 1 }, { a: -0, b: 1 }, [['replace', '/a', -0]]],
      ['escaped member names', { 'a/b': { 'c~d': 1, '~1': 1 } }, { 'a/b': { 'c~d': 2, '~1': 1 } }, [['replace', '/a~1b/c~0d', 2]]],
      ['the empty member name', { '': 1, a: 1 }, { '': 2, a: 1 }, [['replace', '/', 2]]],
      ['unicode member names', { 'é😀': 'ü', a: 1 }, { 'é😀': '😀', a: 1 }, [['replace', '/é😀', '😀']]],
      ['a changed keyed item', todo([{ id: 41, done: false }, { id: 42, done: false }]), todo([{ id: 41, done: false }, { id: 42, done: true }]), [['replace', '/items/$$42/done', true]]],
      ['a removed keyed item', todo([{ id: 41 }, { id: 42 }, { id: 43 }]), todo([{ id: 41 }, { id: 43 }]), [['remove', '/items/$$42']]],
      ['an appended keyed item', todo([{ id: 1 }, { id: 2 }]), todo([{ id: 1 }, { id: 2 }, { id: 3 }]), [['upsert', '/items/-', { id: 3 }]]],
      ['a prepended keyed item', todo([{ id: 1 }, { id: 2 }]), todo([{ id: 0 }, { id: 1 }, { id: 2 }]), [['upsert', '/items/$$1', { id: 0 }]]],
      ['keyed items inserted in the middle, in order', todo([{ id: 1 }, { id: 4 }]), todo([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]), [['upsert', '/items/$$4', { id: 2 }], ['upsert', '/items/$$4', { id: 3 }]]],
      ['a keyed item moved to the end', todo([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]), todo([{ id: 2 }, { id: 3 }, { id: 4 }, { id: 1 }]), [['move', '/items/-', '/items/$$1']]],
      ['two keyed items swapped', todo([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]), todo([{ id: 1 }, { id: 3 }, { id: 2 }, { id: 4 }]), [['move', '/items/$$2', '/items/$$3']]],
      ['string keys, escaped', { l: [{ id: 'a/b' }, { id: 'c~d', v: 1 }] }, { l: [{ id: 'a/b' }, { id: 'c~d', v: 2 }] }, [['replace', '/l/$$c~0d/v', 2]]],
      ['a moved and changed keyed item', todo([{ id: 1, v: 1 }, { id: 2 }, { id: 3 }]), todo([{ id: 2 }, { id: 3 }, { id: 1, v: 2 }]), [['replace', '/items/$$1/v', 2], ['move', '/items/-', '/items/$$1']]],
      ['remove, change and add at once', todo([{ id: 1, done: false }, { id: 2, done: false }]), todo([{ id: 2, done: true }, { id: 3, done: false }]), [['remove', '/items/$$1'], ['replace', '/items/$$2/done', true], ['upsert', '/items/-', { id: 3, done: false }]]],
      ['an item inserted into an unkeyed array', { l: [1, 2, 3, 4] }, { l: [1, 2, 9, 3, 4] }, [['add', '/l/2', 9]]],
      ['an item removed from an unkeyed array', { l: [1, 2, 3, 4] }, { l: [1, 3, 4] }, [['remove', '/l/1']]],
      ['items removed from the end of an unkeyed array', { l: [1, 2, 3, 4, 5, 6] }, { l: [1, 2, 3, 4] }, [['remove', '/l/4'], ['remove', '/l/4']]],
      ['an item changed inside an unkeyed array', { l: [{ a: 1, b: 2 }, { a: 3, b: 4 }] }, { l: [{ a: 1, b: 2 }, { a: 3, b: 5 }] }, [['replace', '/l/1/b', 5]]],
      ['an unkeyed array that changed throughout is replaced', { l: [1, 2, 3], a: 1 }, { l: [4, 5, 6], a: 1 }, [['replace', '/l', [4, 5, 6]]]],
      ['an object that changed throughout is replaced', { o: { a: 1, b: 2, c: 3 }, x: 1 }, { o: { d: 1, e: 2, f: 3 }, x: 1 }, [['replace', '/o', { d: 1, e: 2, f: 3 }]]],
      ['an emptied keyed array is replaced', todo([{ id: 1 }, { id: 2 }, { id: 3 }]), todo([]), [['replace', '/items', []]]],
      ['on a tie, one replace rather than two removes', todo([{ id: 1 }, { id: 2 }]), todo([]), [['replace', '/items', []]]],
      ['a filled empty array is replaced', todo([]), todo([{ id: 1 }, { id: 2 }]), [['replace', '/items', [{ id: 1 }, { id: 2 }]]]],
      ['empty containers', { a: {}, b: [], c: 1 }, { a: [], b: {}, c: 1 }, [['replace', '/a', []], ['replace', '/b', {}]]],
    ]
    for (const [name, before, after, expected] of cases) {
      it(name, () => assert.deepEqual(roundTrip(before, after), expected, `the smallest ops for ${name}`))
    }
  })

  describe('members applyPatch refuses in a path', () => {
    it('replaces the object holding a changed "__proto__" member', () => {
      const before = JSON.parse('{"a": {"__proto__": {"x": 1}, "y": 1}, "b": 1}') as unknown
      const after = JSON.parse('{"a": {"__proto__": {"x": 2}, "y": 1}, "b": 1}') as { a: object }
      const ops = roundTrip(before, after)
      assert.deepEqual(ops, [['replace', '/a', after.a]], 'one replace of the object holding "__proto__"')
      const patched = applyPatch(structuredClone(before), ops) as { a: Record<string, unknown> }
      assert.ok(Object.hasOwn(patched.a, '__proto__'), 'the patched object keeps __proto__ as an own key, not as its prototype')
      assert.equal(Object.getPrototypeOf(patched.a), Object.prototype, 'the patched object keeps the plain prototype')
      assert.equal(({} as Record<string, unknown>)['x'], undefined, 'Object.prototype is not polluted')
    })

    it('replaces the root when the root holds one', () => {
      const after = object([['__proto__', { polluted: true }], ['a', 1]])
      assert.deepEqual(roundTrip({ a: 1 }, after), [['replace', '', after]], 'a root that gains "__proto__" is replaced whole')
      assert.deepEqual(roundTrip(after, { a: 1 }), [['replace', '', { a: 1 }]], 'a root that loses "__proto__" is replaced whole')
    })

    it('replaces the nearest object it accepts, below an unchanged "__proto__" member', () => {
      const before = object([['__proto__', { a: 1 }], ['x', { constructor: { y: 1 }, z: 1 }], ['w', 1]])
      const after = object([['__proto__', { a: 1 }], ['x', { constructor: { y: 2 }, z: 1 }], ['w', 1]])
      assert.deepEqual(roundTrip(before, after), [['replace', '/x', { constructor: { y: 2 }, z: 1 }]], 'one replace of /x, the object holding the changed "constructor"')
    })

    it('leaves unchanged refused members alone and diffs the rest', () => {
      const before = object([['prototype', [1]], ['a', { b: 1, c: 1 }]])
      const after = object([['prototype', [1]], ['a', { b: 2, c: 1 }]])
      assert.deepEqual(roundTrip(before, after), [['replace', '/a/b', 2]], 'only the changed member, not the unchanged "prototype"')
    })

    it('replaces a keyed item with a refused member by its key', () => {
      const before = { items: [{ id: 1, constructor: 1, v: 1 }, { id: 2 }] as object[] }
      const after = { items: [{ id: 1, constructor: 2, v: 1 }, { id: 2 }] as object[] }
      assert.deepEqual(roundTrip(before, after), [['replace', '/items/$$1', after.items[0]]], 'one replace of the item, by its key')
    })
  })

  describe('keyed arrays', () => {
    it('matches keys as $$ segments do: 7 and "7" are one item', () => {
      const ops = roundTrip({ l: [{ id: 7, v: 1 }, { id: 'x' }] }, { l: [{ id: '7', v: 1 }, { id: 'x' }] })
      assert.deepEqual(ops, [['replace', '/l/$$7/id', '7']], '7 and "7" are one item: only its id is replaced')
    })

    it('uses options.key', () => {
      const before = { l: [{ sku: 'a', id: 1 }, { sku: 'b', id: 1 }] }
      const after = { l: [{ sku: 'b', id: 2 }, { sku: 'a', id: 1 }] }
      assert.deepEqual(roundTrip(before, after, { key: 'sku' }), [['replace', '/l/$$b/id', 2], ['move', '/l/$$a', '/l/$$b']], 'items are found by sku')
    })

    it('reorders with the fewest moves', () => {
      const ids = (list: number[]): { l: { id: number }[] } => ({ l: list.map((id) => ({ id })) })
      const moves = (ops: PatchOp[]): number => ops.filter((op) => op[0] === 'move').length
      assert.equal(moves(roundTrip(ids([1, 2, 3, 4, 5, 6, 7, 8]), ids([8, 1, 2, 3, 4, 5, 6, 7]))), 1, 'the last item moved to the front: 1 move')
      assert.equal(moves(roundTrip(ids([1, 2, 3, 4, 5, 6, 7, 8]), ids([2, 1, 4, 3, 6, 5, 8, 7]))), 4, 'four swapped pairs: 4 moves')
      assert.equal(moves(roundTrip(ids([1, 2, 3, 4, 5, 6, 7, 8]), ids([8, 7, 6, 5, 4, 3, 2, 1]))), 7, 'a reversal of 8: 7 moves')
    })

    const fallbacks: [string, unknown[], unknown[]][] = [
      ['a repeated key', [{ id: 1, v: 1 }, { id: 1, v: 2 }, { id: 2 }], [{ id: 1, v: 3 }, { id: 1, v: 2 }, { id: 2 }]],
      ['keys repeated by their string form', [{ id: 1, v: 1 }, { id: '1' }, { id: 2 }], [{ id: 1, v: 2 }, { id: '1' }, { id: 2 }]],
      ['an item without the key', [{ id: 1, v: 1 }, { v: 2 }, { id: 2 }], [{ id: 1, v: 3 }, { v: 2 }, { id: 2 }]],
      ['a key that is not a string or number', [{ id: 1, v: 1 }, { id: true }, { id: 2 }], [{ id: 1, v: 3 }, { id: true }, { id: 2 }]],
      ['an item that is not an object', [{ id: 1, v: 1 }, 5, { id: 2 }], [{ id: 1, v: 3 }, 5, { id: 2 }]],
    ]
    for (const [name, before, after] of fallbacks) {
      it(`falls back to indices for ${name}`, () => assert.deepEqual(roundTrip({ l: before, x: 1 }, { l: after, x: 1 }), [['replace', '/l/0/v', (after[0] as { v: number }).v]], `a path by index, not by key, for ${name}`))
    }

    it('falls back to indices when a key repeats in the old array only', () => {
      const ops = roundTrip({ l: [{ id: 1, v: 1 }, { id: 1, v: 2 }, { id: 2 }] }, { l: [{ id: 1, v: 1 }, { id: 2 }] })
      assert.deepEqual(ops, [['remove', '/l/1']], 'a remove by index')
    })

    it('falls back to indices when a key repeats in the new array only', () => {
      const ops = roundTrip({ l: [{ id: 1 }, { id: 2 }, { id: 3 }] }, { l: [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }, { id: 4 }] })
      assert.deepEqual(ops, [['add', '/l/3', { id: 4 }], ['add', '/l/4', { id: 4 }]], 'adds by index')
    })
  })

  describe('options', () => {
    it('throws a TypeError naming options.key', () => {
      for (const key of ['', 1, null]) {
        assert.throws(() => diff({}, {}, { key } as never), { name: 'TypeError', message: /options\.key must be a non-empty string/ }, `diff with options.key ${JSON.stringify(key)} throws`)
      }
    })

    it('throws a TypeError when options is not an object', () => {
      assert.throws(() => diff({}, {}, 'id' as never), { name: 'TypeError', message: /diff: options must be an object/ }, 'diff with a string for options throws')
      assert.throws(() => diff({}, {}, null as never), { name: 'TypeError', message: /diff: options must be an object/ }, 'diff with null for options throws')
    })
  })

  describe('a generated corpus', () => {
    const random = seededRandom(0x5eed)
    const int = (n: number): number => Math.floor(random() * n)
    const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T
    const NAMES = ['a', 'b', 'c', 'id', 'x/y', 'm~n', '~1', '~0/', '', 'é', '😀', 'ｶ', '__proto__', 'constructor', 'prototype', '0', '10']
    const SCALARS = [0, 1, -1, 2.5, 1e21, 'x', '', 'é', '😀👍', '~', '/', '~1', true, false, null]
    let nextId = 0
    const newKey = (): string | number => (random() < 0.6 ? nextId++ : pick(['k', 'a/b', 'c~d', '😀', '', '__proto__']) + String(nextId++))

    const scalar = (): unknown => pick(SCALARS)
    const value = (depth: number): unknown => {
      const r = random()
      if (depth > 3 || r < 0.35) return scalar()
      if (r < 0.6) return object(Array.from({ length: int(5) }, () => [pick(NAMES), value(depth + 1)]))
      if (r < 0.8) return Array.from({ length: int(5) }, () => value(depth + 1))
      return keyedList(depth)
    }
    const item = (depth: number): Record<string, unknown> => object([['id', newKey()], ...Array.from({ length: int(4) }, (): [string, unknown] => [pick(NAMES.filter((n) => n !== 'id')), value(depth + 2)])])
    const keyedList = (depth: number): unknown[] => Array.from({ length: int(8) }, () => item(depth))

    // A changed copy: most of the value kept, some parts changed, removed,
    // added, moved, or of another type.
    const change = (v: unknown, depth: number): unknown => {
      if (random() < 0.08) return value(depth)
      if (Array.isArray(v)) {
        const out = v.map((x) => (random() < 0.3 ? change(x, depth + 1) : structuredClone(x)))
        for (let n = int(3); n > 0; n--) {
          const r = random()
          if (r < 0.3 && out.length > 0) out.splice(int(out.length), 1)
          else if (r < 0.6) out.splice(int(out.length + 1), 0, isKeyed(v) ? item(depth) : value(depth + 1))
          else if (out.length > 1) out.splice(int(out.length), 0, ...out.splice(int(out.length), 1))
        }
        return out
      }
      if (typeof v === 'object' && v !== null) {
        const entries: [string, unknown][] = []
        for (const [k, x] of Object.entries(v)) {
          const r = random()
          if (r < 0.15 && k !== 'id') continue
          entries.push([k, k !== 'id' && r < 0.5 ? change(x, depth + 1) : structuredClone(x)])
        }
        if (random() < 0.3) entries.push([pick(NAMES.filter((n) => n !== 'id')), value(depth + 1)])
        return object(entries.filter(([k], i) => entries.findIndex(([k2]) => k2 === k) === i))
      }
      return random() < 0.5 ? scalar() : v
    }
    const isKeyed = (list: unknown[]): boolean => list.length > 0 && list.every((x) => typeof x === 'object' && x !== null && Object.hasOwn(x, 'id'))

    it('round-trips 3000 generated pairs, in place, immutably and over JSON', () => {
      const has = (v: unknown, name: string): boolean =>
        typeof v === 'object' && v !== null && (Object.hasOwn(v, name) || Object.values(v).some((x) => has(x, name)))
      let ops = 0
      let keyedOps = 0
      let refused = 0
      for (let n = 0; n < 3000; n++) {
        const before = value(0)
        const after = random() < 0.85 ? change(before, 0) : value(0)
        try {
          const patch = roundTrip(before, after)
          ops += patch.length
          keyedOps += patch.filter((op) => op[1].includes('$$')).length
          if (has(before, '__proto__') || has(after, '__proto__')) refused++
        } catch (error) {
          assert.fail(`case ${n}: ${JSON.stringify(before)} → ${JSON.stringify(after)}: ${(error as Error).message}`)
        }
      }
      // The corpus exercises what it is meant to: changes, keyed paths among
      // them, and "__proto__" members.
      assert.ok(ops > 2000, `${ops} ops`)
      assert.ok(keyedOps > 400, `${keyedOps} keyed ops`)
      assert.ok(refused > 300, `${refused} pairs with a "__proto__" member`)
    })

    it('round-trips keyed lists reordered, trimmed and grown', () => {
      for (let n = 0; n < 1000; n++) {
        const before = { items: keyedList(0) }
        const items = before.items.filter(() => random() < 0.8).map((x) => (random() < 0.2 ? change(x, 1) : structuredClone(x)))
        for (let k = int(4); k > 0; k--) items.splice(int(items.length + 1), 0, random() < 0.5 || before.items.length === 0 ? item(1) : structuredClone(pick(before.items)))
        for (let k = int(4); k > 0 && items.length > 1; k--) items.splice(int(items.length), 0, ...items.splice(int(items.length), 1))
        roundTrip(before, { items })
      }
    })
  })
})

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { applyPatch, PatchError, PatchwireError } from '../src/client/index.ts'
import type { PatchOp } from '../src/client/index.ts'

type Doc = unknown
const MODES = [
  { name: 'in place', immutable: false },
  { name: 'immutable', immutable: true },
] as const

// Runs a case in both modes on a fresh copy of the document. In place, the
// result is the target itself unless the root was replaced; immutably, the
// input is left exactly as it was.
function check(doc: Doc, ops: readonly PatchOp[], expected: Doc, key?: string): void {
  for (const { name, immutable } of MODES) {
    const target = structuredClone(doc)
    const before = JSON.stringify(target)
    const result = applyPatch(target, ops, key === undefined ? { immutable } : { immutable, key })
    assert.deepEqual(result, expected, `${name}: result`)
    if (immutable) assert.equal(JSON.stringify(target), before, `${name}: input untouched`)
    else if (ops.every((op) => op[1] !== '')) assert.equal(result, target, `${name}: returns the target`)
  }
}

// Asserts that the ops fail at `index` with a reason matching `reason`, and
// that the document is left exactly as it was (member order included).
function checkFails(doc: Doc, ops: readonly unknown[], index: number, reason: RegExp): void {
  for (const { name, immutable } of MODES) {
    const target = structuredClone(doc)
    const before = JSON.stringify(target)
    assert.throws(
      () => applyPatch(target, ops as PatchOp[], { immutable }),
      (error: unknown) => {
        assert.ok(error instanceof PatchError, `${name}: a PatchError`)
        assert.ok(error instanceof PatchwireError, `${name}: a PatchwireError too`)
        assert.equal(error.code, 'ERR_PATCHWIRE_PATCH', `${name}: code`)
        assert.equal(error.name, 'PatchError', `${name}: name`)
        assert.equal(error.index, index, `${name}: index`)
        assert.equal(error.op, ops[index], `${name}: the op is the one at index ${index}, not a copy`)
        assert.match(error.reason, reason, `${name}: reason`)
        assert.match(error.message, new RegExp(`^applyPatch: op ${index}\\b.*${reason.source}`), `${name}: the message names op ${index}, then the reason`)
        return true
      },
      `${name}: the ops throw a PatchError at op ${index}`,
    )
    assert.equal(JSON.stringify(target), before, `${name}: document unchanged`)
  }
}

describe('applyPatch', () => {
  describe('RFC 6902 operations', () => {
    const cases: [string, Doc, PatchOp[], Doc][] = [
      ['add a member', { a: 1 }, [['add', '/b', 2]], { a: 1, b: 2 }],
      ['add replaces an existing member', { a: 1 }, [['add', '/a', 2]], { a: 2 }],
      ['add null', {}, [['add', '/a', null]], { a: null }],
      ['add inserts into an array', [1, 3], [['add', '/1', 2]], [1, 2, 3]],
      ['add at the length appends', [1], [['add', '/1', 2]], [1, 2]],
      ['add "-" appends', { l: [1] }, [['add', '/l/-', 2]], { l: [1, 2] }],
      ['add an array value is not flattened', [1], [['add', '/-', [2, 3]]], [1, [2, 3]]],
      ['add a nested member', { a: { b: {} } }, [['add', '/a/b/c', 1]], { a: { b: { c: 1 } } }],
      ['add the empty member name', {}, [['add', '/', 1]], { '': 1 }],
      ['add replaces the root', { a: 1 }, [['add', '', [1]]], [1]],
      ['remove a member', { a: 1, b: 2 }, [['remove', '/a']], { b: 2 }],
      ['remove an array item', [1, 2, 3], [['remove', '/1']], [1, 3]],
      ['replace a member', { a: 1 }, [['replace', '/a', { b: 2 }]], { a: { b: 2 } }],
      ['replace an array item', [1, 2], [['replace', '/0', 0]], [0, 2]],
      ['replace the root', { a: 1 }, [['replace', '', 'x']], 'x'],
      ['move a member', { a: 1, b: {} }, [['move', '/b/c', '/a']], { b: { c: 1 } }],
      ['move within an array', [1, 2, 3, 4], [['move', '/3', '/1']], [1, 3, 4, 2]],
      ['move to the same place', { a: 1 }, [['move', '/a', '/a']], { a: 1 }],
      ['copy a member', { a: { b: 1 } }, [['copy', '/c', '/a']], { a: { b: 1 }, c: { b: 1 } }],
      ['copy into an array', { a: 1, l: [] }, [['copy', '/l/-', '/a']], { a: 1, l: [1] }],
      ['test passes on equal values', { a: { x: [1, { y: null }] } }, [['test', '/a', { x: [1, { y: null }] }]], { a: { x: [1, { y: null }] } }],
      ['test ignores member order', { a: { x: 1, y: 2 } }, [['test', '/a', { y: 2, x: 1 }]], { a: { x: 1, y: 2 } }],
      ['test the root', [1], [['test', '', [1]]], [1]],
      ['escapes ~1 and ~0', { 'a/b': { 'c~d': 1 } }, [['replace', '/a~1b/c~0d', 2]], { 'a/b': { 'c~d': 2 } }],
      ['~01 is "~1", not "/"', { '~1': 1, '/': 2 }, [['remove', '/~01']], { '/': 2 }],
      ['a numeric member name in an object', { '1e0': 1 }, [['replace', '/1e0', 2]], { '1e0': 2 }],
      ['ops apply in order', { l: [] }, [['add', '/l/-', 1], ['add', '/l/-', 2], ['remove', '/l/0']], { l: [2] }],
      ['no ops', { a: 1 }, [], { a: 1 }],
    ]
    for (const [name, doc, ops, expected] of cases) it(name, () => check(doc, ops, expected))
  })

  describe('list extensions', () => {
    const items = [{ id: 1, v: 'a' }, { id: 2, v: 'b' }, { id: 3, v: 'c' }]
    const cases: [string, Doc, PatchOp[], Doc][] = [
      ['upsert replaces the item with the same key', { items }, [['upsert', '/items/0', { id: 2, v: 'B' }]], { items: [items[0], { id: 2, v: 'B' }, items[2]] }],
      ['upsert inserts at the index when the key is new', { items }, [['upsert', '/items/1', { id: 9 }]], { items: [items[0], { id: 9 }, items[1], items[2]] }],
      ['upsert appends with "-"', { items }, [['upsert', '/items/-', { id: 9 }]], { items: [...items, { id: 9 }] }],
      ['upsert inserts a value without a key', [1], [['upsert', '/0', 0]], [0, 1]],
      ['upsert compares keys strictly', [{ id: 1 }], [['upsert', '/-', { id: '1' }]], [{ id: 1 }, { id: '1' }]],
      ['limit keeps the first n', { items }, [['limit', '/items', 2]], { items: items.slice(0, 2) }],
      ['limit keeps the last |n|', { items }, [['limit', '/items', -2]], { items: items.slice(1) }],
      ['limit 0 empties', { items }, [['limit', '/items', 0]], { items: [] }],
      ['limit above the length keeps all', { items }, [['limit', '/items', 5]], { items }],
      ['limit -n above the length keeps all', { items }, [['limit', '/items', -5]], { items }],
      ['limit on the root array', [1, 2, 3], [['limit', '', -1]], [3]],
      ['a live feed: prepend then limit', { feed: [{ id: 1 }, { id: 2 }] }, [['upsert', '/feed/0', { id: 3 }], ['limit', '/feed', 2]], { feed: [{ id: 3 }, { id: 1 }] }],
      ['$$key selects by key', { items }, [['replace', '/items/$$3/v', 'C']], { items: [items[0], items[1], { id: 3, v: 'C' }] }],
      ['$$key removes by key', { items }, [['remove', '/items/$$1']], { items: items.slice(1) }],
      ['$$key inserts before the item', { items }, [['add', '/items/$$2', { id: 0 }]], { items: [items[0], { id: 0 }, items[1], items[2]] }],
      ['$$key matches string and number keys', [{ id: 'x' }, { id: 7 }], [['remove', '/$$7'], ['remove', '/$$x']], []],
      ['$$key is a plain member name in an object', { $$1: 'a' }, [['remove', '/$$1']], {}],
      ['$$key as a move source', { items, done: [] }, [['move', '/done/-', '/items/$$2']], { items: [items[0], items[2]], done: [items[1]] }],
    ]
    for (const [name, doc, ops, expected] of cases) it(name, () => check(doc, ops, expected))

    it('uses options.key for upsert and $$ segments', () => {
      const doc = { l: [{ sku: 'a', n: 1 }, { id: 'a', sku: 'b', n: 2 }] }
      check(doc, [['upsert', '/l/0', { sku: 'b', n: 3 }], ['replace', '/l/$$a/n', 4]], { l: [{ sku: 'a', n: 4 }, { sku: 'b', n: 3 }] }, 'sku')
    })
  })

  describe('failures', () => {
    const cases: [string, Doc, unknown[], number, RegExp][] = [
      ['an unknown op', { a: 1 }, [['spam', '/a', 1]], 0, /unknown op "spam"/],
      ['an op that is not a tuple', {}, [{ op: 'add', path: '/a', value: 1 }], 0, /not a tuple/],
      ['a path that is not a string', {}, [['add', 1, 1]], 0, /not a tuple/],
      ['a path without a leading slash', { a: 1 }, [['remove', 'a']], 0, /must be "" or start with "\/"/],
      ['a bad escape', { 'a~2': 1 }, [['remove', '/a~2']], 0, /"~" must be followed by 0 or 1/],
      ['a trailing ~', { 'a~': 1 }, [['remove', '/a~']], 0, /"~" must be followed by 0 or 1/],
      ['add without a value', {}, [['add', '/a']], 0, /missing value/],
      ['test without a value', [null], [['test', '/0']], 0, /missing value/],
      ['move without from', { a: 1 }, [['move', '/b']], 0, /missing from/],
      ['copy with a non-string from', { a: 1 }, [['copy', '/b', 1]], 0, /missing from/],
      ['add to a missing parent', { a: 1 }, [['add', '/b/c', 1]], 0, /no member "b"/],
      ['add below a scalar', { a: 1 }, [['add', '/a/b', 1]], 0, /no member "b" in number/],
      ['add below null', { a: null }, [['add', '/a/b', 1]], 0, /no member "b" in null/],
      ['add past the end of an array', [1, 2], [['add', '/3', 0]], 0, /index 3 is out of bounds \(length 2\)/],
      ['a negative index', [1, 2], [['add', '/-1', 0]], 0, /"-1" is not an index/],
      ['an index with a leading zero', [1, 2], [['remove', '/01']], 0, /"01" is not an index/],
      ['an index in exponent form', [1, 2], [['remove', '/1e0']], 0, /"1e0" is not an index/],
      ['a member name on an array', [1], [['add', '/a', 1]], 0, /"a" is not an index/],
      ['remove "-"', [1], [['remove', '/-']], 0, /"-" is not an index/],
      ['remove at the length', [1], [['remove', '/1']], 0, /out of bounds/],
      ['replace at the length', [1], [['replace', '/1', 0]], 0, /out of bounds/],
      ['remove a missing member', { a: 1 }, [['remove', '/b']], 0, /no member "b"/],
      ['remove an inherited member', {}, [['remove', '/toString']], 0, /no member "toString"/],
      ['replace a missing member', { a: 1 }, [['replace', '/b', 1]], 0, /no member "b"/],
      ['remove the root', { a: 1 }, [['remove', '']], 0, /cannot remove the root/],
      ['move from a missing member', { a: 1 }, [['move', '/b', '/c']], 0, /no member "c"/],
      ['move to the same missing place', { a: 1 }, [['move', '/c', '/c']], 0, /no member "c"/],
      ['move into its own child', { a: { b: 1 } }, [['move', '/a/b/c', '/a']], 0, /cannot move into itself/],
      ['a failed test', { a: 1 }, [['test', '/a', 2]], 0, /test failed/],
      ['a test of a number against a string', { a: 10 }, [['test', '/a', '10']], 0, /test failed/],
      ['a test of an array against an object', { a: [] }, [['test', '/a', {}]], 0, /test failed/],
      ['a test with an extra member', { a: { x: 1 } }, [['test', '/a', { x: 1, y: 2 }]], 0, /test failed/],
      ['a test of a missing member', {}, [['test', '/a', null]], 0, /no member "a"/],
      ['a missing $$ key', [{ id: 1 }], [['remove', '/$$2']], 0, /no item with id "2"/],
      ['upsert on an object', { a: {} }, [['upsert', '/a/b', { id: 1 }]], 0, /not an array/],
      ['upsert on the root', [], [['upsert', '', { id: 1 }]], 0, /not an array/],
      ['upsert past the end', [], [['upsert', '/1', { id: 1 }]], 0, /out of bounds/],
      ['limit on an object', { a: {} }, [['limit', '/a', 1]], 0, /not an array/],
      ['limit with a fraction', { a: [] }, [['limit', '/a', 1.5]], 0, /not an integer/],
      ['limit with a string', { a: [] }, [['limit', '/a', '1']], 0, /not an integer/],
      ['a later op fails', { a: 1 }, [['replace', '/a', 2], ['add', '/b', 3], ['remove', '/zz']], 2, /no member "zz"/],
    ]
    for (const [name, doc, ops, index, reason] of cases) it(`fails on ${name}`, () => checkFails(doc, ops, index, reason))

    it('throws a TypeError when ops is not an array', () => {
      assert.throws(() => applyPatch({}, {} as never), { name: 'TypeError', message: /ops must be an array/ }, 'an object as ops is a TypeError naming ops')
      assert.throws(() => applyPatch({}, null as never), TypeError, 'null as ops is a TypeError')
    })

    it('throws a TypeError when options.key is not a non-empty string', () => {
      assert.throws(() => applyPatch({}, [], { key: '' }), { name: 'TypeError', message: /options\.key/ }, 'an empty key is a TypeError naming options.key')
      assert.throws(() => applyPatch({}, [], { key: 1 as never }), { name: 'TypeError', message: /options\.key/ }, 'a number as key is a TypeError naming options.key')
    })

    it('names the op in the message', () => {
      assert.throws(() => applyPatch({ l: [] }, [['add', '/l/-', 1], ['remove', '/l/5']]), {
        message: 'applyPatch: op 1 (remove "/l/5") failed: index 5 is out of bounds (length 1)',
      }, 'the message names the op, its path and the reason')
    })
  })

  describe('atomicity', () => {
    it('undoes every kind of change, in place, keeping identities and member order', () => {
      const nested = { deep: [1, 2] }
      const list = Array.from({ length: 10 }, (_, i) => ({ id: i }))
      const target: Record<string, unknown> = { a: 1, b: nested, c: 'x', d: list, e: { k1: 1, k2: 2, k3: 3 } }
      const before = JSON.stringify(target)
      const listBefore = [...list]
      const ops: PatchOp[] = [
        ['replace', '/a', 2],
        ['add', '/new', { n: 1 }],
        ['add', '/new/m', 2],
        ['remove', '/c'],
        ['remove', '/e/k1'],
        ['move', '/b/moved', '/e/k2'],
        ['copy', '/b/copied', '/d/0'],
        ['add', '/d/3', 'inserted'],
        ['remove', '/d/0'],
        ['upsert', '/d/0', { id: 5, v: 1 }],
        ['upsert', '/d/-', { id: 99 }],
        ['limit', '/d', -3],
        ['replace', '/b/deep/1', 20],
        ['move', '/d/0', '/d/2'],
        ['test', '/a', 'not 2'],
      ]
      assert.throws(() => applyPatch(target, ops), (error: unknown) => error instanceof PatchError && error.index === ops.length - 1, `the last op, ${ops.length - 1}, fails the patch`)
      assert.equal(JSON.stringify(target), before, 'the document is back as it was')
      assert.equal(target['b'], nested, 'b is the same object again')
      assert.equal(target['d'], list, 'd is the same array again')
      assert.deepEqual(Object.keys(target), ['a', 'b', 'c', 'd', 'e'], 'the members are back in their order')
      assert.deepEqual(Object.keys(target['e'] as object), ['k1', 'k2', 'k3'], 'the members of e are back in their order')
      list.forEach((item, i) => assert.equal(item, listBefore[i], `item ${i} of d is the same object again`))
    })

    it('restores a long array cut by limit (no argument spreading)', () => {
      const long = Array.from({ length: 300_000 }, (_, i) => i)
      const target = { long }
      assert.throws(() => applyPatch(target, [['limit', '/long', 1], ['test', '/long', []]]), PatchError, 'the failed test fails the patch')
      assert.equal(target.long.length, 300_000, 'the long array has its length back')
      assert.equal(target.long[299_999], 299_999, 'the last item of the long array is back')
    })

    it('leaves the root alone when the root was replaced before the failure', () => {
      const target = { a: 1 }
      assert.throws(() => applyPatch(target, [['remove', '/a'], ['replace', '', { b: 1 }], ['remove', '/zz']]), PatchError, 'the missing member fails the patch')
      assert.deepEqual(target, { a: 1 }, 'the target is as it was')
    })

    it('rolls back and rethrows what a setter threw', () => {
      const target = { a: 1, b: Object.freeze({ c: 1 }) }
      assert.throws(() => applyPatch(target, [['replace', '/a', 2], ['replace', '/b/c', 2]]), TypeError, "the frozen object's TypeError comes through")
      assert.deepEqual(target, { a: 1, b: { c: 1 } }, 'the replace before the setter is undone')
    })
  })

  describe('in place', () => {
    it('writes through proxies, as Svelte 5 $state and Vue reactive need', () => {
      const traps: string[] = []
      const reactive = <T extends object>(value: T): T =>
        new Proxy(value, {
          set(obj, key, v) {
            traps.push(`set ${String(key)}`)
            return Reflect.set(obj, key, v)
          },
          deleteProperty(obj, key) {
            traps.push(`delete ${String(key)}`)
            return Reflect.deleteProperty(obj, key)
          },
        })
      const state = reactive({ counter: 1, gone: true, list: reactive([1]) })
      const result = applyPatch(state, [['replace', '/counter', 2], ['remove', '/gone'], ['add', '/list/-', 2]])
      assert.equal(result, state, 'returns the proxy itself')
      assert.deepEqual(traps, ['set counter', 'delete gone', 'set 1', 'set length'], `every change goes through a trap: ${traps.join(', ')}`)
    })

    it('copies inserted values, so one ops array can patch several documents', () => {
      const ops: PatchOp[] = [['add', '/item', { tags: ['a'] }]]
      const one = applyPatch({} as { item: { tags: string[] } }, ops)
      const two = applyPatch({} as { item: { tags: string[] } }, ops)
      one.item.tags.push('b')
      assert.deepEqual(two.item.tags, ['a'], 'a change to one document does not reach the other')
      assert.deepEqual(ops[0]?.[2], { tags: ['a'] }, 'nor the ops')
    })

    it('copies the value of copy, so the copies are independent', () => {
      const doc = applyPatch({ a: { x: 1 } } as Record<string, { x: number }>, [['copy', '/b', '/a']])
      assert.notEqual(doc['a'], doc['b'], 'the copy is a new object')
    })
  })

  describe('immutable', () => {
    it('shares every untouched branch and copies the path to each change', () => {
      const doc = { a: { b: { c: 1 } }, x: { y: [1] }, l: [{ id: 1 }, { id: 2 }] }
      const next = applyPatch(doc, [['replace', '/a/b/c', 2], ['add', '/l/$$2/v', 1]], { immutable: true })
      assert.notEqual(next, doc, 'the root is copied')
      assert.notEqual(next.a, doc.a, 'a, on the path to a change, is copied')
      assert.notEqual(next.a.b, doc.a.b, 'a.b, on the path to a change, is copied')
      assert.equal(next.x, doc.x, 'x, untouched, is shared')
      assert.notEqual(next.l, doc.l, 'l, on the path to a change, is copied')
      assert.equal(next.l[0], doc.l[0], 'l[0], untouched, is shared')
      assert.deepEqual(doc, { a: { b: { c: 1 } }, x: { y: [1] }, l: [{ id: 1 }, { id: 2 }] }, 'the input is unchanged')
    })

    it('returns the target itself when nothing changes', () => {
      const doc = { a: 1, feed: [1, 2] }
      assert.equal(applyPatch(doc, [['test', '/a', 1]], { immutable: true }), doc, 'a passing test returns the target')
      // A limit the list is already within changes nothing, so it copies nothing.
      assert.equal(applyPatch(doc, [['limit', '/feed', 5], ['limit', '/feed', -2]], { immutable: true }), doc, 'limits the list is within return the target')
    })

    it('works on frozen documents', () => {
      const doc = Object.freeze({ a: Object.freeze({ b: 1 }), l: Object.freeze([1, 2, 3]) })
      assert.deepEqual(applyPatch(doc, [['replace', '/a/b', 2], ['limit', '/l', 1]], { immutable: true }), { a: { b: 2 }, l: [1] }, 'a frozen document is patched into a new one')
    })
  })

  describe('safety', () => {
    for (const segment of ['__proto__', 'constructor', 'prototype']) {
      for (const op of [['add', `/${segment}/polluted`, 1], ['add', `/a/${segment}`, 1], ['replace', `/${segment}`, {}], ['copy', '/x', `/${segment}`], ['move', `/${segment}/x`, '/a']] as const) {
        it(`refuses ${op[0]} ${op[1]} ${op[2]}`, () => checkFails({ a: {} }, [op], 0, new RegExp(`"${segment}" is not allowed`)))
      }
    }

    it('refuses them in a test and on arrays too', () => {
      checkFails({}, [['test', '/constructor', null]], 0, /"constructor" is not allowed/)
      checkFails({ l: [] }, [['add', '/l/__proto__', 1]], 0, /"__proto__" is not allowed/)
      checkFails({ l: [] }, [['limit', '/l/prototype', 1]], 0, /"prototype" is not allowed/)
    })

    it('keeps a "__proto__" member of a value a plain member', () => {
      for (const immutable of [false, true]) {
        const value: unknown = JSON.parse('{"__proto__": {"polluted": 1}, "ok": 1}')
        const doc = applyPatch({} as Record<string, Record<string, unknown>>, [['add', '/v', value]], { immutable })
        const v = doc['v'] as Record<string, unknown>
        assert.equal(Object.getPrototypeOf(v), Object.prototype, `immutable ${immutable}: the added value keeps Object.prototype`)
        assert.ok(Object.hasOwn(v, '__proto__'), '__proto__ stays an own key of the added value')
        assert.equal(v['polluted'], undefined, `immutable ${immutable}: the added value inherits no polluted`)
        assert.equal(({} as Record<string, unknown>)['polluted'], undefined, `immutable ${immutable}: Object.prototype is not polluted`)
      }
    })
  })
})

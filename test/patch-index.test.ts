// `$$<key>` segments and upsert read a per-call key index of the array; these
// tests change the array and its items between lookups in ONE call, so a
// stale index would select the wrong item.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { applyPatch, PatchError } from '../src/client/index.ts'
import type { PatchOp } from '../src/client/index.ts'
import { seededRandom } from './helpers/random.ts'

type Item = Record<string, unknown>
const list = (n: number): { items: Item[] } => ({ items: Array.from({ length: n }, (_, i) => ({ id: i, v: 0 })) })

// Applies the ops in one call and, separately, one call per op (each with a
// fresh index): both must give the same document, in both modes.
function sameAsOneByOne(doc: unknown, ops: PatchOp[], key?: string): unknown {
  const options = key === undefined ? {} : { key }
  let stepwise = structuredClone(doc)
  for (const op of ops) stepwise = applyPatch(stepwise, [op], options)
  for (const immutable of [false, true]) {
    assert.deepEqual(applyPatch(structuredClone(doc), ops, { ...options, immutable }), stepwise, immutable ? 'immutable' : 'in place')
  }
  return stepwise
}

describe('applyPatch key lookups within one call', () => {
  it('finds items after inserts at the start (the index shifts)', () => {
    const doc = sameAsOneByOne(list(5), [
      ['replace', '/items/$$3/v', 1],
      ['upsert', '/items/0', { id: 10, v: 0 }],
      ['add', '/items/0', { id: 11, v: 0 }],
      ['replace', '/items/$$3/v', 2],
      ['replace', '/items/$$10/v', 3],
      ['replace', '/items/$$11/v', 4],
    ]) as { items: Item[] }
    assert.deepEqual(doc.items.map((item) => [item['id'], item['v']]), [[11, 4], [10, 3], [0, 0], [1, 0], [2, 0], [3, 2], [4, 0]], '[id, v] of each item: each update reached its keyed item despite the inserts')
  })

  it('finds items after removals at the start, the end and the middle', () => {
    const doc = sameAsOneByOne(list(10), [
      ['replace', '/items/$$9/v', 1],
      ['remove', '/items/0'],
      ['replace', '/items/$$5/v', 1],
      ['remove', '/items/$$9'],
      ['replace', '/items/$$8/v', 1],
      ['remove', '/items/3'],
      ['replace', '/items/$$6/v', 1],
      ['replace', '/items/$$2/v', 1],
    ]) as { items: Item[] }
    assert.deepEqual(doc.items.map((item) => `${String(item['id'])}:${String(item['v'])}`), ['1:0', '2:1', '3:0', '5:1', '6:1', '7:0', '8:1'], 'id:v of each item: the removed ones are gone, each update reached its keyed item')
  })

  it('finds items after limit from either end, and misses the ones cut', () => {
    const ops: PatchOp[] = [['replace', '/items/$$7/v', 1], ['limit', '/items', -6], ['replace', '/items/$$7/v', 2], ['limit', '/items', 3]]
    const doc = sameAsOneByOne(list(10), ops) as { items: Item[] }
    assert.deepEqual(doc.items.map((item) => item['id']), [4, 5, 6], 'ids left after limit -6 then limit 3')
    assert.throws(() => applyPatch(list(10), [...ops, ['replace', '/items/$$7/v', 3]]), { reason: 'no item with id "7"' }, '7, cut by limit 3, is not found')
    assert.throws(() => applyPatch(list(10), [...ops, ['remove', '/items/$$2']]), { reason: 'no item with id "2"' }, '2, cut by limit -6, is not found')
  })

  it('follows a key that an op changes, removes or adds', () => {
    const doc = sameAsOneByOne(list(4), [
      ['replace', '/items/$$1/v', 1],
      ['replace', '/items/$$1/id', 'one'],
      ['replace', '/items/$$one/v', 2],
      ['remove', '/items/$$2/id'],
      ['add', '/items/3/id', 2],
      ['replace', '/items/$$2/v', 3],
    ]) as { items: Item[] }
    assert.deepEqual(doc.items, [{ id: 0, v: 0 }, { id: 'one', v: 2 }, { v: 0 }, { id: 2, v: 3 }], 'lookups follow the key an op changed, removed or added')
    const upserted = sameAsOneByOne(list(3), [['replace', '/items/$$2/v', 1], ['remove', '/items/$$2/id'], ['upsert', '/items/-', { id: 2, v: 2 }]])
    assert.deepEqual(upserted, { items: [{ id: 0, v: 0 }, { id: 1, v: 0 }, { v: 1 }, { id: 2, v: 2 }] }, 'upsert of a key just removed from an item inserts a new item')
    assert.throws(() => applyPatch(list(4), [['replace', '/items/$$1/v', 1], ['replace', '/items/$$1/id', 9], ['remove', '/items/$$1']]), {
      reason: 'no item with id "1"',
    }, 'an item whose key was changed is not found under its old key')
  })

  it('follows items replaced, moved and copied', () => {
    const doc = sameAsOneByOne({ ...list(5), done: [] }, [
      ['replace', '/items/$$4/v', 1],
      ['replace', '/items/1', { id: 'x', v: 0 }],
      ['replace', '/items/$$x/v', 1],
      ['move', '/items/0', '/items/$$4'],
      ['replace', '/items/$$4/v', 2],
      ['move', '/done/-', '/items/$$2'],
      ['copy', '/items/-', '/done/0'],
      ['replace', '/items/$$2/v', 3],
      ['upsert', '/items/-', { id: 3, v: 4 }],
    ]) as { items: Item[]; done: Item[] }
    assert.deepEqual(doc.items, [{ id: 4, v: 2 }, { id: 0, v: 0 }, { id: 'x', v: 1 }, { id: 3, v: 4 }, { id: 2, v: 3 }], 'items after the replace, moves, copy and upsert, each update on its keyed item')
    assert.deepEqual(doc.done, [{ id: 2, v: 0 }], 'the item moved to done stays there, unchanged by the update of its copy')
  })

  it('upsert replaces the item it finds and inserts a new key, keeping later lookups right', () => {
    const doc = sameAsOneByOne(list(3), [
      ['upsert', '/items/0', { id: 2, v: 1 }],
      ['upsert', '/items/1', { id: 7, v: 0 }],
      ['upsert', '/items/-', { id: 7, v: 2 }],
      ['replace', '/items/$$2/v', 3],
      ['replace', '/items/$$1/v', 4],
    ]) as { items: Item[] }
    assert.deepEqual(doc.items, [{ id: 0, v: 0 }, { id: 7, v: 2 }, { id: 1, v: 4 }, { id: 2, v: 3 }], 'upserts replaced the items they found, inserted the new key, and later lookups found theirs')
  })

  it('a live feed: prepend, update and trim many times in one call', () => {
    const ops: PatchOp[] = []
    for (let k = 0; k < 60; k++) {
      ops.push(['upsert', '/items/0', { id: 100 + k, v: 0 }], ['upsert', '/items/3', { id: 100 + Math.floor(k / 2), v: k }], ['limit', '/items', 8])
    }
    const doc = sameAsOneByOne(list(8), ops) as { items: Item[] }
    assert.deepEqual(doc.items.map((item) => item['id']), [159, 158, 157, 156, 129, 155, 154, 128], 'ids of the feed after 60 rounds of prepend, update and trim')
  })

  it('$$ matches string and number keys by their string form, the first one first', () => {
    const doc = { items: [{ id: 'a' }, { id: '7', n: 1 }, { id: 7, n: 2 }, { id: 1.5 }, { id: '1.5' }] }
    sameAsOneByOne(doc, [['replace', '/items/$$a/id', 'b'], ['replace', '/items/$$7/n', 3], ['replace', '/items/$$1.5/id', 'x']])
    const out = applyPatch(structuredClone(doc), [['replace', '/items/$$a/id', 'b'], ['remove', '/items/$$7'], ['replace', '/items/$$7/n', 4]])
    assert.deepEqual(out.items, [{ id: 'b' }, { id: 7, n: 4 }, { id: 1.5 }, { id: '1.5' }], '$$7 selects "7" first, then 7 once "7" is removed')
    // "07" is not the string form of 7; "-0" is not the string form of 0.
    assert.throws(() => applyPatch({ items: [{ id: 0 }, { id: 7 }] }, [['remove', '/items/$$7'], ['remove', '/items/$$07']]), { reason: 'no item with id "07"' }, '$$07 does not match the key 7')
    assert.throws(() => applyPatch({ items: [{ id: -0 }, { id: 7 }] }, [['remove', '/items/$$7'], ['remove', '/items/$$-0']]), { reason: 'no item with id "-0"' }, '$$-0 does not match the key -0, whose string form is "0"')
  })

  it('upsert compares keys strictly: 7 and "7" are different items', () => {
    const doc = sameAsOneByOne({ items: [{ id: 'x' }, { id: '7', n: 1 }] }, [['add', '/items/$$x/n', 0], ['upsert', '/items/-', { id: 7, n: 2 }], ['upsert', '/items/0', { id: '7', n: 3 }]])
    assert.deepEqual(doc, { items: [{ id: 'x', n: 0 }, { id: '7', n: 3 }, { id: 7, n: 2 }] }, 'upsert of 7 inserts beside "7", and upsert of "7" replaces "7" only')
  })

  it('duplicate keys: the first item is the one selected, before and after changes', () => {
    const doc = sameAsOneByOne({ items: [{ id: 1, n: 0 }, { id: 2, n: 0 }, { id: 1, n: 1 }, { id: 3, n: 0 }] }, [
      ['replace', '/items/$$1/n', 5],
      ['replace', '/items/$$3/n', 5],
      ['remove', '/items/$$1'],
      ['replace', '/items/$$1/n', 6],
      ['upsert', '/items/0', { id: 3, n: 7 }],
      ['add', '/items/0', { id: 2, n: 8 }],
      ['replace', '/items/$$2/n', 9],
    ]) as { items: Item[] }
    assert.deepEqual(doc.items, [{ id: 2, n: 9 }, { id: 2, n: 0 }, { id: 1, n: 6 }, { id: 3, n: 7 }], 'each lookup of a duplicate key selected its first item')
  })

  it('items that are not keyed objects are skipped, whatever else the array holds', () => {
    const doc = { items: [null, 3, 'id', [7], { v: 1 }, { id: true }, { id: null }, { id: { a: 1 } }, { id: 7 }, { id: 'true' }] }
    const out = sameAsOneByOne(doc, [['add', '/items/$$7/v', 1], ['add', '/items/$$true/v', 2], ['add', '/items/$$null/v', 3], ['add', '/items/$$[object Object]/v', 4]]) as { items: unknown[] }
    assert.deepEqual(out.items.slice(5), [{ id: true, v: 2 }, { id: null, v: 3 }, { id: { a: 1 }, v: 4 }, { id: 7, v: 1 }, { id: 'true' }], 'each $$ reached the first keyed object whose key has that string form, past the items without a key')
  })

  it('a key the item inherits is no $$ match, but upsert sees it', () => {
    const proto = { id: 7 }
    const inherited = (): { items: object[] } => ({ items: [Object.assign(Object.create(proto) as object, { v: 0 }), { id: 7, v: 1 }] })
    const a = applyPatch(inherited(), [['replace', '/items/$$7/v', 2], ['replace', '/items/$$7/v', 3]])
    assert.deepEqual(a.items.map((item) => (item as Item)['v']), [0, 3], '$$7 skips the item that inherits id 7')
    const b = applyPatch(inherited(), [['replace', '/items/$$7/v', 2], ['upsert', '/items/-', { id: 7, v: 4 }]])
    assert.deepEqual(b.items, [{ id: 7, v: 4 }, { id: 7, v: 2 }], 'upsert of 7 replaces the item that inherits id 7')
  })

  it('uses options.key', () => {
    const doc = { items: [{ sku: 'a', id: 1 }, { sku: 'b', id: 0 }] }
    sameAsOneByOne(doc, [['replace', '/items/$$b/id', 5], ['upsert', '/items/0', { sku: 'c' }], ['replace', '/items/$$a/id', 6], ['add', '/items/$$c/id', 7]], 'sku')
  })

  it('rolls back everything after index-driven changes, identities included', () => {
    const doc = list(50)
    const items = doc.items
    const first = items[0]
    const before = JSON.stringify(doc)
    const ops: PatchOp[] = [
      ['replace', '/items/$$40/v', 1],
      ['upsert', '/items/0', { id: 'new', v: 0 }],
      ['remove', '/items/$$10'],
      ['limit', '/items', -30],
      ['upsert', '/items/-', { id: 45, v: 9 }],
      ['replace', '/items/$$45/id', 99],
      ['remove', '/items/$$0'],
    ]
    assert.throws(() => applyPatch(doc, ops), (error: unknown) => error instanceof PatchError && error.index === 6, 'the last op fails: $$0 was cut by limit')
    assert.equal(JSON.stringify(doc), before, 'the document is left as it was')
    assert.equal(doc.items, items, 'the items array is the same object')
    assert.equal(doc.items[0], first, 'the first item is the same object')
  })

  it('agrees with one call per op on generated lists and ops', () => {
    const random = seededRandom(42)
    const int = (n: number): number => Math.floor(random() * n)
    const keyOf = (): unknown => [int(30), String(int(30)), `k${int(30)}`][int(3)]
    let compared = 0
    for (let round = 0; round < 400; round++) {
      const doc = { items: Array.from({ length: int(25) }, () => ({ id: keyOf(), v: 0 })) as Item[] }
      const ops: PatchOp[] = []
      let current = structuredClone(doc)
      for (let n = 0; n < 30; n++) {
        const ids = current.items.map((item) => item['id'])
        const ref = ids.length > 0 && random() < 0.8 ? `$$${String(ids[int(ids.length)])}` : String(int(ids.length + 1))
        const candidates: PatchOp[] = [
          ['replace', `/items/${ref}/v`, n],
          ['remove', `/items/${ref}`],
          ['upsert', `/items/${['0', '-', ref][int(3)] as string}`, { id: keyOf(), v: n }],
          ['add', `/items/${['0', '-', ref][int(3)] as string}`, { id: keyOf(), v: n }],
          ['limit', '/items', [3, -3, 10, -10][int(4)] as number],
          ['replace', `/items/${ref}/id`, keyOf()],
          ['move', `/items/${['0', '-'][int(2)] as string}`, `/items/${ref}`],
        ]
        const op = candidates[int(candidates.length)] as PatchOp
        try {
          current = applyPatch(current, [op])
          ops.push(op)
        } catch {
          // An op that cannot apply here (a key the list no longer has) is left out.
        }
      }
      sameAsOneByOne(doc, ops)
      compared++
    }
    assert.equal(compared, 400, 'every round was compared')
  })
})

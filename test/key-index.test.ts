/**
 * The key lookups of one applyPatch call (`$$<key>` segments, `upsert`):
 * an index per array built only as far as lookups read, and kept right, or
 * dropped, as the array and its items change. Every answer is checked
 * against a plain scan of the array.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { findByKey, invalidate, splicing } from '../src/client/key-index.ts'
import type { KeyLookups } from '../src/client/key-index.ts'
import { seededRandom } from './helpers/random.ts'

const lookups = (key = 'id'): KeyLookups => ({ key, indexes: new Map() })
const items = (...ids: unknown[]): Array<Record<string, unknown>> => ids.map((id) => ({ id }))

/** The answer of a plain scan: `$$` compares own keys by string form, upsert strictly. */
function scan(array: unknown[], id: unknown, strict: boolean, key = 'id'): number {
  return array.findIndex((item) => typeof item === 'object' && item !== null && (strict ? (item as Record<string, unknown>)[key] === id : Object.hasOwn(item, key) && String((item as Record<string, unknown>)[key]) === id))
}

describe('findByKey', () => {
  it('reads the array only as far as the item it looks for', () => {
    const l = lookups()
    const array = items(...Array.from({ length: 1000 }, (_, i) => i))
    assert.equal(findByKey(l, array, '3', false), 3, 'found')
    assert.equal(l.indexes.get(array)?.end, 4, 'four items read, not a thousand')
    assert.equal(findByKey(l, array, '2', false), 2, 'an item already read')
    assert.equal(l.indexes.get(array)?.end, 4, 'is found without reading more')
  })

  it('matches `$$` segments by string form and upsert strictly', () => {
    const l = lookups()
    const array = items(7, 'a', '8')
    assert.equal(findByKey(l, array, '7', false), 0, '"7" names 7')
    assert.equal(findByKey(l, array, '07', false), -1, '"07" names nothing')
    assert.equal(findByKey(l, array, '8', false), 2, 'a string key')
    assert.equal(findByKey(l, array, 7, true), 0, 'upsert: 7 is 7')
    assert.equal(findByKey(l, array, '7', true), -1, 'upsert: "7" is not 7')
    assert.equal(findByKey(l, array, 8, true), -1, 'upsert: 8 is not "8"')
  })

  it('gives the first match when keys repeat or cannot be indexed, by a scan', () => {
    const inherited = Object.create({ id: 1 }) as Record<string, unknown>
    const arrays: Array<[string, unknown[], unknown, boolean]> = [
      ['a repeated key', items(1, 2, 2, 3), '2', false],
      ['a repeated key, the later one', items(1, 2, 2, 3), '3', false],
      ['NaN', items(Number.NaN, 5), '5', false],
      ['an explicit undefined', [{ id: undefined }, { id: 5 }], '5', false],
      ['a key that is an object', [{ id: {} }, { id: 5 }], '5', false],
      ['an inherited key', [inherited, { id: 1 }], '1', false],
      ['an inherited key, upsert', [inherited, { id: 1 }], 1, true],
      ['an array item with a key', [Object.assign([], { id: 1 }), { id: 1 }], '1', false],
      ['a scalar among items', [3, { id: 3 }], '3', false],
    ]
    for (const [what, array, id, strict] of arrays) {
      assert.equal(findByKey(lookups(), array, id, strict), scan(array, id, strict), what)
    }
  })

  it('uses the key it is given', () => {
    const array = [{ id: 1, slug: 'b' }, { id: 2, slug: 'a' }]
    assert.equal(findByKey(lookups('slug'), array, 'a', false), 1, 'by slug')
  })
})

describe('invalidate and splicing', () => {
  it('keep every answer right through random changes of the array and its items', () => {
    const random = seededRandom(21)
    const pick = (n: number): number => Math.floor(random() * n)
    for (let round = 0; round < 200; round++) {
      const l = lookups()
      const array: unknown[] = items(...Array.from({ length: 1 + pick(12) }, () => pick(8)))
      for (let step = 0; step < 30; step++) {
        const id = pick(10)
        const strict = random() < 0.5
        const wanted = strict ? id : String(id)
        assert.equal(findByKey(l, array, wanted, strict), scan(array, wanted, strict), `round ${round} step ${step}: ${JSON.stringify(array)} ${JSON.stringify(wanted)}`)
        const change = pick(4)
        const at = pick(array.length + 1)
        if (change === 0) {
          const item = { id: pick(10) }
          splicing(l, array, at, 0, item)
          array.splice(at, 0, item)
        } else if (change === 1 && array.length > 0) {
          const from = Math.min(at, array.length - 1)
          const count = Math.min(1 + pick(3), array.length - from)
          splicing(l, array, from, count)
          array.splice(from, count)
        } else if (change === 2 && at < array.length) {
          const old = array[at]
          const item = { id: pick(10) }
          array[at] = item
          invalidate(l, array as Record<number, unknown>, at, old, item)
        } else if (at < array.length) {
          const item = array[at] as Record<string, unknown>
          const old = item['id']
          item['id'] = pick(10)
          invalidate(l, item, 'id', old, item['id'])
        }
      }
    }
  })

  it('keep the index of an array whose item changed for one with the same key, and of one changed past what was read', () => {
    const l = lookups()
    const array: unknown[] = items(0, 1, 2, 3, 4, 5)
    findByKey(l, array, '2', false)
    const index = l.indexes.get(array)
    const old = array[1]
    array[1] = { id: 1, more: true }
    invalidate(l, array as Record<number, unknown>, 1, old, array[1])
    assert.equal(l.indexes.get(array), index, 'the same key: the index holds')
    splicing(l, array, 5, 1)
    array.splice(5, 1)
    assert.equal(l.indexes.get(array), index, 'past what was read: untouched')
    assert.equal(index?.end, 3, 'still three items read')
  })
})

/**
 * The changes of one applyPatch call to its document: path walking, the
 * changes themselves, the undo log that rolls them back in place, and the
 * copies made in immutable mode.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { insert, parent, remove, rollback, set, splice, startEdit, walk } from '../src/client/edit.ts'

/** The reason a step fails with (failures travel as strings inside applyPatch). */
function reason(step: () => unknown): unknown {
  try {
    step()
  } catch (thrown) {
    return thrown
  }
  return assert.fail('the step did not fail')
}

const doc = (): { a: { b: number[], c: string }, d: Array<{ id: number, v: number }>, e: number } => ({ a: { b: [1, 2, 3], c: 'x' }, d: [{ id: 1, v: 0 }, { id: 2, v: 0 }], e: 5 })

describe('edit', () => {
  it('walks paths through members, indexes and keys', () => {
    const e = startEdit(doc(), false, 'id')
    assert.equal(walk(e, ['a', 'c']), 'x' as unknown, 'a member')
    assert.equal(walk(e, ['a', 'b', '2']), 3 as unknown, 'an index')
    assert.deepEqual(walk(e, ['d', '$$2']), { id: 2, v: 0 }, 'a key')
    const [node, k] = parent(e, ['a', 'b', '-'], true)
    assert.deepEqual([node, k], [[1, 2, 3], 3], 'the end of an array, for an insert')
  })

  it('fails with the reason for a path that does not lead anywhere', () => {
    const e = startEdit(doc(), false, 'id')
    const table: Array<[string[], boolean, string]> = [
      [['x', 'y'], false, 'no member "x"'],
      [['a', 'b', '3'], false, 'index 3 is out of bounds (length 3)'],
      [['a', 'b', '4'], true, 'index 4 is out of bounds (length 3)'],
      [['a', 'b', '01'], false, '"01" is not an index'],
      [['a', 'b', '-'], false, '"-" is not an index'],
      [['d', '$$9'], false, 'no item with id "9"'],
      [['e', 'f'], true, 'no member "f" in number'],
    ]
    for (const [segments, forInsert, expected] of table) {
      assert.equal(reason(() => parent(e, segments, forInsert)), expected, segments.join('/'))
    }
    assert.equal(reason(() => remove(e, [])), 'cannot remove the root', 'the root')
  })

  it('in place, rolls every change back exactly, member order included', () => {
    const target = doc()
    const before = structuredClone(target)
    const order = Object.keys(target)
    const inner = target.a
    const e = startEdit(target, false, 'id')
    remove(e, ['a'])
    insert(e, ['a'], 'new')
    insert(e, ['z'], 1)
    set(e, ...parent(e, ['e'], false), 6)
    insert(e, ['d', '0'], { id: 3, v: 0 })
    remove(e, ['d', '$$2'])
    splice(e, walk(e, ['a'], true, 0)['d'] as unknown[], 0, 2)
    assert.notDeepEqual(target, before, 'the document changed')
    rollback(e)
    assert.deepEqual(target, before, 'every change undone')
    assert.deepEqual(Object.keys(target), order, 'members in their old order')
    assert.equal(target.a, inner, 'the same objects, not copies')
  })

  it('rolls back a splice of more items than a call takes arguments', () => {
    const target = { list: Array.from({ length: 200_000 }, (_, i) => i) }
    const e = startEdit(target, false, 'id')
    splice(e, target.list, 10, 199_980)
    assert.equal(target.list.length, 20, 'removed')
    rollback(e)
    assert.equal(target.list.length, 200_000, 'all back')
    assert.equal(target.list[150_000], 150_000, 'in their places')
  })

  it('in immutable mode, leaves the target alone, copies each changed node once and shares the rest', () => {
    const target = doc()
    const before = structuredClone(target)
    const e = startEdit(target, true, 'id')
    insert(e, ['a', 'b', '-'], 4)
    insert(e, ['a', 'b', '0'], 0)
    set(e, ...parent(e, ['a', 'c'], false), 'y')
    const result = e.doc as ReturnType<typeof doc>
    assert.deepEqual(target, before, 'the target is untouched')
    assert.deepEqual(result.a, { b: [0, 1, 2, 3, 4], c: 'y' }, 'the result has every change')
    assert.notEqual(result, target, 'the root is a copy')
    assert.notEqual(result.a, target.a, 'and so is each node on a changed path')
    assert.equal(result.d, target.d, 'an untouched branch is shared')
    assert.equal(e.fresh.size, 3, 'three copies (root, a, a.b), however many changes went through them')
    assert.deepEqual(e.undo, [], 'nothing to undo: the target never changed')
  })

  it('replaces the whole document on an insert at the root', () => {
    const e = startEdit(doc(), false, 'id')
    insert(e, [], [1])
    assert.deepEqual(e.doc, [1], 'the new document')
  })
})

/**
 * The Redis broker's process-local cache of delivered messages: complete
 * from a position, bounded per topic and in bytes over all topics.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LocalHistory } from '../src/adapters/redis/local-history.ts'

const ids = (frames: readonly { id: string }[] | undefined): string[] | undefined => frames?.map((frame) => frame.id)

function fill(history: LocalHistory, key: string, seqs: readonly number[], payload = 'x'): void {
  for (const seq of seqs) history.append(key, seq, `e-${seq}`, payload)
}

describe('LocalHistory', () => {
  it('answers the frames after a position it is complete from, and nothing for one before', () => {
    const history = new LocalHistory(10, 1 << 20)
    history.start('a', 100)
    fill(history, 'a', [103, 107, 110])
    assert.deepEqual(ids(history.after('a', 100)), ['e-103', 'e-107', 'e-110'])
    assert.deepEqual(ids(history.after('a', 105)), ['e-107', 'e-110'])
    assert.deepEqual(ids(history.after('a', 107)), ['e-110'])
    assert.deepEqual(ids(history.after('a', 200)), [])
    assert.equal(history.after('a', 99), undefined)
    assert.equal(history.after('b', 100), undefined)
    assert.deepEqual(history.after('a', 106)?.[0], { id: 'e-107', payload: 'x' })
  })

  it('keeps nothing for a topic it was not started for', () => {
    const history = new LocalHistory(10, 1 << 20)
    fill(history, 'a', [1, 2])
    assert.equal(history.has('a'), false)
    assert.equal(history.bytes, 0)
  })

  it('keeps at most maxFrames per topic, moving the position it is complete from up', () => {
    const history = new LocalHistory(3, 1 << 20)
    history.start('a', 0)
    fill(history, 'a', [1, 2, 3, 4, 5])
    assert.equal(history.after('a', 1), undefined)
    assert.deepEqual(ids(history.after('a', 2)), ['e-3', 'e-4', 'e-5'])
  })

  it('stays under maxBytes over all topics, evicting the oldest frames first whatever their topic', () => {
    const payload = 'p'.repeat(1000)
    const history = new LocalHistory(1000, 10_000)
    history.start('a', 0)
    history.start('b', 0)
    for (let seq = 1; seq <= 40; seq++) {
      history.append(seq % 2 === 0 ? 'b' : 'a', seq, `e-${seq}`, payload)
      assert.ok(history.bytes <= 10_000, `${history.bytes} bytes kept`)
    }
    // 2 * 1004 + 96 bytes a frame: four fit.
    assert.deepEqual(ids(history.after('a', 36)), ['e-37', 'e-39'])
    assert.deepEqual(ids(history.after('b', 36)), ['e-38', 'e-40'])
    // a's last evicted frame is 35, b's 36.
    assert.deepEqual(ids(history.after('a', 35)), ['e-37', 'e-39'])
    assert.equal(history.after('a', 34), undefined)
    assert.equal(history.after('b', 35), undefined)
  })

  it('gives back the bytes of a topic it stops or restarts, and of all on clear', () => {
    const history = new LocalHistory(10, 1 << 20)
    history.start('a', 0)
    history.start('b', 0)
    fill(history, 'a', [1, 2])
    fill(history, 'b', [3])
    const bytes = history.bytes
    history.stop('a')
    assert.equal(history.bytes, bytes * 1 / 3)
    assert.equal(history.has('a'), false)
    history.start('b', 10)
    assert.equal(history.bytes, 0)
    assert.deepEqual(ids(history.after('b', 10)), [])
    fill(history, 'b', [11])
    history.clear()
    assert.equal(history.bytes, 0)
    assert.equal(history.has('b'), false)
  })

  it('keeps nothing with maxFrames 0', () => {
    const history = new LocalHistory(0, 1 << 20)
    history.start('a', 0)
    fill(history, 'a', [1])
    assert.equal(history.has('a'), false)
    assert.equal(history.after('a', 0), undefined)
  })
})

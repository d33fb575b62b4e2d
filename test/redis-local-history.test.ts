/**
 * The Redis broker's process-local cache of delivered messages: complete
 * from a position, bounded per topic and in bytes over all topics, and
 * holding (gc-measured) no more heap than what it keeps, with many topics
 * of a few messages as with a few topics of many.
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
    assert.deepEqual(ids(history.after('a', 100)), ['e-103', 'e-107', 'e-110'], 'after the start position: every frame')
    assert.deepEqual(ids(history.after('a', 105)), ['e-107', 'e-110'], 'after a position between frames: the later ones')
    assert.deepEqual(ids(history.after('a', 107)), ['e-110'], 'after a frame\'s own position: the ones after it')
    assert.deepEqual(ids(history.after('a', 200)), [], 'after a position past the last frame: none, and complete')
    assert.equal(history.after('a', 99), undefined, 'before the start position: no answer')
    assert.equal(history.after('b', 100), undefined, 'a topic not started: no answer')
    assert.deepEqual(history.after('a', 106)?.[0], { id: 'e-107', payload: 'x' }, 'a frame carries its id and payload')
  })

  it('keeps nothing for a topic it was not started for', () => {
    const history = new LocalHistory(10, 1 << 20)
    fill(history, 'a', [1, 2])
    assert.equal(history.has('a'), false, 'no history for a topic never started')
    assert.equal(history.bytes, 0, 'no bytes counted for its frames')
  })

  it('keeps at most maxFrames per topic, moving the position it is complete from up', () => {
    const history = new LocalHistory(3, 1 << 20)
    history.start('a', 0)
    fill(history, 'a', [1, 2, 3, 4, 5])
    assert.equal(history.after('a', 1), undefined, 'no answer from before the oldest of the 3 frames kept')
    assert.deepEqual(ids(history.after('a', 2)), ['e-3', 'e-4', 'e-5'], 'the last 3 frames, complete from 2')
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
    assert.deepEqual(ids(history.after('a', 36)), ['e-37', 'e-39'], 'a keeps its frames among the newest four')
    assert.deepEqual(ids(history.after('b', 36)), ['e-38', 'e-40'], 'b keeps its frames among the newest four')
    // a's last evicted frame is 35, b's 36.
    assert.deepEqual(ids(history.after('a', 35)), ['e-37', 'e-39'], 'a is complete from its last evicted frame, 35')
    assert.equal(history.after('a', 34), undefined, 'a cannot answer from before 35')
    assert.equal(history.after('b', 35), undefined, 'b cannot answer from before its last evicted frame, 36')
  })

  it('gives back the bytes of a topic it stops or restarts, and of all on clear', () => {
    const history = new LocalHistory(10, 1 << 20)
    history.start('a', 0)
    history.start('b', 0)
    fill(history, 'a', [1, 2])
    fill(history, 'b', [3])
    const bytes = history.bytes
    history.stop('a')
    assert.equal(history.bytes, bytes * 1 / 3, `stopping a gives back its 2 frames of 3: ${history.bytes} of ${bytes} bytes left`)
    assert.equal(history.has('a'), false, 'a stopped has no history')
    history.start('b', 10)
    assert.equal(history.bytes, 0, 'restarting b gives back its frame')
    assert.deepEqual(ids(history.after('b', 10)), [], 'b restarted is complete from its new position, with no frame')
    fill(history, 'b', [11])
    history.clear()
    assert.equal(history.bytes, 0, 'clear gives back every byte')
    assert.equal(history.has('b'), false, 'clear drops every topic')
  })

  it('keeps nothing with maxFrames 0', () => {
    const history = new LocalHistory(0, 1 << 20)
    history.start('a', 0)
    fill(history, 'a', [1])
    assert.equal(history.has('a'), false, 'no history is kept with maxFrames 0')
    assert.equal(history.after('a', 0), undefined, 'and no answer from its start position')
  })
})

const gc = globalThis.gc as (() => void) | undefined
const MiB = 1024 * 1024
/**
 * Slack over the bound: the records of the topics (a few hundred bytes
 * each, not counted by the bound), and what the test runner and V8
 * allocate between the readings. A kept frame costs less than the history
 * counts for it (a one-byte string at two bytes a character), so a history
 * that holds only what it keeps stays under the bound by itself.
 */
const SLACK = 1.5 * MiB

/** The heap after full collections (npm test runs node with --expose-gc). */
function heapAfterGc(): number {
  assert.ok(gc, 'run with --expose-gc: the heap is measured after a full gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** A fresh, flat string of `size` characters per message, as a Redis client makes one. */
function payloadOf(size: number, seq: number): string {
  return String(seq).padStart(size, 'x')
}

/** The heap a history holds after `run`, gc'd. */
function heapHeldBy(maxFrames: number, maxBytes: number, run: (history: LocalHistory) => void): number {
  const before = heapAfterGc()
  const history = new LocalHistory(maxFrames, maxBytes)
  run(history)
  const held = heapAfterGc() - before
  assert.ok(history.bytes <= maxBytes, `the history counts ${history.bytes} bytes, within its bound`)
  return held
}

describe('LocalHistory memory (gc-measured heap)', () => {
    // bound: the most the history may keep, counted as it counts: its byte
  // budget, or less where the per-topic count binds first.
  const shapes: Array<{ name: string, maxFrames: number, maxBytes: number, bound: number, run: (history: LocalHistory) => void }> = [
    {
      name: '3000 topics of 8 messages of 2 KB, bound by bytes',
      maxFrames: 1000,
      maxBytes: 2 * MiB,
      bound: 2 * MiB,
      run(history) {
        let seq = 0
        for (let topic = 0; topic < 3000; topic++) history.start(`user:${topic}`, 0)
        for (let round = 0; round < 8; round++) {
          for (let topic = 0; topic < 3000; topic++) history.append(`user:${topic}`, ++seq, `e-${seq}`, payloadOf(2000, seq))
        }
      },
    },
    {
      name: '4 topics of 5000 messages of 1 KB, bound by bytes',
      maxFrames: 100_000,
      maxBytes: 2 * MiB,
      bound: 2 * MiB,
      run(history) {
        let seq = 0
        for (let topic = 0; topic < 4; topic++) history.start(`feed:${topic}`, 0)
        for (let message = 0; message < 5000; message++) {
          for (let topic = 0; topic < 4; topic++) history.append(`feed:${topic}`, ++seq, `e-${seq}`, payloadOf(1000, seq))
        }
      },
    },
    {
      name: '8 topics of 2000 messages of 4 KB, bound by the per-topic count',
      maxFrames: 20,
      maxBytes: 64 * MiB,
      // 20 frames of 8 topics, each a 4 KB payload and an id of up to 7 characters.
      bound: 8 * 20 * (2 * (4000 + 7) + 96),
      run(history) {
        let seq = 0
        for (let topic = 0; topic < 8; topic++) history.start(`feed:${topic}`, 0)
        for (let message = 0; message < 2000; message++) {
          for (let topic = 0; topic < 8; topic++) history.append(`feed:${topic}`, ++seq, `e-${seq}`, payloadOf(4000, seq))
        }
      },
    },
    {
      name: '3000 topics of 8 messages of 2 KB, each stopped',
      maxFrames: 1000,
      maxBytes: 64 * MiB,
      bound: 0,
      run(history) {
        let seq = 0
        for (let topic = 0; topic < 3000; topic++) {
          history.start(`user:${topic}`, 0)
          for (let message = 0; message < 8; message++) history.append(`user:${topic}`, ++seq, `e-${seq}`, payloadOf(2000, seq))
          history.stop(`user:${topic}`)
        }
        assert.equal(history.bytes, 0, 'nothing counted once every topic is stopped')
      },
    },
  ]
  for (const shape of shapes) {
    it(`holds no more than it keeps: ${shape.name}`, { timeout: 60_000 }, () => {
      const held = heapHeldBy(shape.maxFrames, shape.maxBytes, shape.run)
      assert.ok(held <= shape.bound + SLACK, `the history holds ${(held / MiB).toFixed(1)} MiB of heap for a bound of ${(shape.bound / MiB).toFixed(1)} MiB plus ${SLACK / MiB} MiB of slack`)
    })
  }
})

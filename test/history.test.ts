/**
 * The in-process broker's history: bounded per topic by count, over all
 * topics by bytes (oldest first, whatever the topic), and by age; exact for
 * quiet topics however busy the others are.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { entryBytes, History } from '../src/broker/history.ts'
import { createBroker, publish } from '../src/index.ts'

const gc = globalThis.gc as (() => void) | undefined

/** A history on a clock the test moves. */
function historyAt(maxPerTopic: number, maxBytes: number, maxAgeMs: number): { history: History; clock: { now: number } } {
  const clock = { now: 0 }
  return { history: new History(maxPerTopic, maxBytes, maxAgeMs, () => clock.now), clock }
}

function seqs(entries: { seq: number }[] | undefined): number[] | undefined {
  return entries?.map((entry) => entry.seq)
}

describe('History', () => {
  it('answers the messages after a position, and undefined once one of them is gone (per-topic count)', () => {
    const { history } = historyAt(2, 1e9, 1e9)
    history.push('a', 1, 'one')
    history.push('a', 2, 'two')
    assert.deepEqual(seqs(history.after('a', 0)), [1, 2])
    history.push('a', 3, 'three')
    assert.deepEqual(seqs(history.after('a', 1)), [2, 3])
    assert.equal(history.after('a', 0), undefined, 'message 1 was dropped')
  })

  it('bounds bytes over all topics together, dropping the oldest message first whatever its topic', () => {
    const payload = 'x'.repeat(100)
    const { history } = historyAt(1000, entryBytes(payload) * 3, 1e9)
    history.push('busy', 1, payload)
    history.push('quiet', 2, payload)
    history.push('busy', 3, payload)
    history.push('busy', 4, payload)
    assert.equal(history.bytes, entryBytes(payload) * 3)
    assert.equal(history.after('busy', 0), undefined, 'busy 1, the oldest, went first')
    assert.deepEqual(seqs(history.after('quiet', 0)), [2])
    history.push('busy', 5, payload)
    assert.equal(history.after('quiet', 0), undefined)
    assert.deepEqual(seqs(history.after('quiet', 2)), [], 'complete after its last message')
  })

  it('keeps nothing of a payload larger than the byte bound, and is complete only after it', () => {
    const { history } = historyAt(1000, 200, 1e9)
    history.push('a', 1, 'small')
    history.push('a', 2, 'y'.repeat(500))
    assert.equal(history.after('a', 0), undefined)
    assert.equal(history.after('a', 1), undefined)
    assert.deepEqual(seqs(history.after('a', 2)), [])
  })

  it('drops messages older than the age bound', () => {
    const { history, clock } = historyAt(1000, 1e9, 1000)
    history.push('a', 1, 'one')
    clock.now = 600
    history.push('a', 2, 'two')
    clock.now = 1000
    assert.equal(history.after('a', 0), undefined, 'message 1 is 1000 ms old')
    assert.deepEqual(seqs(history.after('a', 1)), [2])
  })

  it('stays exact for a quiet topic with listeners, however long and whatever else is forgotten', () => {
    const { history, clock } = historyAt(1000, 1e9, 1000)
    history.watch('quiet')
    history.push('other', 5, 'x')
    clock.now = 10_000
    history.push('other2', 6, 'x')
    clock.now = 20_000
    history.push('other3', 7, 'x')
    // 'other' and 'other2' were forgotten: an unknown topic is complete only after position 6 now.
    assert.equal(history.after('never', 5), undefined)
    assert.deepEqual(history.after('never', 6), [])
    // The watched topic was never forgotten: nothing was published on it since 0.
    assert.deepEqual(history.after('quiet', 0), [])
    history.unwatch('quiet')
    clock.now = 30_000
    history.push('other4', 8, 'x')
    assert.equal(history.after('quiet', 0), undefined, 'unwatched, it is forgotten like any topic')
  })

  it('keeps its queues proportional to what it keeps (no growth from dropped slots)', () => {
    const { history } = historyAt(1, 1e9, 1e9)
    // One quiet message holds the head of the queue while a busy topic churns.
    history.push('quiet', 1, 'q')
    for (let seq = 2; seq < 200_000; seq++) history.push('busy', seq, 'b')
    assert.deepEqual(seqs(history.after('quiet', 0)), [1])
    assert.deepEqual(seqs(history.after('busy', 199_998)), [199_999])
    assert.equal(history.bytes, entryBytes('q') + entryBytes('b'))
  })
})

describe('createBroker history', () => {
  it('validates its options, naming them', () => {
    assert.throws(() => createBroker({ history: -1 }), (error: unknown) => error instanceof RangeError && /"history"/.test(error.message))
    assert.throws(() => createBroker({ historyBytes: '1mb' as never }), (error: unknown) => error instanceof TypeError && /"historyBytes"/.test(error.message))
    assert.throws(() => createBroker({ historyMs: 1.5 }), RangeError)
    assert.throws(() => createBroker({ histroy: 1 } as never), /unknown option "histroy"/)
    assert.throws(() => createBroker({ onError: 1 as never }), TypeError)
    assert.throws(() => createBroker(null as never), TypeError)
  })

  it('replays exactly, and refuses malformed, foreign and future ids', async () => {
    const broker = createBroker()
    const start = await broker.position?.('t') as string
    const first = await publish(broker, 't', [['replace', '/n', 1]])
    await publish(broker, 'u', [['replace', '/n', 2]])
    const third = await publish(broker, 't', [['replace', '/n', 3]])
    assert.deepEqual(broker.replay?.('t', start), { frames: [{ id: first, payload: '[["replace","/n",1]]' }, { id: third, payload: '[["replace","/n",3]]' }] })
    assert.deepEqual(broker.replay?.('t', third), { frames: [] })
    assert.deepEqual(broker.replay?.('t', 'junk'), { reset: 'malformed-id' })
    assert.deepEqual(broker.replay?.('t', `zz-1`), { reset: 'foreign-id' })
    assert.deepEqual(broker.replay?.('t', `${start.split('-')[0]}-999`), { reset: 'foreign-id' })
  })

  it('stays under historyBytes with 5000 topics publishing steadily', { timeout: 60_000 }, async () => {
    assert.ok(gc, 'run with --expose-gc')
    const historyBytes = 4 * 1024 * 1024
    const broker = createBroker({ historyBytes })
    const payload = 'p'.repeat(1000)
    const publishAll = async (): Promise<void> => {
      for (let topic = 0; topic < 5000; topic++) await broker.publish(`user:${topic}`, `["${payload}"]`)
    }
    await publishAll()
    gc()
    const before = process.memoryUsage().heapUsed
    // 20 rounds: 100 MB published, about 4 MB of it can be kept.
    for (let round = 0; round < 20; round++) await publishAll()
    gc()
    const grown = process.memoryUsage().heapUsed - before
    assert.ok(grown < historyBytes, `heap grew by ${grown} bytes while the history holds at most ${historyBytes}`)
  })
})

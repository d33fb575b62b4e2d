/**
 * The in-process broker's history: bounded per topic by count, over all
 * topics by bytes (oldest first, whatever the topic), and by age; exact for
 * quiet topics however busy the others are.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { entryBytes, History } from '../src/broker/history.ts'
import { createBroker, publish, type Broker, type BrokerOptions } from '../src/index.ts'

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
    assert.deepEqual(seqs(history.after('a', 0)), [1, 2], 'both messages of a are kept')
    history.push('a', 3, 'three')
    assert.deepEqual(seqs(history.after('a', 1)), [2, 3], 'the per-topic bound of 2 dropped message 1')
    assert.equal(history.after('a', 0), undefined, 'message 1 was dropped')
  })

  it('bounds bytes over all topics together, dropping the oldest message first whatever its topic', () => {
    const payload = 'x'.repeat(100)
    const { history } = historyAt(1000, entryBytes(payload) * 3, 1e9)
    history.push('busy', 1, payload)
    history.push('quiet', 2, payload)
    history.push('busy', 3, payload)
    history.push('busy', 4, payload)
    assert.equal(history.bytes, entryBytes(payload) * 3, 'three messages fill the byte bound exactly')
    assert.equal(history.after('busy', 0), undefined, 'busy 1, the oldest, went first')
    assert.deepEqual(seqs(history.after('quiet', 0)), [2], 'quiet\'s message 2 is still kept')
    history.push('busy', 5, payload)
    assert.equal(history.after('quiet', 0), undefined, 'quiet\'s message 2 went as the oldest')
    assert.deepEqual(seqs(history.after('quiet', 2)), [], 'complete after its last message')
  })

  it('keeps nothing of a payload larger than the byte bound, and is complete only after it', () => {
    const { history } = historyAt(1000, 200, 1e9)
    history.push('a', 1, 'small')
    history.push('a', 2, 'y'.repeat(500))
    assert.equal(history.after('a', 0), undefined, 'message 1 went with the payload that could not be kept')
    assert.equal(history.after('a', 1), undefined, 'message 2 was not kept')
    assert.deepEqual(seqs(history.after('a', 2)), [], 'complete after the message that could not be kept')
  })

  it('drops messages older than the age bound', () => {
    const { history, clock } = historyAt(1000, 1e9, 1000)
    history.push('a', 1, 'one')
    clock.now = 600
    history.push('a', 2, 'two')
    clock.now = 1000
    assert.equal(history.after('a', 0), undefined, 'message 1 is 1000 ms old')
    assert.deepEqual(seqs(history.after('a', 1)), [2], 'message 2 is 400 ms old: kept')
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
    assert.equal(history.after('never', 5), undefined, 'an unknown topic misses what the forgotten topics had up to 6')
    assert.deepEqual(history.after('never', 6), [], 'an unknown topic is complete after 6')
    // The watched topic was never forgotten: nothing was published on it since 0.
    assert.deepEqual(history.after('quiet', 0), [], 'the watched topic is known and complete')
    history.unwatch('quiet')
    clock.now = 30_000
    history.push('other4', 8, 'x')
    assert.equal(history.after('quiet', 0), undefined, 'unwatched, it is forgotten like any topic')
  })

  it('remembers an emptied topic for maxAgeMs after its last publish, counting a publish that kept nothing', () => {
    const { history, clock } = historyAt(1000, 300, 1000)
    history.push('a', 1, 'y'.repeat(500))
    clock.now = 600
    // Too large again: still nothing kept, but published at 600.
    history.push('a', 2, 'y'.repeat(500))
    clock.now = 1000
    history.push('b', 3, 'x')
    assert.deepEqual(history.after('a', 2), [], 'a, last published at 600, is still known at 1000')
    assert.equal(history.after('a', 1), undefined, 'message 2 of a was not kept')
    assert.deepEqual(history.after('never', 0), [], 'nothing forgotten yet')
    clock.now = 1600
    history.push('b', 4, 'x')
    assert.equal(history.after('never', 1), undefined, 'a is forgotten at 1600, up to its position 2')
    assert.deepEqual(history.after('never', 2), [], 'an unknown topic is complete after the forgotten position 2')
    assert.deepEqual(seqs(history.after('b', 2)), [3, 4], 'b kept its messages')
  })

  it('forgets an emptied topic maxAgeMs after its last publish, counting one after it emptied, and never a watched one', () => {
    const { history, clock } = historyAt(1000, 2 * entryBytes('x'), 1000)
    history.push('a', 1, 'x')
    clock.now = 100
    history.push('w', 2, 'x')
    clock.now = 200
    history.push('o', 3, 'x') // the byte bound empties a
    clock.now = 300
    history.push('a', 4, 'x') // a gets a message again; the byte bound empties w
    history.watch('w')
    clock.now = 400
    history.push('o', 5, 'x')
    clock.now = 450
    history.push('o', 6, 'x') // a is emptied again, last published at 300
    clock.now = 1100
    history.push('o', 7, 'x')
    assert.deepEqual(history.after('a', 4), [], 'a, last published at 300, is still known at 1100')
    assert.equal(history.after('a', 3), undefined, 'message 4 of a is gone')
    assert.deepEqual(history.after('never', 0), [], 'nothing is forgotten yet')
    clock.now = 1300
    history.push('o', 8, 'x')
    assert.equal(history.after('never', 3), undefined, 'a is forgotten at 1300, up to its position 4')
    assert.deepEqual(history.after('never', 4), [], 'an unknown topic is complete after the forgotten position 4')
    clock.now = 5000
    history.push('o', 9, 'x')
    assert.equal(history.after('never', 7), undefined, 'o was emptied by age and forgotten up to 8')
    assert.deepEqual(history.after('w', 2), [], 'w is watched: still known, complete after its message 2')
    assert.equal(history.after('w', 1), undefined, 'message 2 of w is gone')
  })

  it('holds nothing of a forgotten topic (gc-measured)', () => {
    const { history, clock } = historyAt(0, 1e9, 1000)
    const before = heapAfterGc()
    // 1000 topics with 8 KB names, each emptied at once (nothing kept per topic).
    for (let topic = 0; topic < 1000; topic++) history.push(payloadOf(8000, topic), topic + 1, 'x')
    const known = heapAfterGc() - before
    clock.now = 1000
    history.push('last', 1001, 'x')
    const held = heapAfterGc() - before
    assert.ok(known > 4 * MiB, `the 1000 known topics hold their names: ${(known / MiB).toFixed(1)} MiB`)
    assert.ok(held < MiB / 4, `forgotten topics hold nothing, but ${(held / MiB).toFixed(2)} MiB stayed`)
    assert.equal(history.after('any', 999), undefined, 'forgotten up to 1000')
    assert.deepEqual(history.after('any', 1000), [], 'complete after the forgotten position 1000')
  })

  it('keeps its queues proportional to what it keeps (no growth from dropped slots)', () => {
    const { history } = historyAt(1, 1e9, 1e9)
    // One quiet message holds the head of the queue while a busy topic churns.
    history.push('quiet', 1, 'q')
    for (let seq = 2; seq < 200_000; seq++) history.push('busy', seq, 'b')
    assert.deepEqual(seqs(history.after('quiet', 0)), [1], 'the quiet message is still kept')
    assert.deepEqual(seqs(history.after('busy', 199_998)), [199_999], 'the busy topic keeps its newest message only')
    assert.equal(history.bytes, entryBytes('q') + entryBytes('b'), 'the byte count is that of the two kept messages')
  })
})

describe('createBroker history', () => {
  it('validates its options, naming them', () => {
    assert.throws(() => createBroker({ history: -1 }), (error: unknown) => error instanceof RangeError && /"history"/.test(error.message), 'history -1 is a RangeError naming the option')
    assert.throws(() => createBroker({ historyBytes: '1mb' as never }), (error: unknown) => error instanceof TypeError && /"historyBytes"/.test(error.message), 'a string historyBytes is a TypeError naming the option')
    assert.throws(() => createBroker({ historyMs: 1.5 }), RangeError, 'a fractional historyMs is a RangeError')
    assert.throws(() => createBroker({ histroy: 1 } as never), /unknown option "histroy"/, 'a misspelt option is named')
    assert.throws(() => createBroker({ onError: 1 as never }), TypeError, 'onError must be a function')
    assert.throws(() => createBroker(null as never), TypeError, 'options must be an object')
  })

  it('replays exactly, and refuses malformed, foreign and future ids', async () => {
    const broker = createBroker()
    const start = await broker.position?.('t') as string
    const first = await publish(broker, 't', [['replace', '/n', 1]])
    await publish(broker, 'u', [['replace', '/n', 2]])
    const third = await publish(broker, 't', [['replace', '/n', 3]])
    assert.deepEqual(broker.replay?.('t', start), { frames: [{ id: first, payload: '[["replace","/n",1]]' }, { id: third, payload: '[["replace","/n",3]]' }] }, 'both messages of t after the start, in order')
    assert.deepEqual(broker.replay?.('t', third), { frames: [] }, 'nothing after the newest message')
    assert.deepEqual(broker.replay?.('t', 'junk'), { reset: 'malformed-id' }, 'a malformed id')
    assert.deepEqual(broker.replay?.('t', `zz-1`), { reset: 'foreign-id' }, 'an id of another epoch')
    assert.deepEqual(broker.replay?.('t', `${start.split('-')[0]}-999`), { reset: 'foreign-id' }, 'an id beyond anything this broker issued')
  })
})

/** The heap after full collections (npm test runs node with --expose-gc). */
function heapAfterGc(): number {
  assert.ok(gc, 'run with --expose-gc: the heap is measured after a full gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * Publishes about `size` characters on `topic`, without waiting, in ops of
 * about 250 characters built as publish builds them: a fresh string per
 * message, made by concatenation and JSON.stringify (so a rope in V8, which
 * the history must not keep as one). Not through publish() itself, whose
 * validation would make the test slow.
 */
function publishSized(broker: Broker, topic: string, size: number, seq: number): void {
  void broker.publish(topic, payloadOf(size, seq))
}

function payloadOf(size: number, seq: number): string {
  let json = '['
  for (let at = 0; at < size; at += 250) json += (at === 0 ? '' : ',') + JSON.stringify(['replace', `/items/${at}`, { seq, text: FILLER }])
  return json + ']'
}

const FILLER = 'x'.repeat(200)

/** The heap that a broker made with `options` holds after `run`, gc'd. */
function heapHeldBy(options: BrokerOptions, run: (broker: Broker) => void): number {
  const before = heapAfterGc()
  const broker = createBroker(options)
  run(broker)
  const held = heapAfterGc() - before
  assert.ok(broker.position?.('any'), 'the broker stays alive through the measurement')
  return held
}

function noop(): void {}

interface HeapShape {
  readonly name: string
  readonly options: BrokerOptions
  /** The most the history may keep, counted by entryBytes: the budget, or less where the per-topic count binds first. */
  readonly bound: number
  readonly run: (broker: Broker) => void
}

const MiB = 1024 * 1024
/**
 * Slack over the bound: the heap is read after a full gc, but the test
 * runner and V8 allocate a little of their own between the readings. A kept
 * entry really costs less than entryBytes counts for it, so a history that
 * holds only what it keeps stays under the bound by itself.
 */
const SLACK = 1.5 * MiB

const heapShapes: HeapShape[] = [
  {
    // Issue 20, first shape: per-user topics, each with a listener (+66 MiB before the fix).
    name: '1000 topics with a listener, 60 messages of 1 KB each',
    options: { historyBytes: 4 * MiB },
    bound: 4 * MiB,
    run(broker) {
      let seq = 0
      for (let topic = 0; topic < 1000; topic++) broker.subscribe(`user:${topic}`, noop)
      for (let round = 0; round < 60; round++) {
        for (let topic = 0; topic < 1000; topic++) publishSized(broker, `user:${topic}`, 1000, ++seq)
      }
    },
  },
  {
    // Issue 20, second shape: quiet topics pushed out by a chatty one (+35 MiB before the fix).
    name: '300 quiet topics of 150 small messages, one chatty topic of 2.5 KB messages',
    options: { historyBytes: 4 * MiB },
    bound: 4 * MiB,
    run(broker) {
      let seq = 0
      for (let round = 0; round < 150; round++) {
        for (let topic = 0; topic < 300; topic++) publishSized(broker, `quiet:${topic}`, 400, ++seq)
        for (let message = 0; message < 20; message++) publishSized(broker, 'chatty', 2500, ++seq)
      }
    },
  },
  {
    name: '4 topics of 5000 messages of 1 KB, bound by bytes',
    options: { history: 100_000, historyBytes: 4 * MiB },
    bound: 4 * MiB,
    run(broker) {
      let seq = 0
      for (let message = 0; message < 5000; message++) {
        for (let topic = 0; topic < 4; topic++) publishSized(broker, `feed:${topic}`, 1000, ++seq)
      }
    },
  },
  {
    name: '8 topics of 500 messages of 4 KB, bound by the per-topic count',
    options: { history: 20, historyBytes: 64 * MiB },
    bound: 8 * 20 * entryBytes(payloadOf(4000, 4000)),
    run(broker) {
      let seq = 0
      for (let message = 0; message < 500; message++) {
        for (let topic = 0; topic < 8; topic++) publishSized(broker, `feed:${topic}`, 4000, ++seq)
      }
    },
  },
]

describe('createBroker history memory (gc-measured heap)', () => {
  for (const shape of heapShapes) {
    it(`holds no more than it keeps: ${shape.name}`, { timeout: 60_000 }, () => {
      // The same topics and listeners without history: what the rest of the broker holds.
      const baseline = heapHeldBy({ ...shape.options, history: 0 }, shape.run)
      const held = heapHeldBy(shape.options, shape.run)
      const history = held - baseline
      assert.ok(
        history <= shape.bound + SLACK,
        `the history holds ${(history / MiB).toFixed(1)} MiB of heap (${(held / MiB).toFixed(1)} MiB with it, ${(baseline / MiB).toFixed(1)} without) for a bound of ${(shape.bound / MiB).toFixed(1)} MiB plus ${SLACK / MiB} MiB of slack`,
      )
    })
  }
})

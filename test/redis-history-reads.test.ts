/**
 * The history capability of patchwire/redis, `position` and `replay`: a
 * replay answered from the process's own cache when it reaches back far
 * enough, else from Redis with identical replays sharing one read; the
 * id judged against the history Redis holds; and nothing settled before
 * the messages up to its position were delivered. Reads, the feed and the
 * cache are stand-ins; the same over a real Redis is in redis.test.ts and
 * redis-barrier.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HistoryReads } from '../src/adapters/redis/history-reads.ts'
import type { TopicAnswer } from '../src/adapters/redis/reader.ts'
import type { Entry, Known } from '../src/adapters/redis/scripts.ts'
import type { Topic } from '../src/adapters/redis/topic.ts'
import type { HistoryFrame, ReplayResult } from '../src/broker/broker.ts'

interface Read {
  readonly topic: string
  readonly after: number | undefined
  resolve(answer: TopicAnswer): void
}

function setup(): {
  reads: HistoryReads
  asked: Read[]
  delivered: number[]
  observed: Array<[string, number]>
  topics: Map<string, Topic>
  cache: Map<string, HistoryFrame[]>
  state: { known: Known, current: boolean }
} {
  const asked: Read[] = []
  const delivered: number[] = []
  const observed: Array<[string, number]> = []
  const topics = new Map<string, Topic>()
  const cache = new Map<string, HistoryFrame[]>()
  const state = { known: { epoch: 'e', seen: 100 } as Known, current: true }
  const reads = new HistoryReads({
    topics,
    channelOf: (topic) => `p:${topic}`,
    feed: {
      get known() { return state.known },
      isCurrent: () => state.current,
      observe: (epoch, position) => { observed.push([epoch, position]) },
      delivered: async (position) => { delivered.push(position) },
    },
    history: { after: (channel) => cache.get(channel) },
    read: (topic, after) => new Promise((resolve) => { asked.push({ topic, after, resolve }) }),
  })
  return { reads, asked, delivered, observed, topics, cache, state }
}

const subscribed = (name: string): Topic => ({ name, channel: `p:${name}`, subscriptions: new Set(), ready: undefined, status: 'live', last: 100 })
const entry = (seq: number, prev: number): Entry => ({ seq, prev, payload: `[${seq}]` })
const answer = (position: number, last: number, entries: Entry[], epoch = 'e'): TopicAnswer => ({ epoch, position, topic: { last, entries } })

describe('HistoryReads (patchwire/redis)', () => {
  it('refuses an id this library does not write, at once', () => {
    const { reads, asked } = setup()
    assert.deepEqual(reads.replay('room', 'nope'), { reset: 'malformed-id' }, 'malformed-id')
    assert.equal(asked.length, 0, 'without a read')
  })

  it('answers from the local cache, without a read, when the topic is subscribed and current and the id was seen', () => {
    const { reads, asked, topics, cache } = setup()
    topics.set('p:room', subscribed('room'))
    cache.set('p:room', [{ id: 'e-99', payload: '[99]' }])
    assert.deepEqual(reads.replay('room', 'e-90'), { frames: [{ id: 'e-99', payload: '[99]' }] }, 'the cached frames, synchronously')
    assert.equal(asked.length, 0, 'no round trip')
  })

  it('reads from Redis when the cache cannot answer: not subscribed, not current, an id beyond what was seen, another epoch, or not reaching back', async () => {
    const cases: Array<[string, (s: ReturnType<typeof setup>) => void, string]> = [
      ['not subscribed', () => {}, 'e-90'],
      ['not current', (s) => { s.topics.set('p:room', subscribed('room')); s.cache.set('p:room', []); s.state.current = false }, 'e-90'],
      ['beyond what was seen', (s) => { s.topics.set('p:room', subscribed('room')); s.cache.set('p:room', []) }, 'e-101'],
      ['another epoch', (s) => { s.topics.set('p:room', subscribed('room')); s.cache.set('p:room', []) }, 'f-90'],
      ['the cache does not reach back', (s) => { s.topics.set('p:room', subscribed('room')) }, 'e-90'],
    ]
    for (const [what, arrange, after] of cases) {
      const s = setup()
      arrange(s)
      const result = s.reads.replay('room', after)
      assert.ok(result instanceof Promise, `${what}: answered by a read`)
      assert.deepEqual(s.asked.map((read) => [read.topic, read.after]), [['room', Number(after.slice(2))]], `${what}: the topic's stream after the id`)
    }
  })

  it('shares one read between identical replays under way, and reads again once it is answered', async () => {
    const { reads, asked } = setup()
    const first = reads.replay('room', 'e-90')
    const second = reads.replay('room', 'e-90')
    const other = reads.replay('room', 'e-95')
    assert.equal(first, second, 'the same promise')
    assert.notEqual(first, other, 'another id is another read')
    assert.equal(asked.length, 2, 'two reads for three replays')
    asked[0]?.resolve(answer(100, 90, []))
    asked[1]?.resolve(answer(100, 90, []))
    await Promise.all([first, other])
    void reads.replay('room', 'e-90')
    assert.equal(asked.length, 3, 'an answered replay is not shared any more')
  })

  it('gives the frames after the id, and settles once the last one was delivered', async () => {
    const { reads, asked, delivered, observed } = setup()
    const result = reads.replay('room', 'e-90')
    asked[0]?.resolve(answer(120, 110, [entry(95, 90), entry(110, 95)]))
    assert.deepEqual(await result, { frames: [{ id: 'e-95', payload: '[95]' }, { id: 'e-110', payload: '[110]' }] }, 'the frames, with their ids')
    assert.deepEqual(delivered, [110], 'waited for delivery up to the last frame')
    assert.deepEqual(observed, [['e', 120]], 'the feed learned the counter')
  })

  it('judges the id against the history Redis holds', async () => {
    const judged = async (after: string, reply: TopicAnswer): Promise<ReplayResult> => {
      const { reads, asked, delivered } = setup()
      const result = reads.replay('room', after)
      asked[0]?.resolve(reply)
      const value = await result
      assert.deepEqual(delivered, [], `${after}: a refusal waits for no delivery`)
      return value
    }
    assert.deepEqual(await judged('e-90', answer(120, 110, [], 'f')), { reset: 'foreign-id' }, 'another epoch: a history that is gone')
    assert.deepEqual(await judged('e-130', answer(120, 110, [])), { reset: 'foreign-id' }, 'above the counter: never issued')
    assert.deepEqual(await judged('e-90', answer(120, 110, [entry(105, 95), entry(110, 105)])), { reset: 'history-exceeded' }, 'the first kept message follows one after the id')
  })

  it('gives the position of a topic once every message up to it was delivered', async () => {
    const { reads, asked, delivered, observed } = setup()
    const position = reads.position('room')
    assert.deepEqual(asked.map((read) => [read.topic, read.after]), [['room', undefined]], 'a read of the position only')
    asked[0]?.resolve(answer(150, 140, []))
    assert.equal(await position, 'e-150', 'the counter, as an event id')
    assert.deepEqual(delivered, [150], 'waited for delivery up to it')
    assert.deepEqual(observed, [['e', 150]], 'the feed learned it')
  })
})

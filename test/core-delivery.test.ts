/**
 * The live path (src/core/delivery.ts) without a transport: a turn's
 * messages are framed once per topic and frame kind and written at the end
 * of the turn, the same bytes to every stream; waiting streams hold them;
 * slow readers are cut; payloads that could forge frames never reach a stream.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Delivery } from '../src/core/delivery.ts'
import { createCounters } from '../src/core/stats.ts'
import type { Topic, TopicStream } from '../src/core/topic.ts'
import type { Sink } from '../src/core/transport.ts'
import { publish } from '../src/index.ts'
import { coreBench, nextTurn, type CoreBench } from './helpers/core.ts'

/** A delivery wired to `bench`'s subscriptions, recording what it reports. */
function deliveryOn(bench: CoreBench, maxBufferedBytes = 1024 * 1024): {
  delivery: Delivery
  counters: ReturnType<typeof createCounters>
  gaps: Topic[]
  overflowed: TopicStream[]
  cut: Sink[]
} {
  const counters = createCounters()
  const gaps: Topic[] = []
  const overflowed: TopicStream[] = []
  const cut: Sink[] = []
  const delivery = new Delivery(bench.numbering, counters, maxBufferedBytes, { beat: 0 }, (sink) => cut.push(sink), {
    gap: (topic) => gaps.push(topic),
    overflow: (stream) => overflowed.push(stream),
  }, (error) => bench.errors.push(error))
  bench.events.message = (topic, payload, id) => delivery.receive(topic, payload, id)
  return { delivery, counters, gaps, overflowed, cut }
}

describe('Delivery', () => {
  it('writes a turn\'s messages of a topic at the end of the turn, as one write per stream, the same bytes for every stream', async () => {
    const bench = coreBench()
    const { counters } = deliveryOn(bench)
    const streams = [bench.open(['a']), bench.open(['a'])]
    const ids = [await publish(bench.broker, 'a', [['add', '/n', 1]]), await publish(bench.broker, 'a', [['add', '/n', 2]])]
    assert.deepEqual(streams.map(({ sink }) => sink.chunks.length), [0, 0], 'nothing is written within the turn')
    await nextTurn()
    assert.deepEqual(streams.map(({ sink }) => sink.chunks.length), [1, 1], 'one write per stream')
    assert.equal(streams[0]?.sink.chunks[0], streams[1]?.sink.chunks[0], 'the very same buffer for both')
    assert.equal(streams[0]?.sink.text, `id: ${ids[0]}\nevent: patch\ndata: [["add","/n",1]]\n\nid: ${ids[1]}\nevent: patch\ndata: [["add","/n",2]]\n\n`, 'both frames, in order')
    assert.deepEqual([counters.messages, counters.frames], [2, 4], 'two messages, two frames to each of two streams')
  })

  it('names the topic in the frames of a multi-topic stream, and keeps the order of the turn across topics', async () => {
    const bench = coreBench()
    const { delivery } = deliveryOn(bench)
    const { sink } = bench.open(['a', 'b'])
    await publish(bench.broker, 'a', [['add', '/n', 1]])
    await publish(bench.broker, 'b', [['add', '/n', 2]])
    await publish(bench.broker, 'a', [['add', '/n', 3]])
    delivery.flush()
    const topics = [...sink.text.matchAll(/^data: "(\w)"$/gm)].map((match) => match[1])
    assert.deepEqual(topics, ['a', 'b', 'a'], 'each frame names its topic, in publish order')
  })

  it('never writes a stream what its cursor already covers', async () => {
    const bench = coreBench()
    const { delivery } = deliveryOn(bench)
    const { stream, sink } = bench.open(['a'])
    const first = await publish(bench.broker, 'a', [['add', '/n', 1]])
    stream.cursor = Number(first.split('-')[1])
    const second = await publish(bench.broker, 'a', [['add', '/n', 2]])
    delivery.flush()
    assert.equal(sink.text, `id: ${second}\nevent: patch\ndata: [["add","/n",2]]\n\n`, 'only the frame after the cursor')
  })

  it('holds a waiting stream\'s messages, and reports it once it holds more than maxBufferedBytes', async () => {
    const bench = coreBench()
    const { delivery, overflowed } = deliveryOn(bench, 100)
    const { stream, sink } = bench.open(['a'], false)
    await publish(bench.broker, 'a', [['add', '/n', 1]])
    delivery.flush()
    assert.equal(stream.held?.length, 1, 'held, not written')
    assert.equal(sink.chunks.length, 0, 'nothing written')
    assert.deepEqual(overflowed, [], 'within the bound')
    await publish(bench.broker, 'a', [['add', '/n', 'x'.repeat(200)]])
    delivery.flush()
    assert.deepEqual(overflowed, [stream], 'over the bound: the opening cannot catch up')
  })

  it('cuts a stream whose reader has fallen behind, and only that one', async () => {
    const bench = coreBench()
    const { delivery, counters, cut } = deliveryOn(bench, 100)
    const slow = bench.open(['a'])
    const fine = bench.open(['a'])
    await publish(bench.broker, 'a', [['add', '/n', 'x'.repeat(150)]])
    delivery.flush()
    slow.sink.writableLength = 1000
    await nextTurn()
    await publish(bench.broker, 'a', [['add', '/n', 2]])
    delivery.flush()
    assert.deepEqual(cut, [slow.sink], 'the slow sink is cut')
    assert.equal(counters.dropped, 1, 'counted as dropped')
    assert.equal(slow.stream.attached, false, 'and forgotten')
    assert.equal(fine.sink.chunks.length, 2, 'the other stream got both frames')
  })

  it('drops a payload with a line break, reports it and the topic\'s gap, and writes nothing', () => {
    const bench = coreBench()
    const { gaps } = deliveryOn(bench)
    const { sink } = bench.open(['a'])
    void bench.broker.publish('a', '["forged"]\n\nevent: patch')
    assert.deepEqual(bench.errors.map((error) => error.code), ['ERR_PATCHWIRE_PAYLOAD'], 'reported')
    assert.deepEqual(gaps.map((topic) => topic.name), ['a'], 'the topic\'s streams must resync')
    assert.equal(sink.chunks.length, 0, 'nothing written')
  })

  it('reports a message without a valid id from a broker that issues ids, as a gap', () => {
    const bench = coreBench()
    const { delivery, gaps } = deliveryOn(bench)
    const topic = bench.subscriptions.hold('a')
    delivery.receive(topic, '[]', 'not-an-id!')
    assert.deepEqual(bench.errors.map((error) => error.code), ['ERR_PATCHWIRE_PAYLOAD'], 'reported')
    assert.deepEqual(gaps, [topic], 'a gap')
  })
})

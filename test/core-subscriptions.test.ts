/**
 * A handler's topics (src/core/subscriptions.ts): one broker subscription
 * per topic, held while requests wait, let go after the linger, and the
 * O(1) membership of streams in topics.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Broker, Unsubscribe } from '../src/broker/broker.ts'
import { Shutdown } from '../src/core/shutdown.ts'
import { createBroker } from '../src/index.ts'
import { coreBench, nextTurn, RecordingSink } from './helpers/core.ts'
import { until } from './helpers/server.ts'

/** An in-process broker that counts subscriptions and can make them wait. */
function countingBroker(ready?: Promise<unknown>): { broker: Broker; subscribed: string[]; unsubscribed: string[] } {
  const inner = createBroker()
  const subscribed: string[] = []
  const unsubscribed: string[] = []
  const broker: Broker = {
    ...inner,
    subscribe(topic, listener, onGap) {
      subscribed.push(topic)
      const stop = inner.subscribe(topic, listener, onGap)
      const unsubscribe = (): void => {
        unsubscribed.push(topic)
        stop()
      }
      return (ready === undefined ? unsubscribe : Object.assign(unsubscribe, { ready })) as Unsubscribe
    },
  }
  return { broker, subscribed, unsubscribed }
}

describe('Subscriptions', () => {
  it('subscribes a topic once however many streams it has, and lets it go with the last (lingerMs 0)', () => {
    const { broker, subscribed, unsubscribed } = countingBroker()
    const bench = coreBench(broker)
    const one = bench.open(['a'])
    const two = bench.open(['a', 'b'])
    assert.deepEqual(subscribed, ['a', 'b'], 'one subscription per topic')
    assert.equal(bench.subscriptions.size, 2, 'two topics held')
    one.stream.detach()
    assert.deepEqual(unsubscribed, [], 'a is still used')
    two.stream.detach()
    assert.deepEqual(unsubscribed.sort(), ['a', 'b'], 'both let go with their last stream')
    assert.equal(bench.subscriptions.size, 0, 'none held')
  })

  it('keeps a topic subscribed for lingerMs after its last stream, for the reconnect', async () => {
    const { broker, subscribed, unsubscribed } = countingBroker()
    const bench = coreBench(broker, 30)
    bench.open(['a']).stream.detach()
    assert.deepEqual(unsubscribed, [], 'lingering')
    bench.open(['a']).stream.detach()
    assert.deepEqual(subscribed, ['a'], 'the reconnect found it subscribed')
    await until(() => unsubscribed.length === 1, 2000, 'the linger to end')
    assert.equal(bench.subscriptions.size, 0, 'let go')
  })

  it('swap-removes a stream from its topics, keeping every other stream\'s slot right', () => {
    const bench = coreBench()
    const streams = Array.from({ length: 5 }, (_, i) => bench.open(i % 2 === 0 ? ['a', 'b'] : ['b']).stream)
    streams[1]?.detach()
    streams[0]?.detach()
    const b = [...bench.subscriptions.topics()].find((topic) => topic.name === 'b')
    assert.ok(b !== undefined, 'b is held')
    for (const [index, stream] of b.streams.entries()) {
      assert.equal(stream.slots[stream.topics.indexOf(b)], index, 'each stream knows its slot')
    }
    assert.equal(b.streams.length, 3, 'three left on b')
    assert.equal(b.multi, 2, 'two of them multi-topic')
    assert.equal(streams[0]?.attached, false, 'the detached one knows')
    assert.equal(bench.subscriptions.leave(streams[0] as never), false, 'leaving twice does nothing')
  })

  it('holds a topic whose subscription is not live yet as pending, and positions it once it is', async () => {
    let live: () => void = () => undefined
    const { broker } = countingBroker(new Promise<void>((resolve) => {
      live = resolve
    }))
    const bench = coreBench(broker)
    const topic = bench.subscriptions.hold('a')
    assert.ok(topic.pending !== undefined, 'pending until live')
    assert.equal(topic.seq, -1, 'not positioned')
    live()
    await topic.pending
    assert.equal(topic.pending, undefined, 'live')
    assert.ok(topic.seq >= 0, 'positioned')
  })

  it('reports a subscription that failed, and forgets the topic', async () => {
    const { broker } = countingBroker(Promise.reject(new Error('no')))
    const bench = coreBench(broker)
    const topic = bench.subscriptions.hold('a')
    await assert.rejects(topic.pending as Promise<void>, /could not subscribe to topic "a"/, 'the waiting request sees the failure')
    assert.deepEqual(bench.errors.map((error) => error.code), ['ERR_PATCHWIRE_BROKER'], 'reported once')
    assert.equal(bench.subscriptions.size, 0, 'forgotten')
  })

  it('lets every topic go on close, giving up the waits, and returns every stream', async () => {
    const { broker, unsubscribed } = countingBroker(new Promise(() => undefined))
    const bench = coreBench(broker)
    const waiting = bench.subscriptions.hold('w')
    const streams = bench.subscriptions.close()
    assert.deepEqual([...streams], [], 'no stream had opened')
    await assert.rejects(waiting.pending as Promise<void>, /could not subscribe/, 'the wait is given up')
    assert.deepEqual(bench.errors, [], 'a closed handler reports nothing')
    assert.deepEqual(unsubscribed, ['w'], 'unsubscribed')
  })
})

describe('Shutdown', () => {
  it('ends each stream with a retry hint, destroys one with a backlog, and resolves once drained', async () => {
    const bench = coreBench()
    const idle = bench.open(['a'])
    const stalled = bench.open(['a'])
    stalled.sink.writableLength = 10
    const shutdown = new Shutdown()
    let resolved = false
    const done = shutdown.end([idle.stream, stalled.stream], 1000, 500, () => 2).then(() => {
      resolved = true
    })
    assert.match(idle.sink.text, /^retry: (1[0-4]\d\d|1500)\n\n$/, 'a retry within the spread')
    assert.equal(idle.sink.ended, true, 'ended')
    assert.equal(stalled.sink.destroyed, true, 'the stalled one is destroyed, not ended')
    await nextTurn()
    assert.equal(resolved, false, 'waits for the streams to close')
    shutdown.drained()
    await done
  })

  it('resolves at once with nothing open, and destroys what has not closed after the grace', async () => {
    await new Shutdown().end([], 0, 0, () => 0)
    const sink = new RecordingSink()
    const bench = coreBench()
    const { stream } = bench.open(['a'])
    stream.sink = sink
    // The grace timer is unref'd, as a server's own sockets keep the process up.
    const alive = setInterval(() => undefined, 100)
    await new Shutdown().end([stream], 0, 0, () => 1).finally(() => clearInterval(alive))
    assert.equal(sink.destroyed, true, 'destroyed after the grace')
  })
})

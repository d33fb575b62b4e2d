/**
 * The handler (`createHandler`) over patchwire/redis, against a private
 * redis-server: what streams get when Redis fails under them, and resume
 * across handlers that share one Redis (each its own broker and clients, as
 * two processes would have). Every case runs with node-redis and with
 * ioredis clients.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import type { Broker } from '../src/broker/broker.ts'
import { position, publish } from '../src/index.ts'
import { brokerOn, cutWhilePublishing, eventually, LIBS, monitorOf, numsub, probe, publishing, seqOf, uniquePrefix } from './helpers/redis.ts'
import type { PublishLoop, Server } from './helpers/redis.ts'
import { startRedisProxy, startRedisServer } from './helpers/redis-server.ts'
import { startServer } from './helpers/server.ts'
import { openStream } from './helpers/sse-client.ts'
import type { SseClient } from './helpers/sse-client.ts'

/** One patch a stream got: its topic (multi-topic streams name it), the counter it carries, its id. */
interface Patch {
  readonly topic: string | undefined
  readonly n: number
  readonly id: string
}

/** A stream's patches and resets, in order. */
function received(stream: SseClient): (Patch | 'reset')[] {
  return stream.events.flatMap((event): (Patch | 'reset')[] => {
    if (event.event === 'reset') return ['reset']
    if (event.event !== 'patch') return []
    const lines = event.data.split('\n')
    const topic = lines.length === 2 ? JSON.parse(lines[0] as string) as string : undefined
    const ops = JSON.parse(lines.at(-1) as string) as [[string, string, number]]
    return [{ topic, n: ops[0][2], id: event.id ?? '' }]
  })
}

function patchesOf(stream: SseClient): Patch[] {
  return received(stream).filter((entry): entry is Patch => entry !== 'reset')
}

function resetsOf(stream: SseClient): number {
  return received(stream).filter((entry) => entry === 'reset').length
}

/** Publishes `[["replace","/n",n]]`; resolves with the id. */
function publishN(broker: Broker, topic: string, n: number): Promise<string> {
  return publish(broker, topic, [['replace', '/n', n]])
}

/** Publishes `n` = 1, 2, … on `topicOf(n)` until stopped (see {@link publishing}), recording each publish Redis took. */
function publishingN(t: TestContext, broker: Broker, topicOf: (n: number) => string): PublishLoop<{ topic: string, n: number, id: string }> {
  return publishing(t, async (n) => {
    const topic = topicOf(n)
    return { topic, n, id: await publishN(broker, topic, n) }
  })
}

describe('createHandler over patchwire/redis', { timeout: 180_000 }, () => {
  let shared: Server
  before(async () => { shared = await startRedisServer() })
  after(async () => { await shared.stop() })

  for (const lib of LIBS) {
    describe(`with ${lib.name} clients`, () => {
      it('serves publish(broker, topic, ops) to its streams, with the id publish resolved with', { timeout: 15_000 }, async (t) => {
        const { broker, errors } = await brokerOn(t, lib, shared.port, { prefix: uniquePrefix() })
        const web = await startServer(t, { broker })
        const stream = await openStream(t, web.port, 'room')
        assert.equal(stream.response?.status, 200, 'the stream opens over the Redis broker')
        const id = await publish(broker, 'room', [['add', '/items/-', { id: 1, name: 'ünïcode' }]])
        await eventually(() => stream.named('patch').length === 1, 'the patch')
        assert.deepEqual(stream.named('patch').map((event) => ({ data: event.data, id: event.id })), [{ data: '[["add","/items/-",{"id":1,"name":"ünïcode"}]]', id }], 'the stream gets the patch, its data as published and the id publish resolved with')
        assert.deepEqual(errors, [], `the broker reported no error: ${errors.map((error) => error.message).join(' | ')}`)
      })

      it('holds one SUBSCRIBE for all the streams of a topic, and UNSUBSCRIBEs lingerMs after the last one', { timeout: 15_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const { count, barrier } = await monitorOf(t, 'patchwire:', server.port)
        const lingerMs = 200
        const web = await startServer(t, { broker, lingerMs })

        const streams = await Promise.all([1, 2, 3].map(() => openStream(t, web.port, 'room')))
        assert.deepEqual(streams.map((stream) => stream.response?.status), [200, 200, 200], 'the three streams open')
        assert.equal(await numsub(admin, 'patchwire:room'), 1, 'Redis counts one subscriber to the topic\'s channel')
        await publish(broker, 'room', [['replace', '/counter', 7]])
        await eventually(() => streams.every((stream) => stream.named('patch').length > 0), 'every stream to get the patch')
        assert.deepEqual(streams.map((stream) => stream.named('patch').map((event) => event.data)), Array(3).fill(['[["replace","/counter",7]]']), 'every stream gets the patch once')
        await barrier()
        assert.equal(count('subscribe', 'patchwire:room'), 1, 'MONITOR saw one SUBSCRIBE for the three streams')
        assert.equal(web.handler.stats().topics, 1, 'the handler holds the topic once')

        for (const stream of streams) stream.destroy()
        await eventually(() => web.handler.stats().connections === 0, 'the handler to see the streams go')
        const left = performance.now()
        await eventually(async () => web.handler.stats().topics === 0 && await numsub(admin, 'patchwire:room') === 0, 'the topic to be let go')
        // A lower bound only: the topic must not go before lingerMs (checked
        // while polling, so a little short of the full linger at worst).
        const lingered = performance.now() - left
        assert.ok(lingered >= lingerMs * 0.75, `let go after ${lingered} ms, before lingerMs`)
        await barrier()
        assert.equal(count('unsubscribe', 'patchwire:room'), 1, 'MONITOR saw one UNSUBSCRIBE after the linger')
        assert.equal(count('subscribe', 'patchwire:room'), 1, 'and no second SUBSCRIBE')
        assert.deepEqual(errors, [], `the broker reported no error: ${errors.map((error) => error.message).join(' | ')}`)
      })

      it('server-render hand-off: position on one broker, publishes, then a stream from that id on another handler gets exactly those', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const renderer = await brokerOn(t, lib, shared.port, { prefix })
        const serving = await brokerOn(t, lib, shared.port, { prefix })
        const web = await startServer(t, { broker: serving.broker })
        await publishN(renderer.broker, 'page', 0)
        const at = await position(renderer.broker, 'page')
        const ids: string[] = []
        for (let n = 1; n <= 5; n++) {
          ids.push(await publishN(renderer.broker, 'page', n))
          await publishN(renderer.broker, 'elsewhere', n)
        }
        const stream = await openStream(t, web.port, 'page', [], `/?lastEventId=${encodeURIComponent(at)}`)
        assert.equal(stream.response?.status, 200, 'the stream from the rendered position opens on the other handler')
        assert.deepEqual(patchesOf(stream), ids.map((id, i) => ({ topic: undefined, n: i + 1, id })), 'it replays exactly the 5 patches of page after the position, with their ids')
        assert.equal(resetsOf(stream), 0, 'an exact hand-off is no reset')
        // The stream is live from there on.
        const next = await publishN(renderer.broker, 'page', 6)
        await eventually(() => patchesOf(stream).length === 6, 'the live patch')
        assert.deepEqual(patchesOf(stream).at(-1), { topic: undefined, n: 6, id: next }, 'then the live patch, with its id')
      })

      it('resumes a multi-topic stream (?topic=a&topic=b) exactly, with one id, on another handler', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const first = await brokerOn(t, lib, shared.port, { prefix })
        const second = await brokerOn(t, lib, shared.port, { prefix })
        const publisher = await brokerOn(t, lib, shared.port, { prefix })
        const webA = await startServer(t, { broker: first.broker })
        const webB = await startServer(t, { broker: second.broker })
        // The second handler serves `a` already (its frames are in its
        // cache), not `b` (read from Redis): both ways in one resume.
        const onlyA = await openStream(t, webB.port, 'a')
        const before = await openStream(t, webA.port, 'a', [], '/?topic=b')
        const sent: { topic: string, n: number, id: string }[] = []
        for (let n = 1; n <= 6; n++) {
          const topic = n % 3 === 0 ? 'b' : 'a'
          sent.push({ topic, n, id: await publishN(publisher.broker, topic, n) })
        }
        await eventually(() => patchesOf(before).length === 6, 'the first patches')
        assert.deepEqual(patchesOf(before), sent, 'the multi-topic stream gets the 6 patches of a and b in order')
        const last = (patchesOf(before).at(-1) as Patch).id
        before.destroy()
        for (let n = 7; n <= 14; n++) {
          const topic = n % 2 === 0 ? 'b' : 'a'
          sent.push({ topic, n, id: await publishN(publisher.broker, topic, n) })
        }
        await eventually(() => patchesOf(onlyA).length === sent.filter((entry) => entry.topic === 'a').length, 'the cache of a')
        const resumed = await openStream(t, webB.port, 'a', [`Last-Event-ID: ${last}`], '/?topic=b')
        assert.equal(resumed.response?.status, 200, 'the resumed stream opens on the other handler')
        assert.deepEqual(patchesOf(resumed), sent.slice(6), 'it gets exactly the patches of a and b after its id, in order, a from the cache and b from Redis')
        assert.equal(resetsOf(resumed), 0, 'an exact resume is no reset')
        assert.deepEqual([first.errors, second.errors], [[], []], 'neither broker reported an error')
      })

      it('resumes a stream on a handler whose subscriber lags behind the one the client came from: nothing twice, and its ready id is not behind the client\'s', { timeout: 15_000 }, async (t) => {
        const proxy = await startRedisProxy(shared.port)
        t.after(() => proxy.close())
        const prefix = uniquePrefix()
        const x = await brokerOn(t, lib, shared.port, { prefix })
        const y = await brokerOn(t, lib, shared.port, { prefix }, await lib.connect(t, proxy.port))
        const publisher = await brokerOn(t, lib, shared.port, { prefix })
        const webX = await startServer(t, { broker: x.broker })
        const webY = await startServer(t, { broker: y.broker })
        const onX = await openStream(t, webX.port, 'a')
        // Y serves the topic already, from its cache: the usual case.
        await openStream(t, webY.port, 'a')
        // Y's subscriber is slower: a1 reached X, not yet Y.
        proxy.hold()
        const a1 = await publishN(publisher.broker, 'a', 1)
        await eventually(() => patchesOf(onX).length === 1, 'a1 on X')
        // X goes away; the client comes back on Y with a1 as its last id.
        onX.destroy()
        const resumed = await openStream(t, webY.port, 'a', [`Last-Event-ID: ${a1}`])
        proxy.release()
        const a2 = await publishN(publisher.broker, 'a', 2)
        await eventually(() => patchesOf(resumed).some((patch) => patch.id === a2), 'a2 on the resumed stream')
        assert.deepEqual(patchesOf(resumed), [{ topic: undefined, n: 2, id: a2 }], 'a1 came twice')
        const ready = resumed.named('ready')[0]?.id ?? ''
        assert.ok(seqOf(ready) >= seqOf(a1), `ready ${ready} is behind the client's ${a1}: its EventSource would go back`)
      })

      it('gives every open stream a reset or an exact continuation, never a hole, when Redis restarts without its data', { timeout: 30_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker } = await brokerOn(t, lib, server.port)
        const other = await brokerOn(t, lib, server.port)
        const web = await startServer(t, { broker })
        const streams = [
          await openStream(t, web.port, 'live'),
          await openStream(t, web.port, 'live'),
          await openStream(t, web.port, 'live', [], '/?topic=side'),
        ]
        const loop = publishingN(t, other.broker, (n) => n % 4 === 0 ? 'side' : 'live')
        await eventually(() => loop.taken.length >= 60, 'publishes before the restart')
        await server.kill()
        await server.start()
        const mark = loop.taken.length
        // Until every stream is live again (it got a patch published after
        // the restart): had the loop stopped before the subscriber was back,
        // everything published after the restart would be behind the reset,
        // and the last publish would never come.
        const lastBefore = loop.taken.at(-1)?.n ?? 0
        const live = (): boolean => streams.every((stream) => patchesOf(stream).some((patch) => patch.n > lastBefore))
        await eventually(() => loop.taken.length >= mark + 60 && live(), 'publishes after the restart, and one on every stream', 10_000)
        await loop.stop()
        const lastLive = loop.taken.findLast((entry) => entry.topic === 'live')
        await eventually(() => streams.every((stream) => patchesOf(stream).some((patch) => patch.n === lastLive?.n)), 'the last publish on every stream', 10_000)
        for (const [s, stream] of streams.entries()) {
          const topics = s === 2 ? ['live', 'side'] : ['live']
          const expected = loop.taken.filter((entry) => topics.includes(entry.topic))
          // Walk the publishes: each one the stream skipped must be covered by a reset before the next patch it got.
          let index = 0
          let resetSince = false
          for (const entry of received(stream)) {
            if (entry === 'reset') {
              resetSince = true
              continue
            }
            const at = expected.findIndex((sent, i) => i >= index && sent.n === entry.n)
            assert.ok(at >= 0, `stream ${s}: got ${entry.n} out of order or twice`)
            assert.ok(at === index || resetSince, `stream ${s}: missed ${expected.slice(index, at).map((sent) => sent.n).join(', ')} without a reset`)
            assert.equal(entry.id, expected[at]?.id, `stream ${s}: patch ${entry.n} carries the id its publish resolved with`)
            index = at + 1
            resetSince = false
          }
          assert.ok(resetsOf(stream) >= 1, `stream ${s}: the lost history must reset it`)
          assert.equal(stream.closed, false, `stream ${s} stayed open across the restart`)
        }
      })

      it('gives every stream every patch, no reset, while CLIENT KILL TYPE pubsub cuts the subscriber', { timeout: 30_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        const other = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const web = await startServer(t, { broker })
        const single = await openStream(t, web.port, 'p')
        const multi = await openStream(t, web.port, 'p', [], '/?topic=q')
        const topics = ['p', 'q', 'unserved']
        const loop = publishingN(t, other.broker, (n) => topics[n % 3] as string)
        await cutWhilePublishing(admin, ['patchwire:p', 'patchwire:q'], loop)
        assert.equal(loop.refused, 0, 'Redis stayed up: every publish was taken')
        const expect = (served: string[]): Patch[] => loop.taken.filter((entry) => served.includes(entry.topic)).map((entry) => ({ topic: served.length > 1 ? entry.topic : undefined, n: entry.n, id: entry.id }))
        await eventually(() => patchesOf(single).length >= expect(['p']).length && patchesOf(multi).length >= expect(['p', 'q']).length, 'every patch', 10_000)
        assert.deepEqual(patchesOf(single), expect(['p']), 'the single-topic stream gets every patch of p once, in order')
        assert.deepEqual(patchesOf(multi), expect(['p', 'q']), 'the multi-topic stream gets every patch of p and q once, in order')
        assert.deepEqual([resetsOf(single), resetsOf(multi)], [0, 0], 'no reset on either stream: Redis stayed up, its streams fill what the cuts lost')
        assert.ok(errors.some((error) => /lost the connection of the Redis subscriber/.test(error.message)), 'the kills reached the subscriber')
      })
    })
  }
})


/**
 * End to end across processes: two handler processes on two ports, one on
 * node-redis and one on ioredis, share a private Redis with a third process
 * that publishes. Every stream must get every patch, in publish order,
 * exactly once, and after a Redis restart an `event: reset` before the
 * patches that follow. A position read in one process (a server-rendered
 * page) resumes exactly on another.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawnChild } from './helpers/children.ts'
import { startRedisServer } from './helpers/redis-server.js'
import type { RedisServer } from './helpers/redis-server.js'
import { until } from './helpers/server.js'
import { openStream } from './helpers/sse-client.js'
import type { SseClient } from './helpers/sse-client.js'

const TOPIC = 'room:1'
const FIRST_BATCH = 200
const SECOND_BATCH = 200
const WAIT_MS = 10_000

/** The stream's patches and resets, as `n` (the published counter) and `'reset'`. */
function sequence(client: SseClient): (number | 'reset')[] {
  return client.events
    .filter((event) => event.event === 'patch' || event.event === 'reset')
    .map((event) => {
      if (event.event === 'reset') return 'reset'
      const ops = JSON.parse(event.data) as [[string, string, number]]
      return ops[0][2]
    })
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

describe('Redis broker across processes', { timeout: 60_000 }, () => {
  let redis: RedisServer & { stop(): Promise<void> }
  before(async () => { redis = await startRedisServer() })
  after(async () => { await redis.stop() })

  it('delivers every patch to every stream of both handler processes, in order, exactly once, with a reset after a Redis restart', { timeout: 45_000 }, async (t) => {
    const handlers = [
      spawnChild(t, 'redis-handler-process.ts', [String(redis.port), 'node-redis']),
      spawnChild(t, 'redis-handler-process.ts', [String(redis.port), 'ioredis']),
    ]
    const publisher = spawnChild(t, 'redis-publisher-process.ts', [String(redis.port), TOPIC])
    const ports = await Promise.all(handlers.map(async (handler) => Number((await handler.next('port'))['port'])))
    assert.notEqual(ports[0], ports[1], `the two handler processes listen on their own ports: ${ports.join(', ')}`)
    await publisher.next('ready')

    // Two streams per process; each is live once its `ready` frame came.
    const streams: SseClient[] = []
    for (const port of ports) {
      for (let i = 0; i < 2; i++) {
        const stream = await openStream(t, port, TOPIC)
        assert.equal(stream.response?.status, 200, `a stream opens on the handler at port ${port}`)
        streams.push(stream)
      }
    }

    publisher.process.send({ from: 1, to: FIRST_BATCH })
    assert.deepEqual(await publisher.next('published'), { published: FIRST_BATCH }, `the publisher reports the first ${FIRST_BATCH} patches published`)
    await until(() => streams.every((stream) => sequence(stream).length >= FIRST_BATCH), WAIT_MS, 'the first batch on every stream')
    for (const stream of streams) assert.deepEqual(sequence(stream), range(1, FIRST_BATCH), 'every stream has the first batch, each patch once, in order')

    await redis.kill()
    await redis.start()
    await until(() => streams.every((stream) => sequence(stream).includes('reset')), WAIT_MS, 'a reset on every stream')
    for (const stream of streams) {
      const reset = stream.named('reset')
      assert.equal(reset.length, 1, 'one reset per stream for the Redis restart')
      assert.deepEqual(JSON.parse(reset[0]?.data ?? '{}'), { reason: 'broker-gap' }, 'the reset says the broker lost messages')
    }

    publisher.process.send({ from: FIRST_BATCH + 1, to: FIRST_BATCH + SECOND_BATCH })
    assert.deepEqual(await publisher.next('published'), { published: FIRST_BATCH + SECOND_BATCH }, 'the publisher reports the second batch published after the restart')
    const expected = [...range(1, FIRST_BATCH), 'reset', ...range(FIRST_BATCH + 1, FIRST_BATCH + SECOND_BATCH)]
    await until(() => streams.every((stream) => sequence(stream).length >= expected.length), WAIT_MS, 'the second batch on every stream')
    for (const stream of streams) {
      assert.deepEqual(sequence(stream), expected, 'every stream has the first batch, the reset, then the second batch, each patch once, in order')
      assert.equal(stream.closed, false, 'the stream stayed open across the Redis restart')
    }
  })

  it('hands a position read in one process to a stream on another: it gets exactly the patches published after it', { timeout: 45_000 }, async (t) => {
    const page = 'page:1'
    const handler = spawnChild(t, 'redis-handler-process.ts', [String(redis.port), 'ioredis'])
    const renderer = spawnChild(t, 'redis-publisher-process.ts', [String(redis.port), page])
    const port = Number((await handler.next('port'))['port'])
    await renderer.next('ready')
    renderer.process.send({ from: 1, to: 3 })
    await renderer.next('published')
    // The page is rendered with the state after 3, and this position.
    renderer.process.send({ position: page })
    const at = String((await renderer.next('position'))['position'])
    renderer.process.send({ from: 4, to: 20 })
    assert.deepEqual(await renderer.next('published'), { published: 20 }, 'the renderer reports patches 4 to 20 published after the position')

    // The page's script subscribes later, through another process.
    const stream = await openStream(t, port, page, [], `/?lastEventId=${encodeURIComponent(at)}`)
    assert.equal(stream.response?.status, 200, 'a stream resuming from the position opens on the other process')
    assert.deepEqual(sequence(stream), range(4, 20), 'the stream replays exactly the patches after the position: 4 to 20')
    renderer.process.send({ from: 21, to: 25 })
    await renderer.next('published')
    await until(() => sequence(stream).length >= 22, WAIT_MS, 'the live patches')
    assert.deepEqual(sequence(stream), range(4, 25), 'then the live patches 21 to 25, each once, in order')
    assert.deepEqual(handler.messages.filter((message) => 'error' in message), [], 'the handler process reported no error')
  })
})

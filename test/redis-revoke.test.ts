/**
 * Revocation over Redis (issue 22): two handler processes (one on
 * node-redis, one on ioredis) on a private Redis, revoked from a third
 * process, end every matching stream within a second; and in process, for
 * both client libraries: the control channel is subscribed while handlers
 * listen and let go after, a revocation reaches every broker on the prefix
 * and only that prefix, a stray message on the channel is reported, and a
 * revocation survives a cut subscriber connection.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it, type TestContext } from 'node:test'
import { spawnChild } from './helpers/children.ts'
import { startRedisServer } from './helpers/redis-server.js'
import type { RedisServer } from './helpers/redis-server.js'
import { brokerOn, killSubscriber, LIBS, numsub, probe, uniquePrefix, eventually } from './helpers/redis.ts'
import { startServer, until } from './helpers/server.ts'
import { openRaw, openStream, type SseClient } from './helpers/sse-client.ts'
import { createHandler, publish, revoke, type Broker, type NodeRequest } from '../src/index.ts'

const controlChannel = (prefix: string): string => `${prefix}\u0000revocations`

const userOf = (req: NodeRequest): string | undefined => new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined

function revokedTopics(client: SseClient): unknown[] {
  return client.named('revoked').map((event) => JSON.parse(event.data) as unknown)
}

async function handlerOn(t: TestContext, broker: Broker): Promise<Awaited<ReturnType<typeof startServer>>> {
  return startServer(t, { broker, identify: userOf })
}

describe('revocation over Redis', { timeout: 120_000 }, () => {
  let redis: RedisServer & { stop(): Promise<void> }
  before(async () => { redis = await startRedisServer() })
  after(async () => { await redis.stop() })

  it('two handler processes, revoked from a third process, end every matching stream within 1 s; the others go on', { timeout: 60_000 }, async (t) => {
    const handlers = [
      spawnChild(t, 'redis-handler-process.ts', [String(redis.port), 'node-redis']),
      spawnChild(t, 'redis-handler-process.ts', [String(redis.port), 'ioredis']),
    ]
    const revoker = spawnChild(t, 'redis-publisher-process.ts', [String(redis.port), 'room:1'])
    const ports = await Promise.all(handlers.map(async (handler) => Number((await handler.next('port'))['port'])))
    await revoker.next('ready')
    const admin = await probe(t, redis.port)
    await until(async () => (await numsub(admin, controlChannel('patchwire:'))) === 2, 10_000, 'both handler processes on the control channel')

    const revokedStreams: SseClient[] = []
    const kept: SseClient[] = []
    for (const port of ports) {
      revokedStreams.push(await openStream(t, port, 'room:1', [], '/?user=alice'))
      const multi = await openRaw(t, port, '/?topic=room:1&topic=room:2&user=alice')
      await until(() => multi.named('ready').length > 0, 5000, 'the multi-topic stream')
      revokedStreams.push(multi)
      kept.push(await openStream(t, port, 'room:1', [], '/?user=bob'))
    }
    assert.ok([...revokedStreams, ...kept].every((stream) => stream.response?.status === 200), 'every stream opened')

    const started = Date.now()
    revoker.process.send({ revoke: { identity: 'alice' } })
    await revoker.next('revoked')
    await until(() => revokedStreams.every((stream) => stream.closed), 1000, 'every stream of alice, on both processes, to end within 1 s')
    const elapsed = Date.now() - started
    t.diagnostic(`every matching stream on both processes ended ${elapsed} ms after revoke() was called in the third process`)
    assert.ok(elapsed < 1000, `within 1 s (${elapsed} ms)`)
    assert.deepEqual(revokedStreams.map(revokedTopics), [
      [{ topic: 'room:1' }], [{ topic: 'room:1' }, { topic: 'room:2' }],
      [{ topic: 'room:1' }], [{ topic: 'room:1' }, { topic: 'room:2' }],
    ], 'a revoked frame per topic of each stream')

    revoker.process.send({ from: 1, to: 1 })
    await revoker.next('published')
    await until(() => kept.every((stream) => stream.named('patch').length === 1), 5000, 'bob\'s streams to get the next patch')
    assert.ok(kept.every((stream) => !stream.closed), 'bob keeps his streams')
    for (const handler of handlers) handler.process.send({ stats: true })
    const stats = await Promise.all(handlers.map(async (handler) => (await handler.next('stats'))['stats'] as { revoked: number; connections: number }))
    assert.deepEqual(stats.map((s) => [s.revoked, s.connections]), [[2, 1], [2, 1]], 'each process ended two streams and kept one')
  })

  for (const lib of LIBS) {
    describe(lib.name, () => {
      it('reaches the handlers of every broker on the prefix, and of no other prefix', async (t) => {
        const prefix = uniquePrefix()
        const one = await brokerOn(t, lib, redis.port, { prefix })
        const two = await brokerOn(t, lib, redis.port, { prefix })
        const elsewhere = await brokerOn(t, lib, redis.port, { prefix: uniquePrefix() })
        const admin = await probe(t, redis.port)
        const servers = await Promise.all([one, two, elsewhere].map(({ broker }) => handlerOn(t, broker)))
        await until(async () => (await numsub(admin, controlChannel(prefix))) === 2, 5000, 'both brokers on the control channel')
        const streams = await Promise.all(servers.map((server) => openStream(t, server.port, 'doc', [], '/?user=u')))
        await revoke(one.broker, { topic: 'doc' })
        await Promise.all(streams.slice(0, 2).map((stream) => stream.waitForClose(1000)))
        assert.deepEqual(streams.slice(0, 2).map(revokedTopics), [[{ topic: 'doc' }], [{ topic: 'doc' }]], 'both handlers on the prefix, the sender\'s included')
        await publish(elsewhere.broker, 'doc', [['replace', '/x', 1]])
        await until(() => (streams[2] as SseClient).named('patch').length === 1, 5000, 'the other prefix\'s stream to go on')
        assert.equal(streams[2]?.closed, false, 'another prefix is not reached')
        assert.deepEqual([...one.errors, ...two.errors, ...elsewhere.errors], [], 'no errors')
      })

      it('listens on the control channel while a handler uses the broker, and lets it go when the last one closes', async (t) => {
        const prefix = uniquePrefix()
        const { broker } = await brokerOn(t, lib, redis.port, { prefix })
        const admin = await probe(t, redis.port)
        const first = createHandler({ broker })
        const second = createHandler({ broker })
        await until(async () => (await numsub(admin, controlChannel(prefix))) === 1, 5000, 'one SUBSCRIBE for both handlers')
        await first.close()
        assert.equal(await numsub(admin, controlChannel(prefix)), 1, 'still listening for the second handler')
        await second.close()
        await until(async () => (await numsub(admin, controlChannel(prefix))) === 0, 5000, 'the channel let go')
      })

      it('reports a message on the control channel that is not a revocation, and ends nothing', async (t) => {
        const prefix = uniquePrefix()
        const setup = await brokerOn(t, lib, redis.port, { prefix })
        const admin = await probe(t, redis.port)
        const server = await handlerOn(t, setup.broker)
        const stream = await openStream(t, server.port, 'doc', [], '/?user=u')
        await until(async () => (await numsub(admin, controlChannel(prefix))) === 1, 5000, 'the control channel')
        for (const message of ['not json', '{}', '{"identity":5}', '{"user":"u"}']) await admin.publish(controlChannel(prefix), message)
        await eventually(() => setup.errors.length === 4, 'the four reports')
        assert.ok(setup.errors.every((error) => error.code === 'ERR_PATCHWIRE_BROKER' && /revocation channel/.test(error.message)), `reported as broker errors: ${setup.errors.map((e) => e.message).join('; ')}`)
        assert.equal(stream.closed, false, 'nothing was ended')
      })

      it('keeps receiving revocations after the subscriber connection is cut and comes back', async (t) => {
        const prefix = uniquePrefix()
        const setup = await brokerOn(t, lib, redis.port, { prefix })
        const admin = await probe(t, redis.port)
        const server = await handlerOn(t, setup.broker)
        await openStream(t, server.port, 'doc', [], '/?user=u')
        await killSubscriber(admin, [controlChannel(prefix)])
        await until(async () => (await numsub(admin, controlChannel(prefix))) === 1, 10_000, 'the control channel subscribed again')
        const stream = await openStream(t, server.port, 'doc', [], '/?user=v')
        await revoke(setup.broker, { identity: 'v' })
        await stream.waitForClose(1000)
        assert.deepEqual(revokedTopics(stream), [{ topic: 'doc' }], 'revoked after the reconnect')
      })
    })
  }
})

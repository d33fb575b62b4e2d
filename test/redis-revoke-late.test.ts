/**
 * Revocations over Redis survive an outage of a process's subscriber: each
 * revocation is also appended to a log under the prefix, and a subscriber
 * that comes back reads there what it missed. Broker B's subscriber goes
 * through a proxy that cuts it and holds its reconnection while broker A
 * revokes; once it is back, B's streams open before the outage get their
 * `revoked` frames, those opened during it are sent back through
 * `authorize`, and nothing is delivered twice. A log that no longer reaches
 * back to what B heard last, and a read of the log that fails, are
 * reported, and so is a message on the channel without a log entry id.
 * Every case runs with node-redis and with ioredis clients.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it, type TestContext } from 'node:test'
import { createRedisBroker } from '../src/adapters/redis/index.ts'
import { compareIds, splitMessage } from '../src/adapters/redis/revocation-log.ts'
import { brokerOn, eventually, LIBS, numsub, probe, uniquePrefix, type Lib, type Probe, type Server, type Setup } from './helpers/redis.ts'
import { startRedisProxy, startRedisServer, type RedisProxy } from './helpers/redis-server.ts'
import { startServer, until } from './helpers/server.ts'
import { openStream, type SseClient } from './helpers/sse-client.ts'
import { publish, revoke, type NodeRequest, type PatchwireError, type Revocation } from '../src/index.ts'

const userOf = (req: NodeRequest): string | undefined => new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined

const revokedTopics = (client: SseClient): unknown[] => client.named('revoked').map((event) => JSON.parse(event.data) as unknown)

const isLoss = (error: PatchwireError): boolean => /lost the connection of the Redis subscriber/.test(error.message)
const isLogGap = (error: PatchwireError): boolean => /no longer holds every revocation/.test(error.message)
const isFailedRead = (error: PatchwireError): boolean => /could not read the revocation log/.test(error.message)

/** Broker B, whose subscriber goes through `proxy`, and broker A on the same prefix, which revokes. */
interface Outage {
  readonly a: Setup
  readonly b: Setup
  readonly proxy: RedisProxy
  readonly admin: Probe
  /** The control channel, and the log's key (the same name). */
  readonly channel: string
}

/**
 * Sets up an {@link Outage}; B's publisher goes through `publisherProxy`
 * when given, for a test that holds B's reads of the log.
 */
async function outage(t: TestContext, lib: Lib, port: number, publisherProxy?: RedisProxy, publishTimeoutMs?: number): Promise<Outage> {
  const prefix = uniquePrefix()
  const proxy = await startRedisProxy(port)
  t.after(() => proxy.close())
  const publisher = publisherProxy === undefined ? undefined : await lib.connect(t, publisherProxy.port)
  const b = await brokerOn(t, lib, port, { prefix, ...(publishTimeoutMs === undefined ? {} : { publishTimeoutMs }) }, await lib.connect(t, proxy.port), publisher)
  const a = await brokerOn(t, lib, port, { prefix })
  return { a, b, proxy, admin: await probe(t, port), channel: `${prefix}\u0000revocations` }
}

/** B listens on the control channel (its handler or listener subscribed it). */
async function listening(o: Outage): Promise<void> {
  await until(async () => (await numsub(o.admin, o.channel)) === 1, 5000, 'B on the control channel')
}

/**
 * Cuts B's subscriber and holds its reconnection (its commands never reach
 * Redis), until {@link back}.
 * @returns `Date.now()` just before the cut
 */
async function cutB(o: Outage): Promise<number> {
  const cutAt = Date.now()
  o.proxy.cut(0)
  o.proxy.holdCommands()
  await eventually(async () => o.b.errors.some(isLoss) && (await numsub(o.admin, o.channel)) === 0, 'B\'s subscriber to be down: the loss reported, and nobody on the control channel')
  return cutAt
}

/** Lets B's subscriber reconnect. */
function back(o: Outage): void {
  o.proxy.releaseCommands()
}

/** Records the revocations B delivers to its listeners, in order. */
function heardOn(t: TestContext, o: Outage): { heard: Revocation[] } {
  const heard: Revocation[] = []
  const stop = o.b.broker.onRevoke?.((revocation) => heard.push(revocation))
  t.after(() => stop?.())
  return { heard }
}

/**
 * A tenth of a second has passed: a stream opened before counts as open
 * before a loss that follows (the core compares opening times in tenths of
 * a second, a stream of the loss's tenth counting as opened since).
 */
async function clockMoves(): Promise<void> {
  const now = Date.now()
  await until(() => Date.now() >= now + 100, 1000, 'the clock to move on a tenth of a second')
}

describe('the revocation log\'s ids and messages', () => {
  it('orders entry ids by milliseconds, then sequence, as numbers', () => {
    const cases: [string, string, number][] = [
      ['9-0', '10-0', -1], ['10-0', '9-0', 1], ['5-9', '5-10', -1], ['5-10', '5-10', 0],
      ['0-0', '1-0', -1], ['1733300000000-18446744073709551614', '1733300000000-18446744073709551615', -1],
    ]
    for (const [a, b, order] of cases) assert.equal(Math.sign(compareIds(a, b)), order, `${a} against ${b}`)
  })

  it('splits <id> <json>, and refuses anything else', () => {
    assert.deepEqual(splitMessage('1733300000000-0 {"identity":"a b"}'), { id: '1733300000000-0', text: '{"identity":"a b"}' }, 'an id, then the JSON')
    assert.equal(splitMessage('{"identity":"a b"}'), undefined, 'JSON without an id')
    assert.equal(splitMessage('01-0 {}'), undefined, 'not an id Redis writes')
  })
})

describe('revocations over Redis across an outage of the subscriber', { timeout: 120_000 }, () => {
  let redis: Server
  before(async () => { redis = await startRedisServer() })
  after(async () => { await redis.stop() })

  for (const lib of LIBS) {
    describe(lib.name, () => {
      it('ends, once B is back, its streams open before the outage with revoked frames, and sends those opened during it back through authorize', { timeout: 30_000 }, async (t) => {
        const o = await outage(t, lib, redis.port)
        const server = await startServer(t, { broker: o.b.broker, identify: userOf, retryMs: 2000 })
        await listening(o)
        const before = await openStream(t, server.port, 'doc', [], '/?user=a')
        const other = await openStream(t, server.port, 'doc', [], '/?user=b')
        await clockMoves()
        await cutB(o)
        const since = await openStream(t, server.port, 'doc', [], '/?user=a')
        assert.equal(since.response?.status, 200, 'a stream opens on B while its subscriber is down')
        await revoke(o.a.broker, { identity: 'a' })
        assert.equal(before.closed, false, 'B cannot hear the revocation while its subscriber is down')
        back(o)
        await before.waitForClose(5000)
        await since.waitForClose(5000)
        assert.deepEqual(revokedTopics(before), [{ topic: 'doc' }], 'the stream open before the outage gets its revoked frame')
        assert.equal(since.named('revoked').length, 0, `the stream opened during the outage gets no revoked frame: ${JSON.stringify(since.raw)}`)
        assert.equal(since.retries.length, 2, `it ends with a retry:, as an expired stream: ${JSON.stringify(since.raw)}`)
        await publish(o.a.broker, 'doc', [['replace', '/x', 1]])
        await until(() => other.named('patch').length === 1, 5000, 'b\'s stream to get the next patch')
        assert.equal(other.closed, false, 'another identity keeps its stream')
        assert.deepEqual([server.handler.stats().revoked, server.handler.stats().expired], [1, 1], 'one stream revoked, one sent back through authorize')
        assert.deepEqual(o.b.errors.filter((error) => !isLoss(error)), [], 'nothing reported but the loss')
      })

      it('delivers each revocation once: one heard before the outage is not delivered again, one made while the log is read is delivered once', { timeout: 30_000 }, async (t) => {
        const reads = await startRedisProxy(redis.port)
        t.after(() => reads.close())
        const o = await outage(t, lib, redis.port, reads)
        const { heard } = heardOn(t, o)
        await listening(o)
        await revoke(o.a.broker, { topic: 'first' })
        await eventually(() => heard.length === 1, 'the first revocation, heard live')
        const cutAt = await cutB(o)
        await revoke(o.a.broker, { topic: 'missed' })
        // B's read of the log waits at the proxy while A revokes again: the
        // revocation is then both heard on the channel and in the log read.
        reads.holdCommands()
        back(o)
        await eventually(() => reads.heldCommands.includes(o.channel), 'B\'s read of the log')
        await listening(o)
        await revoke(o.a.broker, { topic: 'during' })
        reads.releaseCommands()
        await eventually(() => heard.some((revocation) => revocation.topic === 'during'), 'the revocation made during the read')
        await revoke(o.a.broker, { topic: 'after' })
        await eventually(() => heard.some((revocation) => revocation.topic === 'after'), 'the revocation made after the return')
        const lostAt = heard[1]?.lostAt ?? 0
        assert.ok(lostAt >= cutAt && lostAt <= Date.now(), `lostAt ${lostAt} is the moment of the cut (${cutAt}) or after`)
        assert.deepEqual(heard, [{ topic: 'first' }, { topic: 'missed', lostAt }, { topic: 'during', lostAt }, { topic: 'after' }], 'each revocation once, in order; the ones read from the log with lostAt')
        assert.deepEqual(o.b.errors.filter((error) => !isLoss(error)), [], 'nothing reported but the loss')
      })

      it('reports once that revocations may have been missed when the log no longer reaches back to the last one heard, and delivers what it holds', { timeout: 30_000 }, async (t) => {
        const o = await outage(t, lib, redis.port)
        const { heard } = heardOn(t, o)
        await listening(o)
        await revoke(o.a.broker, { topic: 'first' })
        await eventually(() => heard.length === 1, 'the first revocation, heard live')
        await cutB(o)
        await revoke(o.a.broker, { topic: 'trimmed' })
        await o.admin.sendCommand(['XTRIM', o.channel, 'MAXLEN', '0'])
        await revoke(o.a.broker, { topic: 'kept' })
        back(o)
        await eventually(() => heard.length === 2, 'the revocation the log still holds')
        await revoke(o.a.broker, { topic: 'after' })
        await eventually(() => heard.length === 3, 'the revocation made after the return')
        assert.deepEqual(heard.map((revocation) => [revocation.topic, revocation.lostAt !== undefined]), [['first', false], ['kept', true], ['after', false]], 'what the log holds, late; the trimmed one is lost')
        const gaps = o.b.errors.filter(isLogGap)
        assert.equal(gaps.length, 1, `reported once: ${o.b.errors.map((error) => error.message).join('; ')}`)
        assert.equal(gaps[0]?.code, 'ERR_PATCHWIRE_BROKER', 'as a broker error')
        assert.match(gaps[0]?.message ?? '', /may have been missed.*end at their until/, 'saying what was lost and what still holds')
      })

      it('reports a read of the log that fails (where it ends, or what was missed), and still delivers what it hears', { timeout: 30_000 }, async (t) => {
        const reads = await startRedisProxy(redis.port)
        t.after(() => reads.close())
        const o = await outage(t, lib, redis.port, reads, 300)
        reads.holdCommands()
        const { heard } = heardOn(t, o)
        await eventually(() => o.b.errors.some(isFailedRead), 'the read of where the log ends to time out')
        reads.releaseCommands()
        await listening(o)
        await revoke(o.a.broker, { topic: 'live' })
        await eventually(() => heard.length === 1, 'a revocation heard live')
        await cutB(o)
        await revoke(o.a.broker, { topic: 'missed' })
        reads.holdCommands()
        back(o)
        await eventually(() => o.b.errors.filter(isFailedRead).length === 2, 'the read of the missed revocations to time out')
        reads.releaseCommands()
        await revoke(o.a.broker, { topic: 'after' })
        await eventually(() => heard.length === 2, 'the revocation made after the return')
        assert.deepEqual(heard, [{ topic: 'live' }, { topic: 'after' }], 'what it heard; the missed one could not be read')
        const failed = o.b.errors.filter(isFailedRead)
        assert.ok(failed.every((error) => error.code === 'ERR_PATCHWIRE_BROKER'), 'broker errors')
        assert.match(failed[1]?.message ?? '', /may have been missed.*end at their until/, 'saying what was lost and what still holds')
      })

      it('reports and drops a message on the channel that has no log entry id, and goes on', async (t) => {
        const o = await outage(t, lib, redis.port)
        const server = await startServer(t, { broker: o.b.broker, identify: userOf })
        const stream = await openStream(t, server.port, 'doc', [], '/?user=a')
        await listening(o)
        await o.admin.publish(o.channel, '{"identity":"a"}')
        await eventually(() => o.b.errors.length === 1, 'the message to be reported')
        assert.match(o.b.errors[0]?.message ?? '', /not a revocation; it was dropped/, `reported as not a revocation: ${o.b.errors[0]?.message}`)
        assert.equal(stream.closed, false, 'the stream goes on')
        await revoke(o.a.broker, { identity: 'a' })
        await stream.waitForClose(5000)
        assert.deepEqual(revokedTopics(stream), [{ topic: 'doc' }], 'a revocation after it is heard')
      })

      it('appends a revocation to the log, and rejects revoke() when Redis refuses the log\'s key', async (t) => {
        const prefix = uniquePrefix()
        const admin = await probe(t, redis.port)
        const publisher = await lib.connect(t, redis.port)
        const broker = createRedisBroker({ publisher: publisher.client, prefix, onError: () => undefined })
        const log = `${prefix}\u0000revocations`
        await revoke(broker, { identity: 'u', topic: 't' })
        const entries = await admin.sendCommand(['XRANGE', log, '-', '+']) as [string, string[]][]
        assert.deepEqual(entries.map(([, fields]) => fields), [['r', '{"identity":"u","topic":"t"}']], 'the revocation\'s JSON, in the log')
        await admin.sendCommand(['DEL', log])
        await admin.sendCommand(['SET', log, 'not a stream'])
        await assert.rejects(revoke(broker, { identity: 'u' }), (error: PatchwireError) => error.code === 'ERR_PATCHWIRE_BROKER' && /did not take the revocation/.test(error.message) && /WRONGTYPE/.test(String((error.cause as Error).message)), 'Redis refused it: not taken')
      })
    })
  }
})

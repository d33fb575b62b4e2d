/**
 * The delivery barrier of patchwire/redis: `position`, `ready` and a
 * replay from Redis settle only once every message up to their position
 * that this process's listeners get has reached them. A message of another
 * topic, published just before, may still be on its way on the subscriber
 * connection when the publisher connection has the answer; a stream that
 * started at that position would skip it for ever.
 *
 * The subscriber (and, for `ready`, the publisher) goes through a TCP proxy
 * that holds Redis's replies (or the client's commands), so that such a
 * message is provably on its way.
 * Every case runs with node-redis and with ioredis clients.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import { Barrier } from '../src/adapters/redis/barrier.ts'
import { PatchwireError } from '../src/errors.ts'
import { brokerOn, commandCalls, eventually, isBrokerError, LIBS, probe, seqOf, uniquePrefix } from './helpers/redis.ts'
import type { Lib, Server, Setup } from './helpers/redis.ts'
import { startRedisProxy, startRedisServer } from './helpers/redis-server.ts'
import type { RedisProxy } from './helpers/redis-server.ts'
import { startServer } from './helpers/server.ts'
import { openRaw, openStream } from './helpers/sse-client.ts'

/** How many `PING` commands the client sent through the proxy. */
function pings(proxy: RedisProxy): number {
  return proxy.sent.match(/\r\nPING\r\n/gi)?.length ?? 0
}

/** How many `PING` answers the proxy holds (RESP2 in subscribed mode: `pong`; RESP3: `+PONG`). */
function heldPongs(proxy: RedisProxy): number {
  return proxy.held.toString('latin1').match(/pong/gi)?.length ?? 0
}

/** Lets every callback that is already due run (the broker's answers, its batching turn). */
async function settleTurns(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('patchwire/redis delivery barrier', { timeout: 120_000 }, () => {
  let server: Server
  before(async () => { server = await startRedisServer() })
  after(async () => { await server.stop() })

  /** A broker whose subscriber goes through a proxy, and a second broker on the same prefix to publish with. */
  async function proxied(t: TestContext, lib: Lib, options: Parameters<typeof brokerOn>[3] = {}): Promise<{ proxy: RedisProxy, x: Setup, other: Setup }> {
    const proxy = await startRedisProxy(server.port)
    t.after(() => proxy.close())
    const prefix = uniquePrefix()
    const x = await brokerOn(t, lib, server.port, { prefix, ...options }, await lib.connect(t, proxy.port))
    const other = await brokerOn(t, lib, server.port, { prefix })
    return { proxy, x, other }
  }

  for (const lib of LIBS) {
    describe(`with ${lib.name} clients`, () => {
      it('position settles only after a message of another topic, published before it, was delivered', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib)
        const order: string[] = []
        await x.broker.subscribe('a', (_payload, id) => order.push(`a ${id}`)).ready
        await x.broker.subscribe('b', (_payload, id) => order.push(`b ${id}`)).ready
        proxy.hold()
        const b1 = await other.broker.publish('b', '["b1"]') as string
        const sent = pings(proxy)
        const position = Promise.resolve(x.broker.position('a')).then((id) => {
          order.push(`position ${id}`)
          return id
        })
        // Redis has answered the position and the PING sent after it; the
        // PING's answer waits behind b1 in the proxy. (Or, without the
        // barrier, the position settled at once.)
        await eventually(() => order.length > 0 || (pings(proxy) === sent + 1 && heldPongs(proxy) === 1), 'the PING answered, held')
        await settleTurns()
        assert.deepEqual(order, [], 'position settled while a message before it was still on its way')
        proxy.release()
        const id = await position
        assert.ok(seqOf(id) >= seqOf(b1), `the position ${id} is not behind b1 ${b1}`)
        assert.deepEqual(order, [`b ${b1}`, `position ${id}`], 'b1 was delivered before the position settled')
        assert.deepEqual(x.errors, [], 'the broker reported no error')
      })

      it('ready settles only after a message of another topic, published before the start position, was delivered', { timeout: 15_000 }, async (t) => {
        const subscriberProxy = await startRedisProxy(server.port)
        const publisherProxy = await startRedisProxy(server.port)
        t.after(() => Promise.all([subscriberProxy.close(), publisherProxy.close()]))
        const prefix = uniquePrefix()
        const x = await brokerOn(t, lib, server.port, { prefix }, await lib.connect(t, subscriberProxy.port), await lib.connect(t, publisherProxy.port))
        const other = await brokerOn(t, lib, server.port, { prefix })
        const order: string[] = []
        await x.broker.subscribe('b', (_payload, id) => order.push(`b ${id}`)).ready
        // The start read of `a` waits in the proxy, so that b1 is published
        // before Redis runs it and delivered after its answer.
        publisherProxy.holdCommands()
        const ready = Promise.resolve(x.broker.subscribe('a', () => undefined).ready).then(() => order.push('ready'))
        await eventually(() => /EVAL/i.test(publisherProxy.heldCommands), 'the start read, held')
        subscriberProxy.hold()
        const b1 = await other.broker.publish('b', '["b1"]') as string
        const sent = pings(subscriberProxy)
        publisherProxy.releaseCommands()
        await eventually(() => order.length > 0 || (pings(subscriberProxy) === sent + 1 && heldPongs(subscriberProxy) === 1), 'the PING answered, held')
        await settleTurns()
        assert.deepEqual(order, [], 'ready settled while a message before its start was still on its way')
        subscriberProxy.release()
        await ready
        assert.deepEqual(order, [`b ${b1}`, 'ready'], 'b1 was delivered before ready settled')
        assert.deepEqual(x.errors, [], 'the broker reported no error')
      })

      it('gives a multi-topic stream that resumes while a message of one of its topics is on its way that message', { timeout: 15_000 }, async (t) => {
        const subscriberProxy = await startRedisProxy(server.port)
        const publisherProxy = await startRedisProxy(server.port)
        t.after(() => Promise.all([subscriberProxy.close(), publisherProxy.close()]))
        const prefix = uniquePrefix()
        const x = await brokerOn(t, lib, server.port, { prefix }, await lib.connect(t, subscriberProxy.port), await lib.connect(t, publisherProxy.port))
        const other = await brokerOn(t, lib, server.port, { prefix })
        const web = await startServer(t, { broker: x.broker })
        // As for a page that rendered both topics: Redis knows where `a` was.
        await other.broker.position('a')
        const onB = await openStream(t, web.port, 'b')
        const from = onB.named('ready')[0]?.id ?? ''
        // A page that rendered at `from` subscribes to both; `a` is new to
        // the handler, and its position is read while b1 is on its way.
        publisherProxy.holdCommands()
        const both = await openRaw(t, web.port, `/?topic=a&topic=b&lastEventId=${encodeURIComponent(from)}`)
        await eventually(() => /EVAL/i.test(publisherProxy.heldCommands), 'the start read of a, held')
        subscriberProxy.hold()
        const b1 = await other.broker.publish('b', '[["replace","/n",1]]') as string
        publisherProxy.releaseCommands()
        await eventually(() => both.named('ready').length > 0 || heldPongs(subscriberProxy) > 0, 'the stream ready, or the PING answered')
        subscriberProxy.release()
        await eventually(() => onB.named('patch').length === 1, 'b1 on the stream of b')
        await eventually(() => both.named('ready').length > 0, 'the stream ready')
        await settleTurns()
        assert.deepEqual(both.named('patch').map((event) => event.id), [b1], `the stream on a and b skipped b1: ${JSON.stringify(both.raw)}`)
        assert.deepEqual(both.named('reset'), [], 'the resume is exact: no reset')
      })

      it('a replay answered by Redis settles only after the messages of other topics before its last frame were delivered', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib)
        const order: string[] = []
        await x.broker.subscribe('b', (_payload, id) => order.push(`b ${id}`)).ready
        const from = await x.broker.position('a')
        proxy.hold()
        const b1 = await other.broker.publish('b', '["b1"]') as string
        const a1 = await other.broker.publish('a', '["a1"]') as string
        const sent = pings(proxy)
        // `a` is not subscribed here: Redis answers.
        const replay = Promise.resolve(x.broker.replay('a', from)).then((result) => {
          order.push('replay')
          return result
        })
        await eventually(() => order.length > 0 || (pings(proxy) === sent + 1 && heldPongs(proxy) === 1), 'the PING answered, held')
        await settleTurns()
        assert.deepEqual(order, [], 'the replay settled while a message before its frame was still on its way')
        proxy.release()
        assert.deepEqual(await replay, { frames: [{ id: a1, payload: '["a1"]' }] }, 'the replay from Redis answers a1')
        assert.deepEqual(order, [`b ${b1}`, 'replay'], 'b1 was delivered before the replay settled')
      })

      it('needs no round trip on the subscriber when nothing is subscribed, or the position is already delivered or confirmed', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib)
        // A process that only renders pages: the subscriber is not asked.
        proxy.hold()
        await other.broker.publish('elsewhere', '[1]')
        await x.broker.position('page')
        assert.equal(pings(proxy), 0, 'no PING with nothing subscribed')
        proxy.release()

        const got: string[] = []
        await x.broker.subscribe('a', (_payload, id) => got.push(id ?? '')).ready
        const afterReady = pings(proxy)
        // Nothing published since the start position was confirmed.
        await x.broker.position('a')
        assert.equal(pings(proxy), afterReady, 'no PING for a position confirmed by ready, with nothing published since')
        // The position is that of a message already delivered.
        const a1 = await other.broker.publish('a', '[1]') as string
        await eventually(() => got.includes(a1), 'the message')
        assert.equal(await x.broker.position('a'), a1, 'the position is that of a1, delivered')
        assert.equal(pings(proxy), afterReady, 'no PING for the position of a message already delivered')
      })

      it('shares one round trip among the positions asked in one turn', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib)
        const admin = await probe(t, server.port)
        await x.broker.subscribe('a', () => undefined).ready
        await other.broker.publish('elsewhere', '[1]')
        const before = pings(proxy)
        const reads = await commandCalls(admin, ['evalsha', 'eval'])
        const positions = await Promise.all(Array.from({ length: 100 }, (_, i) => x.broker.position(`t${i}`)))
        assert.equal(new Set(positions).size, 1, `the 100 positions of one turn are one: ${[...new Set(positions)].join(', ')}`)
        assert.equal(pings(proxy), before + 1, 'one PING for the 100 positions')
        assert.equal(await commandCalls(admin, ['evalsha', 'eval']), reads + 1, 'one read from Redis for the 100 positions')
      })

      it('settles a position whose PING the dropped connection cut off, once what the drop lost was refilled', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib)
        const order: string[] = []
        await x.broker.subscribe('a', () => undefined).ready
        await x.broker.subscribe('b', (_payload, id) => order.push(`b ${id}`)).ready
        proxy.hold()
        const b1 = await other.broker.publish('b', '["b1"]') as string
        // Past b1, so that the refill of b1 alone does not cover the position.
        await other.broker.publish('elsewhere', '[1]')
        const sent = pings(proxy)
        const position = Promise.resolve(x.broker.position('a')).then((id) => {
          order.push('position')
          return id
        })
        await eventually(() => order.length > 0 || (pings(proxy) === sent + 1 && heldPongs(proxy) === 1), 'the PING answered, held')
        // b1 and the PING's answer are lost with the connection.
        proxy.cut(0)
        await position
        assert.deepEqual(order, [`b ${b1}`, 'position'], 'b1, refilled after the drop, was delivered before the position settled')
        assert.ok(pings(proxy) >= sent + 2, 'a PING on the new connection')
      })

      it('rejects a position after publishTimeoutMs when the subscriber does not answer, with ERR_PATCHWIRE_BROKER', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib, { publishTimeoutMs: 300 })
        await x.broker.subscribe('a', () => undefined).ready
        proxy.hold()
        await other.broker.publish('elsewhere', '[1]')
        const started = performance.now()
        await assert.rejects(Promise.resolve(x.broker.position('a')), (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match((error as Error).message, /did not confirm within 300 ms \(publishTimeoutMs\)/, `the message names the timeout: ${(error as Error).message}`)
          return true
        }, 'the position rejects with ERR_PATCHWIRE_BROKER')
        const elapsed = performance.now() - started
        assert.ok(elapsed >= 290, `rejected after ${elapsed} ms`)
        proxy.release()
      })

      it('rejects a replay from Redis after publishTimeoutMs when the subscriber does not deliver what came before its frames', { timeout: 15_000 }, async (t) => {
        const { proxy, x, other } = await proxied(t, lib, { publishTimeoutMs: 300 })
        await x.broker.subscribe('b', () => undefined).ready
        const from = await x.broker.position('a')
        proxy.hold()
        await other.broker.publish('b', '["b1"]')
        await other.broker.publish('a', '["a1"]')
        await assert.rejects(Promise.resolve(x.broker.replay('a', from)), (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match((error as Error).message, /did not confirm within 300 ms/, `the message names the timeout: ${(error as Error).message}`)
          return true
        }, 'the replay rejects with ERR_PATCHWIRE_BROKER')
        proxy.release()
      })

      it('rejects a waiting position when the subscriber closes for good', { timeout: 15_000 }, async (t) => {
        const proxy = await startRedisProxy(server.port)
        const prefix = uniquePrefix()
        const x = await brokerOn(t, lib, server.port, { prefix }, await lib.connect(t, proxy.port, 1))
        const other = await brokerOn(t, lib, server.port, { prefix })
        await x.broker.subscribe('a', () => undefined).ready
        proxy.hold()
        await other.broker.publish('elsewhere', '[1]')
        const sent = pings(proxy)
        const position = Promise.resolve(x.broker.position('a'))
        await eventually(() => pings(proxy) === sent + 1, 'the PING')
        // The client cannot reconnect: the proxy is gone.
        await proxy.close()
        await assert.rejects(position, (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match((error as Error).message, /subscriber closed for good/, `the message says the subscriber closed for good: ${(error as Error).message}`)
          return true
        }, 'the waiting position rejects with ERR_PATCHWIRE_BROKER')
      })

      it('rejects a position when Redis refuses the subscriber\'s PING, naming the fix', { timeout: 15_000 }, async (t) => {
        const own = await startRedisServer()
        t.after(() => own.stop())
        const prefix = uniquePrefix()
        const admin = await probe(t, own.port)
        const x = await brokerOn(t, lib, own.port, { prefix })
        const other = await brokerOn(t, lib, own.port, { prefix })
        await x.broker.subscribe('a', () => undefined).ready
        await admin.sendCommand(['ACL', 'SETUSER', 'default', '-ping'])
        await other.broker.publish('elsewhere', '[1]')
        await assert.rejects(Promise.resolve(x.broker.position('a')), (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match((error as Error).message, /refused PING.*allow PING/, `the message names the refused PING and the fix: ${(error as Error).message}`)
          return true
        }, 'the position rejects with ERR_PATCHWIRE_BROKER')
      })
    })
  }
})

describe('Barrier (the logic, with a fake feed and PING)', () => {
  /** A barrier over a feed whose state the test sets, and PINGs it answers by hand. */
  function fake(timeoutMs = 1000) {
    const feed = { processed: 0, seen: 0, held: false }
    const pings: { resolve(): void, reject(error: unknown): void }[] = []
    const barrier = new Barrier({
      ping: () => new Promise<void>((resolve, reject) => { pings.push({ resolve, reject }) }),
      processed: () => feed.processed,
      seen: () => feed.seen,
      held: () => feed.held,
      timeoutMs,
    })
    return { feed, pings, barrier }
  }

  /** Records when a wait settles. */
  function track(promise: Promise<void>): { state: string } {
    const outcome = { state: 'waiting' }
    promise.then(() => { outcome.state = 'resolved' }, (error: unknown) => { outcome.state = `rejected: ${(error as Error).message}` })
    return outcome
  }

  it('settles at once for a position already processed; sends nothing before the feed has caught up once', async () => {
    const { feed, pings, barrier } = fake()
    feed.processed = 10
    const now = track(barrier.wait(10))
    await settleTurns()
    assert.equal(now.state, 'resolved', 'a wait for a position already processed settles at once')
    const early = track(barrier.wait(12))
    await settleTurns()
    assert.equal(pings.length, 0, 'a PING before the subscriber is up')
    barrier.caughtUp()
    await settleTurns()
    assert.equal(pings.length, 1, 'one PING once the feed has caught up')
    feed.processed = 12
    barrier.caughtUp()
    await settleTurns()
    assert.equal(early.state, 'resolved', 'the early wait settles once its position is processed')
  })

  it('shares one PING among the waits of a turn, and a later wait already covered needs none', async () => {
    const { feed, pings, barrier } = fake()
    barrier.caughtUp()
    feed.seen = 20
    const waits = [5, 20, 15].map((position) => track(barrier.wait(position)))
    await settleTurns()
    assert.equal(pings.length, 1, 'one PING for the three waits of the turn')
    pings[0]?.resolve()
    await settleTurns()
    assert.deepEqual(waits.map((wait) => wait.state), ['resolved', 'resolved', 'resolved'], 'its answer settles the three waits')
    const covered = track(barrier.wait(20))
    await settleTurns()
    assert.equal(covered.state, 'resolved', 'a later wait the answer covers settles')
    assert.equal(pings.length, 1, 'without a second PING')
  })

  it('takes an answer received while the feed holds messages back into account once it has caught up', async () => {
    const { feed, pings, barrier } = fake()
    barrier.caughtUp()
    const wait = track(barrier.wait(7))
    await settleTurns()
    feed.held = true
    pings[0]?.resolve()
    await settleTurns()
    assert.equal(wait.state, 'waiting', 'settled while what came before the answer was held back')
    feed.held = false
    barrier.caughtUp()
    await settleTurns()
    assert.equal(wait.state, 'resolved', 'the wait settles once the feed has caught up')
    assert.equal(pings.length, 1, 'on the answer it had, without a second PING')
  })

  it('ignores an answer from before a drop and sends a new PING once the feed has caught up again', async () => {
    const { pings, barrier } = fake()
    barrier.caughtUp()
    const wait = track(barrier.wait(7))
    await settleTurns()
    barrier.lost()
    // ioredis sends an unanswered command again on the new connection.
    pings[0]?.resolve()
    await settleTurns()
    assert.equal(wait.state, 'waiting', 'an answer from before the drop does not settle the wait')
    barrier.caughtUp()
    await settleTurns()
    assert.equal(pings.length, 2, 'a new PING once the feed has caught up again')
    pings[1]?.resolve()
    await settleTurns()
    assert.equal(wait.state, 'resolved', 'its answer settles the wait')
  })

  it('sends a PING cut off by a drop again (node-redis rejects it), and rejects the waits of a PING Redis refused', async () => {
    const { pings, barrier } = fake()
    barrier.caughtUp()
    const cut = track(barrier.wait(7))
    await settleTurns()
    barrier.lost()
    pings[0]?.reject(new Error('Socket closed unexpectedly'))
    await settleTurns()
    assert.equal(cut.state, 'waiting', 'a PING cut off by the drop does not reject the wait')
    barrier.caughtUp()
    await settleTurns()
    pings[1]?.reject(new Error('NOPERM'))
    await settleTurns()
    assert.match(cut.state, /^rejected: the Redis subscriber refused PING/, 'a PING Redis refused rejects the wait')
  })

  it('rejects after timeoutMs, and every wait when the subscriber closes for good', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const { barrier } = fake(250)
    barrier.caughtUp()
    const late = track(barrier.wait(7))
    t.mock.timers.tick(249)
    await settleTurns()
    assert.equal(late.state, 'waiting', 'still waiting 1 ms before timeoutMs')
    t.mock.timers.tick(1)
    await settleTurns()
    assert.match(late.state, /did not confirm within 250 ms \(publishTimeoutMs\) that it delivered every message up to position 7/, 'rejected at timeoutMs, naming it and the position')
    const closing = track(barrier.wait(8))
    barrier.closed(new PatchwireError('ERR_PATCHWIRE_BROKER', 'closed for good'))
    await settleTurns()
    assert.equal(closing.state, 'rejected: closed for good', 'a wait is rejected with the error the subscriber closed with')
  })
})

/**
 * patchwire/redis against real Redis: the shared server on 127.0.0.1:6379
 * for normal cases (a unique channel prefix per test, so parallel runs do not
 * collide), and private redis-server instances for kill, pause and restart.
 * Every case runs with node-redis and with ioredis clients.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { EventEmitter } from 'node:events'
import { after, before, beforeEach, describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { createRedisBroker } from '../src/adapters/redis/index.ts'
import type { RedisBrokerOptions, RedisClient } from '../src/adapters/redis/index.ts'
import { publish } from '../src/broker.js'
import type { Broker } from '../src/broker.js'
import { PatchwireError } from '../src/errors.js'
import { startRedisProxy, startRedisServer } from './helpers/redis-server.js'
import type { RedisServer } from './helpers/redis-server.js'
import { startServer } from './helpers/server.js'
import { openStream } from './helpers/sse-client.js'

const SHARED_PORT = 6379
const HOST = '127.0.0.1'
const WAIT_MS = 5000

interface Connection {
  client: RedisClient
  close(): void
}

interface Lib {
  name: string
  /**
   * A connected client, closed after the test (even when connecting fails);
   * it reconnects fast so that restart tests stay short, and gives up for
   * good after `giveUpAfter` failed attempts (default: never). It has no
   * `error` listener: the broker must add one. (Removing a listener from a
   * node-redis client detaches all later ones, so none is added for the
   * connect phase.)
   */
  connect(t: TestContext, port: number, giveUpAfter?: number): Promise<Connection>
  /** A client that has not connected yet. */
  unconnected(port: number): { client: RedisClient, connect(): Promise<unknown>, close(): void }
}

const nodeRedis: Lib = {
  name: 'node-redis',
  async connect(t, port, giveUpAfter = Number.POSITIVE_INFINITY) {
    const client = createClient({ socket: { host: HOST, port, reconnectStrategy: (retries: number) => retries >= giveUpAfter ? new Error('gave up') : Math.min(20 * retries, 200) } })
    const close = (): void => { if (client.isOpen) client.destroy() }
    t.after(close)
    await client.connect()
    return { client, close }
  },
  unconnected(port) {
    const client = createClient({ socket: { host: HOST, port } })
    return { client, connect: () => client.connect(), close: () => { if (client.isOpen) client.destroy() } }
  },
}

const ioRedis: Lib = {
  name: 'ioredis',
  async connect(t, port, giveUpAfter = Number.POSITIVE_INFINITY) {
    // ioredis counts from 1, node-redis from 0.
    const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: (times: number) => times > giveUpAfter ? null : Math.min(20 * times, 200) })
    const close = (): void => client.disconnect()
    t.after(close)
    await client.connect()
    return { client, close }
  },
  unconnected(port) {
    const client = new Redis({ host: HOST, port, lazyConnect: true })
    // A command sent to a lazy ioredis client starts the connection itself.
    const connect = (): Promise<unknown> => client.status === 'wait' ? client.connect() : once(client, 'ready')
    return { client, connect, close: () => client.disconnect() }
  },
}

const LIBS = [nodeRedis, ioRedis]

/**
 * A broker over two fresh clients of `lib` (a `subscriber` of its own when
 * given); everything is closed after the test.
 */
async function brokerOn(t: TestContext, lib: Lib, port: number, options: Partial<RedisBrokerOptions> = {}, subscriber?: Connection): Promise<{ broker: Broker, errors: PatchwireError[], publisher: Connection, subscriber: Connection }> {
  const publisher = await lib.connect(t, port)
  subscriber ??= await lib.connect(t, port)
  const errors: PatchwireError[] = []
  const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, onError: (error) => errors.push(error), ...options })
  for (const { client } of [publisher, subscriber]) {
    // Without one, a lost connection crashes the process; checked here so
    // that a regression fails the tests instead of crashing the run.
    assert.ok((client as unknown as EventEmitter).listenerCount('error') > 0, 'the broker must listen to error events')
  }
  return { broker, errors, publisher, subscriber }
}

/** A plain node-redis client for assertions: PUBSUB NUMSUB, MONITOR, raw SUBSCRIBE. */
async function probe(t: TestContext, port = SHARED_PORT) {
  const client = createClient({ socket: { host: HOST, port } })
  // A private server may be stopped first (clean-ups run in the order they
  // were registered): that must not crash the run.
  client.on('error', () => undefined)
  await client.connect()
  t.after(() => client.destroy())
  return client
}

async function numsub(client: Awaited<ReturnType<typeof probe>>, channel: string): Promise<number> {
  const reply = await client.sendCommand(['PUBSUB', 'NUMSUB', channel]) as [string, number]
  return Number(reply[1])
}

/**
 * Records, through MONITOR, the commands Redis runs on channels of `prefix`.
 * `count(name, channel)` tells how many `name` commands (`subscribe`,
 * `unsubscribe`) it saw for the channel; `barrier()` resolves once MONITOR
 * has shown every command Redis ran before it was called.
 */
async function monitorOf(t: TestContext, prefix: string, port = SHARED_PORT) {
  const admin = await probe(t, port)
  const monitor = await probe(t, port)
  const seen: string[] = []
  await monitor.monitor((line: string) => { if (line.includes(prefix)) seen.push(line) })
  return {
    count: (name: string, channel: string): number => seen.filter((line) => line.toLowerCase().includes(`"${name}" "${channel.toLowerCase()}"`)).length,
    async barrier(): Promise<void> {
      const marker = `${prefix}barrier:${randomUUID()}`
      await admin.sendCommand(['ECHO', marker])
      await eventually(() => seen.some((line) => line.includes(marker)), 'the MONITOR barrier')
    },
  }
}

/** ACL: whether Redis lets the default user (every client of the tests) run SUBSCRIBE. */
async function allowSubscribe(client: Awaited<ReturnType<typeof probe>>, allowed: boolean): Promise<void> {
  await client.sendCommand(['ACL', 'SETUSER', 'default', allowed ? '+subscribe' : '-subscribe'])
}

/** Where each PUBSUB reply (`subscribe`, `unsubscribe`; RESP2 or RESP3) in `bytes` ends. */
function pubsubReplies(bytes: Buffer): number[] {
  return [...bytes.toString('latin1').matchAll(/[*>]3\r\n\$\d+\r\n(?:un)?subscribe\r\n\$\d+\r\n[^\r]*\r\n:\d+\r\n/g)]
    .map((match) => match.index + match[0].length)
}

/** Polls `check` until it holds; fails after `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function uniquePrefix(): string {
  return `patchwire-test:${randomUUID()}:`
}

function isBrokerError(error: unknown): boolean {
  return error instanceof PatchwireError && error.code === 'ERR_PATCHWIRE_BROKER'
}

describe('createRedisBroker', { timeout: 60_000 }, () => {
  for (const lib of LIBS) {
    describe(`with ${lib.name} clients`, () => {
      it('delivers every publish to the listeners of every broker on the same Redis, in order', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const b = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const gotA: string[] = []
        const gotB: string[] = []
        a.broker.subscribe('room', (payload) => gotA.push(payload))
        b.broker.subscribe('room', (payload) => gotB.push(payload))
        await eventually(async () => await numsub(admin, `${prefix}room`) === 2, 'both SUBSCRIBEs')

        const sent = Array.from({ length: 200 }, (_, i) => JSON.stringify([['replace', '/n', i]]))
        await Promise.all(sent.map((payload) => a.broker.publish('room', payload)))
        await eventually(() => gotA.length >= sent.length && gotB.length >= sent.length, 'all messages')
        assert.deepEqual(gotA, sent)
        assert.deepEqual(gotB, sent)
        assert.deepEqual(a.errors, [])
        assert.deepEqual(b.errors, [])
      })

      it('settles ready once the SUBSCRIBE is live, so that a publish right after it arrives', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const b = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const got: string[] = []
        for (let i = 0; i < 20; i++) {
          const stop = b.broker.subscribe(`topic-${i}`, (payload) => got.push(payload))
          const again = b.broker.subscribe(`topic-${i}`, () => undefined)
          assert.equal(again.ready, stop.ready, 'one SUBSCRIBE, one ready')
          await stop.ready
          // Asked of Redis itself: a client library's promise may settle
          // without a round trip (node-redis, for a channel it has a listener for).
          assert.equal(await numsub(admin, `${prefix}topic-${i}`), 1, 'ready settled before Redis ran the SUBSCRIBE')
          await a.broker.publish(`topic-${i}`, `[${i}]`)
        }
        await eventually(() => got.length === 20, 'every message')
        assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `[${i}]`))
        assert.deepEqual(b.errors, [])
      })

      it('carries payloads unchanged: Unicode, escapes and 1 MiB', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const got: string[] = []
        broker.subscribe('t', (payload) => got.push(payload))
        await eventually(async () => await numsub(admin, `${prefix}t`) === 1, 'SUBSCRIBE')

        const sent = [
          '[]',
          JSON.stringify([['add', '/text', 'héllo ✓ 日本語 🎉 e\u0301 \u2028\u2029 \u0000 "quoted" \\ \r\n\t']]),
          JSON.stringify([['add', '/lone', '\ud800']]),
          JSON.stringify([['replace', '/big', 'ß🎉x'.repeat(262_144)]]),
        ]
        for (const payload of sent) await broker.publish('t', payload)
        await eventually(() => got.length >= sent.length, 'all payloads')
        assert.equal(got.length, sent.length)
        for (const [i, payload] of sent.entries()) {
          assert.ok(got[i] === payload, `payload ${i} changed (${Buffer.byteLength(payload)} bytes sent, ${Buffer.byteLength(got[i] ?? '')} received)`)
        }
        assert.ok(Buffer.byteLength(sent[3] ?? '') > 1024 * 1024)
        assert.deepEqual(errors, [])
      })

      it('publishes on the channel prefix + topic, with no envelope, so prefixes keep apps apart', { timeout: 10_000 }, async (t) => {
        const prefixA = uniquePrefix()
        const prefixB = uniquePrefix()
        const a = await brokerOn(t, lib, SHARED_PORT, { prefix: prefixA })
        const b = await brokerOn(t, lib, SHARED_PORT, { prefix: prefixB })
        const admin = await probe(t)
        const raw = await probe(t)
        const rawGot: string[] = []
        await raw.subscribe(`${prefixA}room`, (message) => rawGot.push(message))
        const gotB: string[] = []
        b.broker.subscribe('room', (payload) => gotB.push(payload))
        await eventually(async () => await numsub(admin, `${prefixB}room`) === 1, 'SUBSCRIBE of b')

        await a.broker.publish('room', '["for a"]')
        // Same publisher connection, so Redis handles them in this order.
        await a.publisher.client.publish(`${prefixB}room`, '["sentinel"]')
        await eventually(() => gotB.length > 0 && rawGot.length > 0, 'the sentinel and the raw message')
        assert.deepEqual(gotB, ['["sentinel"]'])
        assert.deepEqual(rawGot, ['["for a"]'])
      })

      it('uses the prefix "patchwire:" by default', { timeout: 10_000 }, async (t) => {
        const topic = `test:${randomUUID()}`
        const publisher = await lib.connect(t, SHARED_PORT)
        const subscriber = await lib.connect(t, SHARED_PORT)
        const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client })
        const admin = await probe(t)
        const got: string[] = []
        broker.subscribe(topic, (payload) => got.push(payload))
        await eventually(async () => await numsub(admin, `patchwire:${topic}`) === 1, 'SUBSCRIBE on patchwire:<topic>')
        await broker.publish(topic, '[1]')
        await eventually(() => got.length === 1, 'the message')
        assert.deepEqual(got, ['[1]'])
      })

      it('holds one SUBSCRIBE per topic however many listeners, and UNSUBSCRIBEs after the last', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const channel = `${prefix}room`
        const { broker, errors } = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const { count, barrier } = await monitorOf(t, prefix)
        const commands = (name: string): number => count(name, channel)

        const got: string[][] = [[], [], []]
        const stops = got.map((inbox) => broker.subscribe('room', (payload) => inbox.push(payload)))
        await eventually(async () => await numsub(admin, channel) === 1, 'SUBSCRIBE')
        await broker.publish('room', '["once"]')
        await eventually(() => got.every((inbox) => inbox.length === 1), 'every listener to get the message')
        await barrier()
        assert.equal(commands('subscribe'), 1)
        assert.deepEqual(got, [['["once"]'], ['["once"]'], ['["once"]']])

        stops[0]?.()
        stops[1]?.()
        stops[1]?.()
        await broker.publish('room', '["twice"]')
        await eventually(() => (got[2]?.length ?? 0) === 2, 'the remaining listener to get the message')
        await barrier()
        assert.equal(commands('unsubscribe'), 0)
        assert.deepEqual(got.map((inbox) => inbox.length), [1, 1, 2])

        stops[2]?.()
        await eventually(async () => await numsub(admin, channel) === 0, 'UNSUBSCRIBE')
        await barrier()
        assert.equal(commands('unsubscribe'), 1)
        assert.equal(commands('subscribe'), 1)
        assert.deepEqual(errors, [])
      })

      it('ends subscribed when a topic is unsubscribed and subscribed again at once', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const first: string[] = []
        const second: string[] = []
        const stop = broker.subscribe('room', (payload) => first.push(payload))
        stop()
        broker.subscribe('room', (payload) => second.push(payload))
        stop()
        // Commands on one connection run in order: once this later SUBSCRIBE
        // took effect, so did the three before it.
        broker.subscribe('barrier', () => undefined)
        await eventually(async () => await numsub(admin, `${prefix}barrier`) === 1, 'the barrier SUBSCRIBE')
        assert.equal(await numsub(admin, `${prefix}room`), 1)
        await broker.publish('room', '["x"]')
        await eventually(() => second.length === 1, 'the message')
        assert.deepEqual(first, [])
        assert.deepEqual(second, ['["x"]'])
        assert.deepEqual(errors, [])
      })

      it('unsubscribes a topic let go twice even when the connection drops before Redis answers the second UNSUBSCRIBE', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const proxy = await startRedisProxy(SHARED_PORT)
        t.after(() => proxy.close())
        const { broker, errors, subscriber } = await brokerOn(t, lib, SHARED_PORT, { prefix }, await lib.connect(t, proxy.port))
        const admin = await probe(t)
        let reconnected = false
        const stop = broker.subscribe('room', () => undefined)
        await stop.ready
        subscriber.client.on('ready', () => { reconnected = true })

        proxy.hold()
        stop()
        broker.subscribe('room', () => undefined)()
        // UNSUBSCRIBE, SUBSCRIBE, UNSUBSCRIBE: the client gets the first two
        // answers, and loses the connection before the last one.
        await eventually(() => pubsubReplies(proxy.held).length === 3, 'the three answers')
        proxy.cut(pubsubReplies(proxy.held)[1] ?? 0)
        await eventually(() => reconnected, 'the subscriber to reconnect')
        // Sent after whatever the broker sends on reconnecting, on the same connection.
        await broker.subscribe('barrier', () => undefined).ready
        assert.equal(await numsub(admin, `${prefix}room`), 0, 'the topic let go is still subscribed')
        assert.ok(errors.every(isBrokerError), String(errors))
      })

      it('reports nothing when the application closes its clients', { timeout: 10_000 }, async (t) => {
        const { broker, errors, publisher, subscriber } = await brokerOn(t, lib, SHARED_PORT, { prefix: uniquePrefix() })
        await broker.subscribe('room', () => undefined).ready
        publisher.close()
        subscriber.close()
        const closed = (client: RedisClient): boolean => 'status' in client ? client.status === 'end' : !client.isOpen
        await eventually(() => closed(publisher.client) && closed(subscriber.client), 'both clients to close')
        // Long enough for a reconnect attempt (20 ms) to have been reported.
        await new Promise((resolve) => setTimeout(resolve, 100))
        assert.deepEqual(errors, [])
      })

      it('reports a listener that throws and still delivers to the others', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const got: string[] = []
        const boom = new Error('boom')
        broker.subscribe('room', () => { throw boom })
        broker.subscribe('room', (payload) => got.push(payload))
        await eventually(async () => await numsub(admin, `${prefix}room`) === 1, 'SUBSCRIBE')
        await broker.publish('room', '[1]')
        await broker.publish('room', '[2]')
        await eventually(() => got.length === 2, 'both messages')
        assert.deepEqual(got, ['[1]', '[2]'])
        assert.equal(errors.length, 2)
        assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_LISTENER')
        assert.equal(errors[0]?.cause, boom)
      })

      it('serves publish(broker, topic, ops)', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker } = await brokerOn(t, lib, SHARED_PORT, { prefix })
        const admin = await probe(t)
        const got: string[] = []
        broker.subscribe('room', (payload) => got.push(payload))
        await eventually(async () => await numsub(admin, `${prefix}room`) === 1, 'SUBSCRIBE')
        await publish(broker, 'room', [['add', '/items/-', { id: 1, name: 'ünïcode' }]])
        await eventually(() => got.length === 1, 'the message')
        assert.deepEqual(got, ['[["add","/items/-",{"id":1,"name":"ünïcode"}]]'])
      })

      it('reports a SUBSCRIBE that fails and calls every onGap, even after one throws', { timeout: 10_000 }, async (t) => {
        const { broker, errors, subscriber } = await brokerOn(t, lib, SHARED_PORT, { prefix: uniquePrefix() })
        subscriber.close()
        let gaps = 0
        const boom = new Error('boom')
        const first = broker.subscribe('room', () => undefined, () => { throw boom })
        broker.subscribe('room', () => undefined, () => { gaps++ })
        broker.subscribe('room', () => undefined)
        await assert.rejects(Promise.resolve(first.ready), (error: unknown) => isBrokerError(error))
        await eventually(() => gaps === 1, 'onGap')
        assert.equal(errors.length, 2)
        assert.ok(isBrokerError(errors[0]), String(errors[0]))
        assert.ok(errors[0]?.cause instanceof Error)
        assert.equal(errors[1]?.code, 'ERR_PATCHWIRE_LISTENER')
        assert.equal(errors[1]?.cause, boom)
      })

      it('sends SUBSCRIBE again for a new subscription to a topic whose SUBSCRIBE failed', { timeout: 10_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const got: string[][] = [[], []]
        await allowSubscribe(admin, false)
        const first = broker.subscribe('room', (payload) => got[0]?.push(payload))
        await assert.rejects(Promise.resolve(first.ready), (error: unknown) => isBrokerError(error))

        await allowSubscribe(admin, true)
        await broker.subscribe('room', (payload) => got[1]?.push(payload)).ready
        assert.equal(await numsub(admin, 'patchwire:room'), 1)
        await broker.publish('room', '[1]')
        await eventually(() => got.every((inbox) => inbox.length === 1), 'both listeners to get the message')
        assert.equal(errors.length, 1, String(errors))
        assert.ok(isBrokerError(errors[0]), String(errors[0]))
      })

      it('rejects a publish that Redis refuses, with the Redis error as cause', { timeout: 10_000 }, async (t) => {
        const server = await startRedisServer(['--user', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-publish'])
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        await assert.rejects(broker.publish('room', '[]'), (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match(String((error as Error).cause), /NOPERM/)
          return true
        })
        assert.deepEqual(errors, [])
      })

      it('subscribes the topics of a subscriber that connects later, then calls onGap', { timeout: 10_000 }, async (t) => {
        const prefix = uniquePrefix()
        const publisher = await lib.connect(t, SHARED_PORT)
        const subscriber = lib.unconnected(SHARED_PORT)
        t.after(() => subscriber.close())
        const errors: PatchwireError[] = []
        const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, prefix, onError: (error) => errors.push(error) })
        const got: string[] = []
        let gaps = 0
        broker.subscribe('room', (payload) => got.push(payload), () => { gaps++ })
        await subscriber.connect()
        await eventually(() => gaps >= 1, 'onGap')
        await broker.publish('room', '["after"]')
        await eventually(() => got.length === 1, 'the message')
        assert.deepEqual(got, ['["after"]'])
        assert.ok(errors.every(isBrokerError), String(errors))
      })

      it('serves a handler: one SUBSCRIBE for all the streams of a topic, UNSUBSCRIBE lingerMs after the last one', { timeout: 10_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const { count, barrier } = await monitorOf(t, 'patchwire:', server.port)
        const lingerMs = 200
        const web = await startServer(t, { broker, lingerMs })

        const streams = await Promise.all([1, 2, 3].map(() => openStream(t, web.port, 'room')))
        assert.deepEqual(streams.map((stream) => stream.response?.status), [200, 200, 200])
        assert.equal(await numsub(admin, 'patchwire:room'), 1)
        await publish(broker, 'room', [['replace', '/counter', 7]])
        await eventually(() => streams.every((stream) => stream.named('patch').length > 0), 'every stream to get the patch')
        assert.deepEqual(streams.map((stream) => stream.named('patch').map((event) => event.data)), Array(3).fill(['[["replace","/counter",7]]']))
        await barrier()
        assert.equal(count('subscribe', 'patchwire:room'), 1)
        assert.equal(web.handler.stats().topics, 1)

        for (const stream of streams) stream.destroy()
        await eventually(() => web.handler.stats().connections === 0, 'the handler to see the streams go')
        const left = performance.now()
        await eventually(async () => web.handler.stats().topics === 0 && await numsub(admin, 'patchwire:room') === 0, 'the topic to be let go')
        const lingered = performance.now() - left
        // Checked while polling, so a little short of the full linger at worst.
        assert.ok(lingered >= lingerMs * 0.75, `let go after ${lingered} ms, before lingerMs`)
        await barrier()
        assert.equal(count('unsubscribe', 'patchwire:room'), 1)
        assert.equal(count('subscribe', 'patchwire:room'), 1)
        assert.deepEqual(errors, [])
      })

      describe('when Redis fails (private redis-server)', () => {
        let server: RedisServer & { stop(): Promise<void> }
        before(async () => { server = await startRedisServer() })
        after(async () => { await server.stop() })
        // Each test starts from a running server, even after one failed midway.
        beforeEach(async () => {
          server.resume()
          await server.start()
        })

        it('rejects publish at once with ERR_PATCHWIRE_BROKER while Redis is down, without crashing', { timeout: 15_000 }, async (t) => {
          // The clients have no `error` listener of their own: an unhandled
          // `error` event would crash this process.
          const { broker, errors } = await brokerOn(t, lib, server.port)
          await broker.publish('room', '["up"]')
          await server.kill()
          await eventually(() => errors.length >= 2, 'both connections to be reported lost')
          assert.ok(errors.every(isBrokerError), String(errors))
          assert.match(errors.map((error) => error.message).join('\n'), /publisher/)
          assert.match(errors.map((error) => error.message).join('\n'), /subscriber/)

          const started = performance.now()
          await assert.rejects(broker.publish('room', '["down"]'), (error: unknown) => {
            assert.ok(isBrokerError(error), String(error))
            return true
          })
          assert.ok(performance.now() - started < 250, `publish took ${performance.now() - started} ms to reject`)

          await server.start()
          await eventually(async () => broker.publish('room', '["back"]').then(() => true, () => false), 'publish to work again')
          assert.equal(errors.length, 2, 'one report per client and outage')
        })

        it('subscribes every active topic again after a restart, then calls onGap for each subscription', { timeout: 15_000 }, async (t) => {
          const { broker, errors } = await brokerOn(t, lib, server.port)
          const admin = await probe(t, server.port)
          const got = new Map<string, string[]>([['a', []], ['b', []], ['gone', []]])
          const subscribedAtGap: Promise<number>[] = []
          const gaps: string[] = []
          let rawConnected: (client: Awaited<ReturnType<typeof probe>>) => void = () => undefined
          const raw = new Promise<Awaited<ReturnType<typeof probe>>>((resolve) => { rawConnected = resolve })
          const afterGap: Promise<unknown>[] = []
          const onGap = (topic: string) => () => {
            gaps.push(topic)
            // Asked and published as soon as onGap has run and a connection
            // to the restarted server is up: the topic must be subscribed
            // again before onGap is called.
            subscribedAtGap.push(raw.then((client) => numsub(client, `patchwire:${topic}`)))
            const payload = `["after gap ${gaps.length}"]`
            afterGap.push(raw.then((client) => client.publish(`patchwire:${topic}`, payload)))
          }
          broker.subscribe('a', (payload) => got.get('a')?.push(payload), onGap('a'))
          broker.subscribe('a', () => undefined, onGap('a'))
          broker.subscribe('b', (payload) => got.get('b')?.push(payload), onGap('b'))
          const stopGone = broker.subscribe('gone', (payload) => got.get('gone')?.push(payload), onGap('gone'))
          await eventually(async () => await numsub(admin, 'patchwire:a') === 1 && await numsub(admin, 'patchwire:b') === 1, 'SUBSCRIBEs')
          // Its UNSUBSCRIBE is likely cut off by the kill: it must be sent again.
          stopGone()
          admin.destroy()

          await server.kill()
          await server.start()
          rawConnected(await probe(t, server.port))
          await eventually(() => gaps.length === 3, 'three onGap calls')
          await Promise.all(afterGap)
          assert.deepEqual(gaps.toSorted(), ['a', 'a', 'b'])
          assert.deepEqual(await Promise.all(subscribedAtGap), [1, 1, 1], 'onGap came before Redis ran the SUBSCRIBE')
          await eventually(() => got.get('a')?.length === 2 && got.get('b')?.length === 1, 'the messages published after onGap')
          const admin2 = await raw
          await eventually(async () => await numsub(admin2, 'patchwire:gone') === 0, 'the channel let go to be unsubscribed')
          await broker.publish('gone', '["nobody"]').catch(() => undefined)
          await eventually(async () => (await broker.publish('b', '["through the broker"]').then(() => true, () => false)), 'the publisher to be back')
          await eventually(() => got.get('b')?.length === 2, 'a publish through the broker')
          assert.deepEqual(got.get('gone'), [])
          assert.ok(errors.every(isBrokerError), String(errors))
        })

        it('settles ready for new subscriptions once a topic whose SUBSCRIBE failed is subscribed again on reconnect', { timeout: 15_000 }, async (t) => {
          // A server of its own: the ACL change must not outlive the test.
          const own = await startRedisServer()
          t.after(() => own.stop())
          const { broker, errors } = await brokerOn(t, lib, own.port)
          const admin = await probe(t, own.port)
          const got: string[] = []
          let gaps = 0
          await allowSubscribe(admin, false)
          const first = broker.subscribe('room', (payload) => got.push(payload), () => { gaps++ })
          await assert.rejects(Promise.resolve(first.ready), (error: unknown) => isBrokerError(error))
          admin.destroy()

          // The restart also forgets the ACL change.
          await own.kill()
          await own.start()
          await eventually(() => gaps === 2, 'the topic to be subscribed again (onGap)')
          const admin2 = await probe(t, own.port)
          // Refused again, so that only the SUBSCRIBE of the reconnect can settle it.
          await allowSubscribe(admin2, false)
          await broker.subscribe('room', () => undefined).ready
          await eventually(async () => broker.publish('room', '["after"]').then(() => true, () => false), 'the publisher to be back')
          await eventually(() => got.length > 0, 'the message')
          assert.ok(errors.every(isBrokerError), String(errors))
        })

        it('reports a subscriber that gives up reconnecting, resets every topic, and refuses new subscriptions', { timeout: 15_000 }, async (t) => {
          const { broker, errors } = await brokerOn(t, lib, server.port, {}, await lib.connect(t, server.port, 1))
          const gaps: string[] = []
          await broker.subscribe('a', () => undefined, () => gaps.push('a')).ready
          await broker.subscribe('b', () => undefined, () => gaps.push('b')).ready
          const closedForGood = (): PatchwireError[] => errors.filter((error) => /subscriber closed for good/.test(error.message))

          await server.kill()
          await eventually(() => closedForGood().length > 0, 'the subscriber to be reported closed')
          assert.deepEqual(gaps.toSorted(), ['a', 'b'])
          assert.ok(errors.every(isBrokerError), String(errors))
          // At once, rather than a subscription that waits for ever.
          for (const topic of ['a', 'c']) {
            await assert.rejects(Promise.resolve(broker.subscribe(topic, () => undefined).ready), (error: unknown) => isBrokerError(error))
          }
          // Redis is back, the subscriber's client stays closed: reported once.
          await server.start()
          await eventually(async () => broker.publish('a', '[]').then(() => true, () => false), 'the publisher to be back')
          assert.equal(closedForGood().length, 1)
          assert.deepEqual(gaps.toSorted(), ['a', 'b'])
        })

        it('rejects a publish that Redis does not confirm within publishTimeoutMs', { timeout: 15_000 }, async (t) => {
          const { broker } = await brokerOn(t, lib, server.port, { publishTimeoutMs: 200 })
          await server.pause()
          t.after(() => server.resume())
          const started = performance.now()
          await assert.rejects(broker.publish('room', '["stuck"]'), (error: unknown) => {
            assert.ok(isBrokerError(error), String(error))
            assert.match((error as Error).message, /200 ms/)
            return true
          })
          const elapsed = performance.now() - started
          assert.ok(elapsed >= 190 && elapsed < 2000, `rejected after ${elapsed} ms`)
          server.resume()
          await broker.publish('room', '["unstuck"]')
        })
      })
    })
  }

  it('works with a node-redis publisher and an ioredis subscriber', { timeout: 10_000 }, async (t) => {
    const prefix = uniquePrefix()
    const publisher = await nodeRedis.connect(t, SHARED_PORT)
    const subscriber = await ioRedis.connect(t, SHARED_PORT)
    const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, prefix })
    const admin = await probe(t)
    const got: string[] = []
    broker.subscribe('room', (payload) => got.push(payload))
    await eventually(async () => await numsub(admin, `${prefix}room`) === 1, 'SUBSCRIBE')
    await broker.publish('room', '["mixed"]')
    await eventually(() => got.length === 1, 'the message')
    assert.deepEqual(got, ['["mixed"]'])
  })

  it('reports an UNSUBSCRIBE that fails (ioredis, closed subscriber)', { timeout: 10_000 }, async (t) => {
    const { broker, errors, subscriber } = await brokerOn(t, ioRedis, SHARED_PORT, { prefix: uniquePrefix() })
    const stop = broker.subscribe('room', () => undefined)
    subscriber.close()
    await eventually(() => (subscriber.client as Redis).status === 'end', 'the client to close')
    stop()
    await eventually(() => errors.some((error) => /unsubscribe/.test(error.message)), 'the UNSUBSCRIBE failure')
    assert.ok(errors.every(isBrokerError), String(errors))
  })

  it('reports to console.error when no onError is given', { timeout: 10_000 }, async (t) => {
    const prefix = uniquePrefix()
    const publisher = await nodeRedis.connect(t, SHARED_PORT)
    const subscriber = await nodeRedis.connect(t, SHARED_PORT)
    const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, prefix })
    const admin = await probe(t)
    const consoleError = t.mock.method(console, 'error', () => undefined)
    broker.subscribe('room', () => { throw new Error('boom') })
    await eventually(async () => await numsub(admin, `${prefix}room`) === 1, 'SUBSCRIBE')
    await broker.publish('room', '[1]')
    await eventually(() => consoleError.mock.callCount() === 1, 'console.error')
    assert.match(String(consoleError.mock.calls[0]?.arguments[0]), /ERR_PATCHWIRE_LISTENER/)
  })

  describe('option checks', () => {
    const node = nodeRedis.unconnected(SHARED_PORT)
    const io = ioRedis.unconnected(SHARED_PORT)
    after(() => {
      node.close()
      io.close()
    })
    const valid = { publisher: node.client, subscriber: io.client }

    it('throws TypeError for missing or unknown clients', () => {
      assert.throws(() => createRedisBroker(undefined as unknown as RedisBrokerOptions), TypeError)
      assert.throws(() => createRedisBroker({ ...valid, publisher: undefined as unknown as RedisClient }), /publisher must be a connected node-redis client/)
      assert.throws(() => createRedisBroker({ ...valid, subscriber: null as unknown as RedisClient }), /subscriber must be .*got null/)
      assert.throws(() => createRedisBroker({ ...valid, subscriber: { publish() {}, subscribe() {} } as unknown as RedisClient }), TypeError)
    })

    it('throws TypeError when publisher and subscriber are the same client', () => {
      assert.throws(() => createRedisBroker({ publisher: node.client, subscriber: node.client }), /two connections.*duplicate\(\)/)
    })

    it('throws TypeError for a prefix that is not a string, or an onError that is not a function', () => {
      assert.throws(() => createRedisBroker({ ...valid, prefix: 1 as unknown as string }), /prefix must be a string/)
      assert.throws(() => createRedisBroker({ ...valid, onError: 'log' as unknown as () => void }), /onError must be a function/)
    })

    it('throws RangeError for a publishTimeoutMs that is not a positive number up to 2147483647', () => {
      // Above 2^31 - 1 ms, setTimeout would fire after 1 ms.
      for (const publishTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5' as unknown as number]) {
        assert.throws(() => createRedisBroker({ ...valid, publishTimeoutMs }), (error: unknown) => error instanceof RangeError && /publishTimeoutMs/.test(error.message), String(publishTimeoutMs))
      }
      assert.doesNotThrow(() => createRedisBroker({ ...valid, publishTimeoutMs: 2 ** 31 - 1, onError: () => undefined }))
    })

    it('throws TypeError from subscribe when the listener is not a function', () => {
      const broker = createRedisBroker({ ...valid, onError: () => undefined })
      assert.throws(() => broker.subscribe('room', undefined as unknown as () => void), /listener must be a function/)
    })

    it('rejects publish while the publisher is not connected', async () => {
      const broker = createRedisBroker({ ...valid, onError: () => undefined })
      await assert.rejects(broker.publish('room', '[]'), (error: unknown) => isBrokerError(error) && /not connected/.test((error as Error).message))
    })
  })
})

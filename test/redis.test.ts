/**
 * patchwire/redis against real Redis: a private redis-server per group of
 * tests (a unique prefix per test, so tests on one server do not collide),
 * and servers of their own for tests that kill, pause, flush or restart it.
 * Every case runs with node-redis and with ioredis clients.
 */
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'
import { createRedisBroker } from '../src/adapters/redis/index.ts'
import type { RedisBrokerOptions, RedisClient } from '../src/adapters/redis/index.ts'
import type { ReplayResult } from '../src/broker/broker.ts'
import type { PatchwireError } from '../src/errors.ts'
import { parseEventId } from '../src/protocol/event-id.ts'
import { connectionOf } from '../src/adapters/redis/clients.ts'
import { PUBLISH_SCRIPT, historyArgs, keyLayout, parsePublishReply } from '../src/adapters/redis/scripts.ts'
import {
  LIBS, SCRIPT_COMMANDS, allowSubscribe, brokerOn, commandCalls, cutWhilePublishing, epochOf, eventually, framesOf, ioRedis, isBrokerError, killSubscriber,
  monitorOf, nodeRedis, numsub, probe, publishing, publishWhenBack, pubsubReplies, seqOf, uniquePrefix,
} from './helpers/redis.ts'
import { recorder } from './helpers/broker-recorder.ts'
import type { Lib, Server } from './helpers/redis.ts'
import { startRedisProxy, startRedisServer } from './helpers/redis-server.ts'

describe('createRedisBroker', { timeout: 120_000 }, () => {
  let shared: Server
  before(async () => { shared = await startRedisServer() })
  after(async () => { await shared.stop() })

  for (const lib of LIBS) {
    describe(`with ${lib.name} clients`, () => {
      it('delivers every publish to the listeners of every broker on the same Redis, in order, with the id publish resolved with', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, shared.port, { prefix })
        const b = await brokerOn(t, lib, shared.port, { prefix })
        const gotA = recorder()
        const gotB = recorder()
        await a.broker.subscribe('room', gotA.listener, gotA.onGap).ready
        await b.broker.subscribe('room', gotB.listener, gotB.onGap).ready

        const sent = Array.from({ length: 200 }, (_, i) => JSON.stringify([['replace', '/n', i]]))
        const ids = await Promise.all(sent.map((payload) => a.broker.publish('room', payload)))
        await eventually(() => gotA.events.length >= sent.length && gotB.events.length >= sent.length, 'all messages')
        const expected = sent.map((payload, i) => ({ payload, id: ids[i] }))
        assert.deepEqual(gotA.events, expected, 'the broker that published gets the 200 messages in order, with their ids')
        assert.deepEqual(gotB.events, expected, 'the other broker gets the 200 messages in order, with their ids')
        assert.deepEqual(a.errors, [], 'the publishing broker reported no error')
        assert.deepEqual(b.errors, [], 'the other broker reported no error')
      })

      it('issues ids of one epoch that increase across topics and brokers, and delivers all topics in that order', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, shared.port, { prefix })
        const b = await brokerOn(t, lib, shared.port, { prefix })
        const got: string[] = []
        for (const topic of ['x', 'y', 'z']) await a.broker.subscribe(topic, (_payload, id) => got.push(id ?? ''), () => got.push('gap')).ready
        const ids: string[] = []
        for (let i = 0; i < 60; i++) {
          const publisher = i % 2 === 0 ? a.broker : b.broker
          ids.push(await publisher.publish(['x', 'y', 'z', 'other'][i % 4] as string, `[${i}]`) as string)
        }
        assert.equal(new Set(ids.map(epochOf)).size, 1, `the ids are of one epoch: ${ids.join(', ')}`)
        for (let i = 1; i < ids.length; i++) assert.ok(seqOf(ids[i]) > seqOf(ids[i - 1]), `${ids[i]} after ${ids[i - 1]}`)
        const subscribed = ids.filter((_, i) => i % 4 !== 3)
        await eventually(() => got.length >= subscribed.length, 'the messages')
        assert.deepEqual(got, subscribed, 'the listener gets x, y and z in publish order, nothing of other, no gap')
      })

      it('settles ready once the SUBSCRIBE is live, so that a publish right after it arrives', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, shared.port, { prefix })
        const b = await brokerOn(t, lib, shared.port, { prefix })
        const admin = await probe(t, shared.port)
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
        assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `[${i}]`), 'a publish right after ready arrives, for each of the 20 topics')
        assert.deepEqual(b.errors, [], 'the subscribing broker reported no error')
      })

      it('carries payloads unchanged: colons, Unicode, escapes and 1 MiB, live and replayed', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, shared.port, { prefix })
        const got: string[] = []
        await broker.subscribe('t', (payload) => got.push(payload)).ready
        const start = await broker.position('t')

        const sent = [
          '[]',
          '["a:b:c","1-2:3"]',
          JSON.stringify([['add', '/text', 'héllo ✓ 日本語 🎉 e\u0301 \u2028\u2029 \u0000 "quoted" \\ \r\n\t']]),
          JSON.stringify([['add', '/lone', '\ud800']]),
          JSON.stringify([['replace', '/big', 'ß🎉x'.repeat(262_144)]]),
        ]
        for (const payload of sent) await broker.publish('t', payload)
        await eventually(() => got.length >= sent.length, 'all payloads')
        assert.equal(got.length, sent.length, 'each payload arrives once')
        const replayed = framesOf(await broker.replay('t', start)).map((frame) => frame.payload)
        for (const [i, payload] of sent.entries()) {
          assert.ok(got[i] === payload, `payload ${i} changed (${Buffer.byteLength(payload)} bytes sent, ${Buffer.byteLength(got[i] ?? '')} received)`)
          assert.ok(replayed[i] === payload, `replayed payload ${i} changed`)
        }
        assert.ok(Buffer.byteLength(sent[4] ?? '') > 1024 * 1024, 'the last payload is over 1 MiB')
        assert.deepEqual(errors, [], 'the broker reported no error')
      })

      it('publishes on the channel prefix + topic with its position, so prefixes keep apps apart, and drops what it did not publish', { timeout: 15_000 }, async (t) => {
        const prefixA = uniquePrefix()
        const prefixB = uniquePrefix()
        const a = await brokerOn(t, lib, shared.port, { prefix: prefixA })
        const b = await brokerOn(t, lib, shared.port, { prefix: prefixB })
        const raw = await probe(t, shared.port)
        const rawGot: string[] = []
        await raw.subscribe(`${prefixA}room`, (message) => rawGot.push(message))
        const gotB: string[] = []
        await b.broker.subscribe('room', (payload) => gotB.push(payload)).ready

        const id = await a.broker.publish('room', '["for a"]') as string
        const admin = await probe(t, shared.port)
        await admin.publish(`${prefixB}room`, '["not from a broker"]')
        await admin.publish(`${prefixB}room`, '["again"]')
        const sentinel = await b.broker.publish('room', '["sentinel"]')
        await eventually(() => gotB.length > 0 && rawGot.length > 0, 'the sentinel and the raw message')
        assert.deepEqual(gotB, ['["sentinel"]'], 'the broker under prefix B gets its own publish only: neither prefix A\'s nor the foreign messages')
        assert.ok(typeof sentinel === 'string', `publish resolves with the id, got ${String(sentinel)}`)
        // <epoch>:<seq>:<the topic's previous position, empty when unknown>:<payload>
        assert.equal(rawGot.length, 1, 'one message on the channel prefixA + room')
        assert.match(rawGot[0] ?? '', new RegExp(`^${epochOf(id)}:${seqOf(id)}:[0-9]*:\\["for a"\\]$`), `the channel message is epoch:seq:previous:payload: ${rawGot[0]}`)
        assert.equal(b.errors.length, 1, String(b.errors))
        assert.ok(isBrokerError(b.errors[0]), `the foreign message is reported as ERR_PATCHWIRE_BROKER, got ${String(b.errors[0])}`)
        assert.match(b.errors[0]?.message ?? '', /not one createRedisBroker published/, `the report says the message was not published by a broker: ${b.errors[0]?.message}`)
      })

      it('uses the prefix "patchwire:" by default, for its channels and keys', { timeout: 15_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const topic = `test:${randomUUID()}`
        const { broker } = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const got: string[] = []
        await broker.subscribe(topic, (payload) => got.push(payload)).ready
        assert.equal(await numsub(admin, `patchwire:${topic}`), 1, 'the channel is patchwire: + topic')
        await broker.publish(topic, '[1]')
        await eventually(() => got.length === 1, 'the message')
        assert.deepEqual(got, ['[1]'], 'the message arrives')
        const keys = (await admin.sendCommand(['KEYS', '*']) as string[]).toSorted()
        assert.deepEqual(keys, ['patchwire:epoch', `patchwire:last:${topic}`, 'patchwire:seq', `patchwire:stream:${topic}`], 'every key is under patchwire:')
      })

      it('keeps about 1000 messages per topic for 5 minutes after its last publish by default (history, historyMs)', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker } = await brokerOn(t, lib, shared.port, { prefix })
        const admin = await probe(t, shared.port)
        const from = await broker.position('busy')
        const ids: string[] = []
        for (let i = 0; i < 1300; i++) ids.push(await broker.publish('busy', `[${i}]`) as string)
        const kept = Number(await admin.sendCommand(['XLEN', `${prefix}stream:busy`]))
        // MAXLEN ~ trims whole stream nodes (100 entries by default): a few more may stay.
        assert.ok(kept >= 1000 && kept < 1100, `${kept} messages kept`)
        assert.deepEqual(framesOf(await broker.replay('busy', ids[299] as string)).map((frame) => frame.id), ids.slice(300), 'a replay from the 300th id gives the 1000 after it')
        assert.deepEqual(await broker.replay('busy', from), { reset: 'history-exceeded' }, 'a replay from before the kept history is a reset')
        const ttl = Number(await admin.sendCommand(['PTTL', `${prefix}stream:busy`]))
        assert.ok(ttl > 290_000 && ttl <= 300_000, `the stream expires in ${ttl} ms`)
      })

      it('holds one SUBSCRIBE per topic however many listeners, and UNSUBSCRIBEs after the last', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const channel = `${prefix}room`
        const { broker, errors } = await brokerOn(t, lib, shared.port, { prefix })
        const admin = await probe(t, shared.port)
        const { count, barrier } = await monitorOf(t, prefix, shared.port)
        const commands = (name: string): number => count(name, channel)

        const got: string[][] = [[], [], []]
        const stops = got.map((inbox) => broker.subscribe('room', (payload) => inbox.push(payload)))
        await stops[0]?.ready
        await broker.publish('room', '["once"]')
        await eventually(() => got.every((inbox) => inbox.length === 1), 'every listener to get the message')
        await barrier()
        assert.equal(commands('subscribe'), 1, 'one SUBSCRIBE for three listeners')
        assert.deepEqual(got, [['["once"]'], ['["once"]'], ['["once"]']], 'every listener gets the message once')

        stops[0]?.()
        stops[1]?.()
        stops[1]?.()
        await broker.publish('room', '["twice"]')
        await eventually(() => (got[2]?.length ?? 0) === 2, 'the remaining listener to get the message')
        await barrier()
        assert.equal(commands('unsubscribe'), 0, 'no UNSUBSCRIBE while a listener is left')
        assert.deepEqual(got.map((inbox) => inbox.length), [1, 1, 2], 'only the remaining listener gets the second message')

        stops[2]?.()
        await eventually(async () => await numsub(admin, channel) === 0, 'UNSUBSCRIBE')
        await barrier()
        assert.equal(commands('unsubscribe'), 1, 'one UNSUBSCRIBE after the last listener')
        assert.equal(commands('subscribe'), 1, 'and no second SUBSCRIBE')
        assert.deepEqual(errors, [], 'the broker reported no error')
      })

      it('ends subscribed when a topic is unsubscribed and subscribed again at once', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, shared.port, { prefix })
        const admin = await probe(t, shared.port)
        const first: string[] = []
        const second: string[] = []
        const stop = broker.subscribe('room', (payload) => first.push(payload))
        stop()
        const again = broker.subscribe('room', (payload) => second.push(payload))
        stop()
        // Commands on one connection run in order: once this later SUBSCRIBE
        // took effect, so did the three before it.
        await broker.subscribe('barrier', () => undefined).ready
        await again.ready
        assert.equal(await numsub(admin, `${prefix}room`), 1, 'the topic subscribed again is subscribed in Redis')
        await broker.publish('room', '["x"]')
        await eventually(() => second.length === 1, 'the message')
        assert.deepEqual(first, [], 'the listener let go gets nothing')
        assert.deepEqual(second, ['["x"]'], 'the new listener gets the message')
        assert.deepEqual(errors, [], 'the broker reported no error')
      })

      it('unsubscribes a topic let go twice even when the connection drops before Redis answers the second UNSUBSCRIBE', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const proxy = await startRedisProxy(shared.port)
        t.after(() => proxy.close())
        const { broker, errors, subscriber } = await brokerOn(t, lib, shared.port, { prefix }, await lib.connect(t, proxy.port))
        const admin = await probe(t, shared.port)
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

      it('reports nothing when the application closes its clients', { timeout: 15_000 }, async (t) => {
        const { broker, errors, publisher, subscriber } = await brokerOn(t, lib, shared.port, { prefix: uniquePrefix() })
        await broker.subscribe('room', () => undefined).ready
        publisher.close()
        subscriber.close()
        const closed = (client: RedisClient): boolean => 'status' in client ? client.status === 'end' : !client.isOpen
        await eventually(() => closed(publisher.client) && closed(subscriber.client), 'both clients to close')
        // Long enough for a reconnect attempt (20 ms) to have been reported.
        await new Promise((resolve) => setTimeout(resolve, 100))
        assert.deepEqual(errors, [], `closing the clients reported nothing: ${errors.map((error) => error.message).join(' | ')}`)
      })

      it('reports a listener that throws and still delivers to the others', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, shared.port, { prefix })
        const got: string[] = []
        const boom = new Error('boom')
        broker.subscribe('room', () => { throw boom })
        await broker.subscribe('room', (payload) => got.push(payload)).ready
        await broker.publish('room', '[1]')
        await broker.publish('room', '[2]')
        await eventually(() => got.length === 2, 'both messages')
        assert.deepEqual(got, ['[1]', '[2]'], 'the other listener gets both messages')
        assert.equal(errors.length, 2, 'one report per throw')
        assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_LISTENER', 'reported as ERR_PATCHWIRE_LISTENER')
        assert.equal(errors[0]?.cause, boom, 'with the thrown error as cause')
      })

      it('reports a SUBSCRIBE that fails and calls every onGap, even after one throws', { timeout: 15_000 }, async (t) => {
        const { broker, errors, subscriber } = await brokerOn(t, lib, shared.port, { prefix: uniquePrefix() })
        subscriber.close()
        let gaps = 0
        const boom = new Error('boom')
        const first = broker.subscribe('room', () => undefined, () => { throw boom })
        broker.subscribe('room', () => undefined, () => { gaps++ })
        broker.subscribe('room', () => undefined)
        await assert.rejects(Promise.resolve(first.ready), (error: unknown) => isBrokerError(error), 'ready rejects with ERR_PATCHWIRE_BROKER')
        await eventually(() => gaps === 1, 'onGap')
        assert.equal(errors.length, 2, `two reports, the failed SUBSCRIBE and the throwing onGap: ${errors.map((error) => error.message).join(' | ')}`)
        assert.ok(isBrokerError(errors[0]), String(errors[0]))
        assert.ok(errors[0]?.cause instanceof Error, `the report carries Redis's error as cause, got ${String(errors[0]?.cause)}`)
        assert.equal(errors[1]?.code, 'ERR_PATCHWIRE_LISTENER', 'the onGap that threw is reported as ERR_PATCHWIRE_LISTENER')
        assert.equal(errors[1]?.cause, boom, 'with the thrown error as cause')
      })

      it('sends SUBSCRIBE again for a new subscription to a topic whose SUBSCRIBE failed', { timeout: 15_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const got: string[][] = [[], []]
        await allowSubscribe(admin, false)
        const first = broker.subscribe('room', (payload) => got[0]?.push(payload))
        await assert.rejects(Promise.resolve(first.ready), (error: unknown) => isBrokerError(error), 'ready rejects with ERR_PATCHWIRE_BROKER while SUBSCRIBE is refused')

        await allowSubscribe(admin, true)
        await broker.subscribe('room', (payload) => got[1]?.push(payload)).ready
        assert.equal(await numsub(admin, 'patchwire:room'), 1, 'the new subscription sent SUBSCRIBE again')
        await broker.publish('room', '[1]')
        await eventually(() => got.every((inbox) => inbox.length === 1), 'both listeners to get the message')
        assert.equal(errors.length, 1, String(errors))
        assert.ok(isBrokerError(errors[0]), String(errors[0]))
      })

      it('rejects a publish that Redis refuses, with the Redis error as cause', { timeout: 15_000 }, async (t) => {
        // The publish script's own PUBLISH is refused.
        const server = await startRedisServer(['--user', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-publish'])
        t.after(() => server.stop())
        const { broker, errors } = await brokerOn(t, lib, server.port)
        await assert.rejects(broker.publish('room', '[]'), (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match(String((error as Error).cause), /NOPERM|can't run this command/, `the cause is Redis's refusal: ${String((error as Error).cause)}`)
          return true
        }, 'the publish rejects with ERR_PATCHWIRE_BROKER')
        assert.deepEqual(errors, [], 'an awaited publish that failed is not reported')
      })

      it('subscribes the topics of a subscriber that connects later, then calls onGap', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const publisher = await lib.connect(t, shared.port)
        const subscriber = lib.unconnected(shared.port)
        t.after(() => subscriber.close())
        const errors: PatchwireError[] = []
        const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, prefix, onError: (error) => errors.push(error) })
        const got = recorder()
        broker.subscribe('room', got.listener, got.onGap)
        await subscriber.connect()
        await eventually(() => got.gaps() >= 1 || lib === ioRedis, 'onGap')
        const stop = broker.subscribe('room', () => undefined)
        await stop.ready
        await broker.publish('room', '["after"]')
        await eventually(() => got.payloads().length === 1, 'the message')
        assert.deepEqual(got.payloads(), ['["after"]'], 'the topic subscribed before the subscriber connected gets the message')
        assert.ok(errors.every(isBrokerError), String(errors))
      })

      it('position, then publishes: replay from that position gives exactly those, on another broker too', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, shared.port, { prefix })
        const b = await brokerOn(t, lib, shared.port, { prefix })
        await a.broker.publish('doc', '["before"]')
        const position = await a.broker.position('doc')
        assert.ok(parseEventId(position) !== undefined, position)
        const ids: string[] = []
        for (let i = 0; i < 5; i++) {
          ids.push(await b.broker.publish('doc', `[${i}]`) as string)
          await a.broker.publish('elsewhere', `[${i}]`)
        }
        for (const broker of [a.broker, b.broker]) {
          assert.deepEqual(framesOf(await broker.replay('doc', position)), ids.map((id, i) => ({ id, payload: `[${i}]` })), 'a replay from the position gives the 5 publishes of doc after it')
          assert.deepEqual(framesOf(await broker.replay('doc', ids[2] as string)), ids.slice(3).map((id, i) => ({ id, payload: `[${i + 3}]` })), 'a replay from the third id gives the two after it')
          assert.deepEqual(framesOf(await broker.replay('doc', ids[4] as string)), [], 'a replay from the last id gives nothing')
        }
        // A topic never published: nothing after its position.
        const quiet = await b.broker.position('never')
        await a.broker.publish('elsewhere', '[]')
        assert.deepEqual(framesOf(await a.broker.replay('never', quiet)), [], 'a replay of a topic never published, from its position, gives nothing')
        assert.ok(seqOf(await a.broker.position('doc')) >= seqOf(ids[4]), 'the position of doc is not behind its last publish')
      })

      it('refuses ids it did not issue: malformed-id, foreign-id for another epoch or a position never reached', { timeout: 15_000 }, async (t) => {
        const { broker } = await brokerOn(t, lib, shared.port, { prefix: uniquePrefix() })
        const position = await broker.position('doc')
        const { epoch, seq } = parseEventId(position) as { epoch: string, seq: number }
        for (const bad of ['', 'x', '-1', `${epoch}-`, `${epoch}-01`, `${epoch}-1.5`, `${epoch.toUpperCase()}-1`, `${epoch}-99999999999999999`]) {
          assert.deepEqual(await broker.replay('doc', bad), { reset: 'malformed-id' }, bad)
        }
        assert.deepEqual(await broker.replay('doc', `other-${seq}`), { reset: 'foreign-id' }, 'an id of another epoch is foreign')
        assert.deepEqual(await broker.replay('doc', `${epoch}-${seq + 1000}`), { reset: 'foreign-id' }, 'an id past the last position issued is foreign')
      })

      it('answers history-exceeded once the stream was trimmed past the id, and when history is 0', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker } = await brokerOn(t, lib, shared.port, { prefix, history: 5 })
        const position = await broker.position('busy')
        const ids: string[] = []
        for (let i = 0; i < 300; i++) ids.push(await broker.publish('busy', `[${i}]`) as string)
        assert.deepEqual(await broker.replay('busy', position), { reset: 'history-exceeded' }, 'a replay from before the trimmed stream is a reset')
        // The last five are kept whatever MAXLEN ~ trimmed.
        assert.deepEqual(framesOf(await broker.replay('busy', ids[294] as string)).map((frame) => frame.id), ids.slice(295), 'the last five are kept and replayed')

        const none = await brokerOn(t, lib, shared.port, { prefix: uniquePrefix(), history: 0 })
        const start = await none.broker.position('t')
        assert.deepEqual(framesOf(await none.broker.replay('t', start)), [], 'with history 0, a replay from the current position gives nothing')
        const id = await none.broker.publish('t', '[1]') as string
        assert.deepEqual(await none.broker.replay('t', start), { reset: 'history-exceeded' }, 'with history 0, a replay from before a publish is a reset')
        assert.deepEqual(framesOf(await none.broker.replay('t', id)), [], 'with history 0, a replay from the last id gives nothing')
      })

      it('answers history-exceeded once the stream expired (historyMs), and chains a quiet topic\'s next message without a gap', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, shared.port, { prefix, historyMs: 50 })
        // Not subscribed, so that its replays are answered by Redis.
        const other = await brokerOn(t, lib, shared.port, { prefix, historyMs: 50 })
        const admin = await probe(t, shared.port)
        const got = recorder()
        await broker.subscribe('quiet', got.listener, got.onGap).ready
        const position = await broker.position('quiet')
        const first = await broker.publish('quiet', '[1]') as string
        await eventually(async () => Number(await admin.sendCommand(['EXISTS', `${prefix}stream:quiet`])) === 0, 'the stream to expire')
        assert.deepEqual(await other.broker.replay('quiet', position), { reset: 'history-exceeded' }, 'a replay from Redis after the stream expired is a reset')
        // The subscribed process still holds it.
        await eventually(() => got.events.length === 1, 'the first message')
        assert.deepEqual(framesOf(await broker.replay('quiet', position)), [{ id: first, payload: '[1]' }], 'the subscribed broker replays the message from its cache')
        // Nothing came after `first`: still exact.
        assert.deepEqual(framesOf(await other.broker.replay('quiet', first)), [], 'a replay from the last message of an expired stream gives nothing, exactly')
        const second = await other.broker.publish('quiet', '[2]') as string
        await eventually(() => got.events.length >= 2, 'both messages')
        assert.deepEqual(got.events, [{ payload: '[1]', id: first }, { payload: '[2]', id: second }], 'the quiet topic\'s next message follows without a gap')
        assert.deepEqual(framesOf(await other.broker.replay('quiet', first)), [{ id: second, payload: '[2]' }], 'a replay from Redis from the first message gives the second')
        assert.deepEqual(errors, [], 'the broker reported no error')
      })

      it('answers a replay of a subscribed topic from its own cache, without a round trip, and shares one round trip among identical replays', { timeout: 15_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const { broker } = await brokerOn(t, lib, server.port)
        const other = await brokerOn(t, lib, server.port)
        const admin = await probe(t, server.port)
        const got: string[] = []
        await broker.subscribe('room', (_payload, id) => got.push(id ?? '')).ready
        const ids: string[] = []
        for (let i = 0; i < 10; i++) ids.push(await other.broker.publish('room', `[${i}]`) as string)
        await eventually(() => got.length === 10, 'the messages')

        const before = await commandCalls(admin, SCRIPT_COMMANDS)
        for (let i = 0; i < 100; i++) {
          const result = broker.replay('room', ids[3] as string)
          assert.ok(!('then' in result), 'answered synchronously')
          assert.deepEqual(framesOf(result as ReplayResult).map((frame) => frame.id), ids.slice(4), 'the cache answers the messages after the fourth id')
        }
        assert.equal(await commandCalls(admin, SCRIPT_COMMANDS), before, 'a replay from the cache went to Redis')

        // Not subscribed on `other`: from Redis, one round trip for a storm of identical ones.
        const storm = Array.from({ length: 50 }, () => other.broker.replay('room', ids[3] as string))
        assert.ok(storm.every((result) => result === storm[0]), 'identical replays share one promise')
        assert.deepEqual(framesOf(await storm[0] as ReplayResult).map((frame) => frame.id), ids.slice(4), 'the shared replay from Redis answers the messages after the fourth id')
        assert.equal(await commandCalls(admin, SCRIPT_COMMANDS), before + 1, 'one script call for the 50 identical replays')

        // Positions asked in one turn go out in one read (per 256 topics),
        // and so do the start positions of topics whose SUBSCRIBEs Redis
        // answered in one turn: a few reads for many topics, not one each.
        const positions = await Promise.all(Array.from({ length: 200 }, (_, i) => other.broker.position(`p${i % 7}`)))
        assert.equal(new Set(positions).size, 1, `the 200 positions of one turn are one: ${[...new Set(positions)].join(', ')}`)
        assert.equal(await commandCalls(admin, SCRIPT_COMMANDS), before + 2, 'one script call for the 200 positions')
        await Promise.all(Array.from({ length: 300 }, (_, i) => broker.subscribe(`many-${i}`, () => undefined).ready))
        const reads = await commandCalls(admin, SCRIPT_COMMANDS) - before - 2
        assert.ok(reads >= 2 && reads <= 10, `${reads} reads for the start positions of 300 topics`)
      })

      it('does not share a replay round trip with a later identical replay once a message of the topic was delivered in between', { timeout: 15_000 }, async (t) => {
        // A stream holds the live messages of its topic from the moment it
        // asks for its replay: one delivered before that must be in the
        // replay, which a read sent earlier may not have seen.
        const server = await startRedisServer()
        t.after(() => server.stop())
        const proxy = await startRedisProxy(server.port)
        t.after(() => proxy.close())
        // The broker reads (replay, position) on its publisher connection: through the proxy.
        const { broker } = await brokerOn(t, lib, server.port, {}, undefined, await lib.connect(t, proxy.port))
        const other = await brokerOn(t, lib, server.port)
        const from = await other.broker.publish('room', '["a"]') as string
        // Before the subscription: the cache does not reach back to `from`, so replays go to Redis.
        const b = await other.broker.publish('room', '["b"]') as string
        const got: string[] = []
        await broker.subscribe('room', (_payload, id) => got.push(id ?? '')).ready
        proxy.hold()
        const sent = proxy.sent.length
        const first = broker.replay('room', from)
        // Its read ran in Redis (before c); the answer is held back.
        await eventually(() => /EVAL/i.test(proxy.sent.slice(sent)), 'the first replay\'s read to reach Redis')
        const c = await other.broker.publish('room', '["c"]') as string
        await eventually(() => got.includes(c), 'c delivered to the listener')
        const second = broker.replay('room', from)
        proxy.release()
        assert.deepEqual(framesOf(await second).map((frame) => frame.id), [b, c], 'the later replay has c, delivered before it was asked')
        assert.deepEqual(framesOf(await first).map((frame) => frame.id).slice(0, 1), [b], 'the first one has b')
      })

      it('waits for the first connection of clients made the usual way (ioredis: new Redis(url); node-redis: connect() not awaited)', { timeout: 15_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const publisher = lib.usual(t, server.port)
        const subscriber = lib.usual(t, server.port)
        const errors: PatchwireError[] = []
        const broker = createRedisBroker({ publisher, subscriber, onError: (error) => errors.push(error) })
        const got = recorder()
        const stop = broker.subscribe('room', got.listener, got.onGap)
        const id = await broker.publish('room', '["early"]')
        assert.ok(typeof id === 'string' && parseEventId(id) !== undefined, String(id))
        await stop.ready
        const late = await broker.publish('room', '["late"]')
        await eventually(() => got.payloads().includes('["late"]'), 'the message')
        assert.deepEqual(got.events.at(-1), { payload: '["late"]', id: late }, 'the message published after ready arrives with its id')
        assert.deepEqual(errors, [], 'the broker reported no error')
      })

      it('rejects a publish after publishTimeoutMs when the publisher never connects, naming the fix', { timeout: 15_000 }, async (t) => {
        const server = await startRedisServer()
        t.after(() => server.stop())
        const publisher = lib.unconnected(server.port)
        const subscriber = lib.unconnected(server.port)
        t.after(() => { publisher.close(); subscriber.close() })
        const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, publishTimeoutMs: 100, onError: () => undefined })
        await assert.rejects(broker.publish('room', '[]'), (error: unknown) => {
          assert.ok(isBrokerError(error), String(error))
          assert.match((error as Error).message, /has not connected within 100 ms/, `the message names the timeout: ${(error as Error).message}`)
          assert.match((error as Error).message, lib === nodeRedis ? /connect\(\)/ : /URL/, `the message names the fix for ${lib.name}: ${(error as Error).message}`)
          return true
        }, 'the publish rejects with ERR_PATCHWIRE_BROKER')
      })

      describe('when Redis fails (a private redis-server per test)', () => {
        let server: Server
        before(async () => { server = await startRedisServer() })
        after(async () => { await server.stop() })

        it('rejects publish at once with ERR_PATCHWIRE_BROKER while the publisher is down, and reports each loss once', { timeout: 20_000 }, async (t) => {
          await server.start()
          const { broker, errors } = await brokerOn(t, lib, server.port)
          await broker.publish('room', '["up"]')
          await server.kill()
          await eventually(() => errors.length >= 2, 'both connections to be reported lost')
          assert.ok(errors.every(isBrokerError), String(errors))
          assert.match(errors.map((error) => error.message).join('\n'), /publisher/, 'the publisher\'s loss is reported')
          assert.match(errors.map((error) => error.message).join('\n'), /subscriber/, 'the subscriber\'s loss is reported')

          const started = performance.now()
          await assert.rejects(broker.publish('room', '["down"]'), (error: unknown) => {
            assert.ok(isBrokerError(error), String(error))
            assert.match((error as Error).message, /not connected/, `the message says the publisher is not connected: ${(error as Error).message}`)
            return true
          }, 'the publish rejects with ERR_PATCHWIRE_BROKER')
          assert.ok(performance.now() - started < 250, `publish took ${performance.now() - started} ms to reject`)
          assert.equal(errors.length, 2, 'an awaited publish that failed is not reported')

          await server.start()
          await publishWhenBack(broker, 'room', '["back"]')
          assert.equal(errors.length, 2, 'one report per client and outage')
        })

        it('resets every topic after Redis restarts without its data (new epoch): old ids are foreign, messages continue', { timeout: 20_000 }, async (t) => {
          await server.start()
          const { broker, errors } = await brokerOn(t, lib, server.port)
          const other = await brokerOn(t, lib, server.port)
          const a = recorder()
          const b = recorder()
          await broker.subscribe('a', a.listener, a.onGap).ready
          await broker.subscribe('b', b.listener, b.onGap).ready
          const before = await other.broker.publish('a', '["before"]') as string
          await eventually(() => a.events.length === 1, 'the first message')

          await server.kill()
          await server.start()
          await eventually(() => a.gaps() === 1 && b.gaps() === 1, 'onGap on every topic')
          const afterId = await publishWhenBack(other.broker, 'a', '["after"]')
          await eventually(() => a.payloads().includes('["after"]'), 'the message after the restart')
          assert.deepEqual(a.events, [{ payload: '["before"]', id: before }, 'gap', { payload: '["after"]', id: afterId }], 'the message before, a gap, then the message after the restart')
          assert.notEqual(epochOf(afterId), epochOf(before), 'the restart without data begins a new epoch')
          assert.ok(seqOf(afterId) > seqOf(before), 'positions keep increasing across histories')
          assert.deepEqual(await broker.replay('a', before), { reset: 'foreign-id' }, 'an id of the old epoch is foreign')
          assert.ok(errors.every(isBrokerError), String(errors))
        })

        it('never leaves a silent hole when Redis restarts without its data while publishing', { timeout: 30_000 }, async (t) => {
          await server.start()
          const { broker } = await brokerOn(t, lib, server.port)
          const other = await brokerOn(t, lib, server.port)
          const got = recorder()
          await broker.subscribe('live', got.listener, got.onGap).ready
          const loop = publishing(t, async (i) => await other.broker.publish('live', `[${i}]`) as string)
          const published = loop.taken
          await eventually(() => published.length >= 50, 'publishes before the restart')
          await server.kill()
          await server.start()
          const mark = published.length
          // Until the subscriber is live again (it got a message of the new
          // history): had the loop stopped before it was back, everything
          // published after the restart would be behind its reset, and the
          // last message would never come.
          const oldEpoch = epochOf(published[0])
          const live = (): boolean => got.events.some((event) => event !== 'gap' && epochOf(event.id) !== oldEpoch)
          await eventually(() => published.length >= mark + 50 && live(), 'publishes after the restart, and one of them delivered', 10_000)
          await loop.stop()
          await eventually(() => got.events.some((event) => event !== 'gap' && event.id === published.at(-1)), 'the last message')
          // Every message the subscriber misses must come after a gap it was told of.
          const delivered = got.events
          let index = 0
          for (const event of delivered) {
            if (event === 'gap') continue
            const at = published.indexOf(event.id, index)
            assert.ok(at >= 0, `delivered ${event.id} out of order or twice`)
            if (at > index) {
              const before = delivered.slice(0, delivered.indexOf(event))
              const lastDelivered = before.findLastIndex((e) => e !== 'gap')
              assert.ok(before.slice(lastDelivered + 1).includes('gap'), `missed ${published.slice(index, at).join(', ')} without onGap`)
            }
            index = at + 1
          }
          assert.ok(got.gaps() >= 1, 'the lost history reset the topic')
        })

        it('refills from the stream what CLIENT KILL TYPE pubsub cut off: every message once, in order, across topics, no onGap', { timeout: 30_000 }, async (t) => {
          await server.start()
          const { broker, errors } = await brokerOn(t, lib, server.port)
          const other = await brokerOn(t, lib, server.port)
          const admin = await probe(t, server.port)
          const got: string[] = []
          let gaps = 0
          for (const topic of ['p', 'q']) await broker.subscribe(topic, (_payload, id) => got.push(id ?? ''), () => { gaps++ }).ready
          const topics = ['p', 'q', 'unsubscribed']
          const loop = publishing(t, async (i) => ({ topic: topics[i % 3] as string, id: await other.broker.publish(topics[i % 3] as string, `[${i}]`) as string }))
          await cutWhilePublishing(admin, ['patchwire:p', 'patchwire:q'], loop)
          assert.equal(loop.refused, 0, 'Redis stayed up: every publish was taken')
          const expected = loop.taken.filter((entry) => entry.topic !== 'unsubscribed').map((entry) => entry.id)
          await eventually(() => got.length >= expected.length, 'every message', 10_000)
          assert.deepEqual(got, expected, 'every message of p and q once, in publish order')
          assert.equal(gaps, 0, 'no onGap: the stream refilled what the cuts lost')
          assert.ok(errors.some((error) => /lost the connection of the Redis subscriber/.test(error.message)), 'the kills reached the subscriber')
        })

        it('resets a topic whose missed messages the stream no longer holds, then goes on', { timeout: 20_000 }, async (t) => {
          await server.start()
          const proxy = await startRedisProxy(server.port)
          t.after(() => proxy.close())
          const { broker } = await brokerOn(t, lib, server.port, { history: 5 }, await lib.connect(t, proxy.port))
          const other = await brokerOn(t, lib, server.port, { history: 5 })
          const got = recorder()
          await broker.subscribe('room', got.listener, got.onGap).ready
          const first = await other.broker.publish('room', '["first"]') as string
          await eventually(() => got.events.length === 1, 'the first message')
          // The subscriber hears nothing more, then loses its connection: the
          // 300 messages it missed are more than the stream keeps.
          proxy.hold()
          for (let i = 0; i < 300; i++) await other.broker.publish('room', `[${i}]`)
          proxy.cut(0)
          await eventually(() => got.gaps() === 1, 'onGap')
          const next = await other.broker.publish('room', '["next"]') as string
          await eventually(() => got.payloads().includes('["next"]'), 'the next message')
          assert.deepEqual(got.events, [{ payload: '["first"]', id: first }, 'gap', { payload: '["next"]', id: next }], 'the first message, a gap for the 300 the stream no longer holds, then the next')
        })

        it('refills a message that never arrived on a connection that stayed up, before the one after it', { timeout: 20_000 }, async (t) => {
          await server.start()
          const prefix = uniquePrefix()
          const { broker, errors, publisher } = await brokerOn(t, lib, server.port, { prefix })
          const got = recorder()
          await broker.subscribe('room', got.listener, got.onGap).ready
          await broker.subscribe('other', got.listener, got.onGap).ready
          const first = await broker.publish('room', '["first"]') as string
          // The publish script with a channel nobody listens to: kept in the
          // stream, lost on pub/sub, as a dropped message would be.
          const layout = keyLayout(prefix)
          const reply = await PUBLISH_SCRIPT.run(connectionOf(publisher.client, 'publisher'), [layout.epoch, layout.seq, layout.last('room'), layout.stream('room')], [
            ...historyArgs({ epoch: undefined, seen: 0 }, 60_000), '1000', '60000', 'nowhere', '1', '["lost"]',
          ])
          const lost = parsePublishReply(reply)
          const third = await broker.publish('room', '["third"]') as string
          await eventually(() => got.events.length === 3, 'three messages')
          assert.deepEqual(got.events, [
            { payload: '["first"]', id: first },
            { payload: '["lost"]', id: `${lost.epoch}-${String(lost.results[0])}` },
            { payload: '["third"]', id: third },
          ], 'the lost message is refilled from the stream before the third')
          const later = await broker.publish('other', '["later"]') as string
          await eventually(() => got.events.length === 4, 'the next message')
          assert.deepEqual(got.events.at(-1), { payload: '["later"]', id: later }, 'and delivery goes on')
          assert.deepEqual(errors, [], 'the broker reported no error')
        })

        it('resets the topics it cannot refill because the publisher does not answer, then goes on', { timeout: 20_000 }, async (t) => {
          await server.start()
          const proxy = await startRedisProxy(server.port)
          t.after(() => proxy.close())
          const publisher = await lib.connect(t, proxy.port)
          const subscriber = await lib.connect(t, server.port)
          const errors: PatchwireError[] = []
          const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, publishTimeoutMs: 200, onError: (error) => errors.push(error) })
          const other = await brokerOn(t, lib, server.port)
          const admin = await probe(t, server.port)
          const got = recorder()
          await broker.subscribe('room', got.listener, got.onGap).ready
          await other.broker.publish('room', '["first"]')
          await eventually(() => got.events.length === 1, 'the first message')
          proxy.hold()
          await killSubscriber(admin, ['patchwire:room'])
          await eventually(() => got.gaps() === 1, 'onGap once the refill timed out')
          const next = await other.broker.publish('room', '["next"]') as string
          await eventually(() => got.payloads().includes('["next"]'), 'the next message')
          assert.deepEqual(got.events.slice(1), ['gap', { payload: '["next"]', id: next }], 'a gap, as the refill could not be read, then the next message')
          proxy.cut(0)
        })

        it('resets the topics after FLUSHALL: a new epoch, old ids foreign, subscribers told through onGap', { timeout: 20_000 }, async (t) => {
          await server.start()
          const { broker, errors } = await brokerOn(t, lib, server.port)
          const admin = await probe(t, server.port)
          const got = recorder()
          await broker.subscribe('room', got.listener, got.onGap).ready
          const old = await broker.publish('room', '["old"]') as string
          await admin.sendCommand(['FLUSHALL'])
          const fresh = await broker.publish('room', '["new"]') as string
          assert.notEqual(epochOf(fresh), epochOf(old), 'FLUSHALL begins a new epoch')
          assert.ok(seqOf(fresh) > seqOf(old), `positions keep increasing across the flush: ${old} then ${fresh}`)
          await eventually(() => got.payloads().length === 2, 'both messages')
          assert.deepEqual(got.events, [{ payload: '["old"]', id: old }, 'gap', { payload: '["new"]', id: fresh }], 'the old message, a gap, then the new one')
          assert.deepEqual(await broker.replay('room', old), { reset: 'foreign-id' }, 'an id from before the flush is foreign')
          assert.deepEqual(framesOf(await broker.replay('room', await broker.position('room'))), [], 'a replay from the new position gives nothing')
          assert.deepEqual(errors, [], 'the broker reported no error')
        })

        it('runs its scripts again after SCRIPT FLUSH (NOSCRIPT falls back to EVAL)', { timeout: 15_000 }, async (t) => {
          await server.start()
          const { broker } = await brokerOn(t, lib, server.port)
          const admin = await probe(t, server.port)
          await broker.publish('room', '[1]')
          await admin.sendCommand(['SCRIPT', 'FLUSH'])
          const evals = await commandCalls(admin, ['eval'])
          const id = await broker.publish('room', '[2]') as string
          await broker.position('room')
          assert.equal(await commandCalls(admin, ['eval']), evals + 2, 'after SCRIPT FLUSH, the publish and the position each fall back to EVAL once')
          const shas = await commandCalls(admin, ['evalsha'])
          await broker.publish('room', '[3]')
          assert.equal(await commandCalls(admin, ['evalsha']), shas + 1, 'the next publish runs its script by EVALSHA again')
          assert.equal(await commandCalls(admin, ['eval']), evals + 2, 'with no further EVAL')
          assert.deepEqual(framesOf(await broker.replay('room', id)).map((frame) => frame.payload), ['[3]'], 'a replay after the second publish gives the third')
        })

        it('starts a new epoch when Redis comes back from a snapshot older than ids already issued', { timeout: 20_000 }, async (t) => {
          const dir = `/tmp/patchwire-redis-${randomUUID()}`
          const persistent = await startRedisServer(['--dir', '/tmp', '--dbfilename', `${dir.slice(5)}.rdb`])
          t.after(() => persistent.stop())
          const { broker } = await brokerOn(t, lib, persistent.port)
          const admin = await probe(t, persistent.port)
          await broker.publish('room', '["saved"]')
          await admin.sendCommand(['SAVE'])
          const lost = await broker.publish('room', '["lost with the restart"]') as string
          admin.destroy()
          await persistent.kill()
          await persistent.start()
          const next = await publishWhenBack(broker, 'room', '["after"]')
          assert.notEqual(epochOf(next), epochOf(lost), 'the rolled-back counter would issue ids twice')
          assert.ok(seqOf(next) > seqOf(lost), `positions keep increasing across the rollback: ${lost} then ${next}`)
          assert.deepEqual(await broker.replay('room', lost), { reset: 'foreign-id' }, 'an id lost with the rollback is foreign')
        })

        it('reports a subscriber that gives up reconnecting, resets every topic, and refuses new subscriptions', { timeout: 20_000 }, async (t) => {
          await server.start()
          const { broker, errors } = await brokerOn(t, lib, server.port, {}, await lib.connect(t, server.port, 1))
          const gaps: string[] = []
          await broker.subscribe('a', () => undefined, () => gaps.push('a')).ready
          await broker.subscribe('b', () => undefined, () => gaps.push('b')).ready
          const closedForGood = (): PatchwireError[] => errors.filter((error) => /subscriber closed for good/.test(error.message))

          await server.kill()
          await eventually(() => closedForGood().length > 0, 'the subscriber to be reported closed')
          assert.deepEqual(gaps.toSorted(), ['a', 'b'], 'onGap on every topic')
          assert.ok(errors.every(isBrokerError), String(errors))
          // At once, rather than a subscription that waits for ever.
          for (const topic of ['a', 'c']) {
            await assert.rejects(Promise.resolve(broker.subscribe(topic, () => undefined).ready), (error: unknown) => isBrokerError(error), `a new subscription to ${topic} is refused at once with ERR_PATCHWIRE_BROKER`)
          }
          // Redis is back, the subscriber's client stays closed: reported once.
          await server.start()
          await publishWhenBack(broker, 'a', '[]')
          assert.equal(closedForGood().length, 1, 'the subscriber closed for good is reported once')
          assert.deepEqual(gaps.toSorted(), ['a', 'b'], 'and no further onGap')
        })

        it('rejects a publish that Redis does not confirm within publishTimeoutMs', { timeout: 20_000 }, async (t) => {
          await server.start()
          const { broker } = await brokerOn(t, lib, server.port, { publishTimeoutMs: 200 })
          await server.pause()
          t.after(() => server.resume())
          const started = performance.now()
          await assert.rejects(broker.publish('room', '["stuck"]'), (error: unknown) => {
            assert.ok(isBrokerError(error), String(error))
            assert.match((error as Error).message, /200 ms/, `the message names the timeout: ${(error as Error).message}`)
            return true
          }, 'the publish rejects with ERR_PATCHWIRE_BROKER')
          const elapsed = performance.now() - started
          assert.ok(elapsed >= 190 && elapsed < 2000, `rejected after ${elapsed} ms`)
          server.resume()
          await broker.publish('room', '["unstuck"]')
        })

        it('settles ready for new subscriptions once a topic whose SUBSCRIBE failed is subscribed again on reconnect', { timeout: 20_000 }, async (t) => {
          await server.start()
          const { broker, errors } = await brokerOn(t, lib, server.port)
          const admin = await probe(t, server.port)
          const got: string[] = []
          let gaps = 0
          await allowSubscribe(admin, false)
          const first = broker.subscribe('room', (payload) => got.push(payload), () => { gaps++ })
          await assert.rejects(Promise.resolve(first.ready), (error: unknown) => isBrokerError(error), 'ready rejects with ERR_PATCHWIRE_BROKER while SUBSCRIBE is refused')
          admin.destroy()

          // The restart also forgets the ACL change.
          await server.kill()
          await server.start()
          await eventually(() => gaps === 2, 'the topic to be subscribed again (onGap)')
          const admin2 = await probe(t, server.port)
          // Refused again, so that only the SUBSCRIBE of the reconnect can settle it.
          await allowSubscribe(admin2, false)
          await broker.subscribe('room', () => undefined).ready
          await allowSubscribe(admin2, true)
          await publishWhenBack(broker, 'room', '["after"]')
          await eventually(() => got.length > 0, 'the message')
          assert.ok(errors.every(isBrokerError), String(errors))
        })
      })

      for (const mode of ['unobserved', 'awaited'] as const) {
        it(`does not crash the process on a publish that fails during an outage (${mode}): ${mode === 'unobserved' ? 'it goes to onError' : 'it rejects with ERR_PATCHWIRE_BROKER, not reported'}`, { timeout: 30_000 }, async (t) => {
          const outcome = await runChild(t, [lib.name, mode])
          assert.equal(outcome.code, 0, outcome.output)
          const result = JSON.parse(outcome.output.trim().split('\n').at(-1) ?? '{}') as { reported: string[], caught: string[] }
          if (mode === 'unobserved') assert.deepEqual(result, { reported: Array(3).fill('ERR_PATCHWIRE_BROKER'), caught: [] }, 'unobserved: each failed publish goes to onError, none is thrown')
          else assert.deepEqual(result, { reported: [], caught: Array(3).fill('ERR_PATCHWIRE_BROKER') }, 'awaited: each failed publish rejects, none is reported')
        })
      }
    })
  }

  it('the crash fixture does crash on a plain unhandled rejection (control)', { timeout: 30_000 }, async (t) => {
    const outcome = await runChild(t, ['ioredis', 'raw'])
    assert.notEqual(outcome.code, 0, `the fixture crashes on a plain unhandled rejection: ${outcome.output}`)
    assert.match(outcome.output, /an unhandled rejection/, 'and says so')
  })

  it('works with a node-redis publisher and an ioredis subscriber', { timeout: 15_000 }, async (t) => {
    const prefix = uniquePrefix()
    const publisher = await nodeRedis.connect(t, shared.port)
    const subscriber = await ioRedis.connect(t, shared.port)
    const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, prefix })
    const got: string[] = []
    await broker.subscribe('room', (payload) => got.push(payload)).ready
    await broker.publish('room', '["mixed"]')
    await eventually(() => got.length === 1, 'the message')
    assert.deepEqual(got, ['["mixed"]'], 'the message arrives with mixed clients')
  })

  it('reports an UNSUBSCRIBE that fails (ioredis, closed subscriber)', { timeout: 15_000 }, async (t) => {
    const { broker, errors, subscriber } = await brokerOn(t, ioRedis, shared.port, { prefix: uniquePrefix() })
    const stop = broker.subscribe('room', () => undefined)
    await stop.ready
    subscriber.close()
    await eventually(() => (subscriber.client as Redis).status === 'end', 'the client to close')
    stop()
    await eventually(() => errors.some((error) => /unsubscribe/.test(error.message)), 'the UNSUBSCRIBE failure')
    assert.ok(errors.every(isBrokerError), String(errors))
  })

  it('reports to console.error when no onError is given', { timeout: 15_000 }, async (t) => {
    const prefix = uniquePrefix()
    const publisher = await nodeRedis.connect(t, shared.port)
    const subscriber = await nodeRedis.connect(t, shared.port)
    const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, prefix })
    const consoleError = t.mock.method(console, 'error', () => undefined)
    broker.subscribe('room', () => { throw new Error('boom') })
    await broker.subscribe('room', () => undefined).ready
    await broker.publish('room', '[1]')
    await eventually(() => consoleError.mock.callCount() === 1, 'console.error')
    assert.match(String(consoleError.mock.calls[0]?.arguments[0]), /ERR_PATCHWIRE_LISTENER/, 'the listener\'s throw goes to console.error, with its code')
  })

  describe('option checks', () => {
    let node: ReturnType<Lib['unconnected']>
    let io: ReturnType<Lib['unconnected']>
    let valid: { publisher: RedisClient, subscriber: RedisClient }
    before(() => {
      node = nodeRedis.unconnected(shared.port)
      io = ioRedis.unconnected(shared.port)
      valid = { publisher: node.client, subscriber: io.client }
    })
    after(() => {
      node.close()
      io.close()
    })

    it('throws TypeError for missing or unknown clients', () => {
      assert.throws(() => createRedisBroker(undefined as unknown as RedisBrokerOptions), TypeError, 'no options')
      assert.throws(() => createRedisBroker({ ...valid, publisher: undefined as unknown as RedisClient }), /publisher must be a node-redis client/, 'no publisher')
      assert.throws(() => createRedisBroker({ ...valid, subscriber: null as unknown as RedisClient }), /subscriber must be .*got null/, 'a null subscriber, named in the message')
      assert.throws(() => createRedisBroker({ ...valid, subscriber: { publish() {}, subscribe() {} } as unknown as RedisClient }), TypeError, 'a subscriber that is neither a node-redis nor an ioredis client')
      // An ioredis 4 client: no `call`.
      assert.throws(() => createRedisBroker({ ...valid, subscriber: { status: 'ready', subscribe() {}, unsubscribe() {}, on() {} } as unknown as RedisClient }), /ioredis 5/, 'an ioredis 4 client: the message asks for ioredis 5')
    })

    it('throws TypeError when publisher and subscriber are the same client', () => {
      assert.throws(() => createRedisBroker({ publisher: node.client, subscriber: node.client }), /two connections.*duplicate\(\)/, 'one client for both: the message asks for two connections, with duplicate()')
    })

    it('throws TypeError for a prefix that is not a string, or an onError that is not a function', () => {
      assert.throws(() => createRedisBroker({ ...valid, prefix: 1 as unknown as string }), /prefix must be a string/, 'a prefix that is a number')
      assert.throws(() => createRedisBroker({ ...valid, onError: 'log' as unknown as () => void }), /onError must be a function/, 'an onError that is a string')
    })

    it('throws RangeError for a publishTimeoutMs that is not a positive number up to 2147483647', () => {
      // Above 2^31 - 1 ms, setTimeout would fire after 1 ms.
      for (const publishTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5' as unknown as number]) {
        assert.throws(() => createRedisBroker({ ...valid, publishTimeoutMs }), (error: unknown) => error instanceof RangeError && /publishTimeoutMs/.test(error.message), String(publishTimeoutMs))
      }
      assert.doesNotThrow(() => createRedisBroker({ ...valid, publishTimeoutMs: 2 ** 31 - 1, onError: () => undefined }), 'publishTimeoutMs 2^31 - 1 is accepted')
    })

    it('throws RangeError for a history that is not a whole number from 0, or a historyMs not one from 1', () => {
      for (const history of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
        assert.throws(() => createRedisBroker({ ...valid, history }), (error: unknown) => error instanceof RangeError && /history must be/.test(error.message), String(history))
      }
      for (const historyMs of [0, -1, 1.5, Number.NaN, '5' as unknown as number]) {
        assert.throws(() => createRedisBroker({ ...valid, historyMs }), (error: unknown) => error instanceof RangeError && /historyMs must be/.test(error.message), String(historyMs))
      }
      assert.doesNotThrow(() => createRedisBroker({ ...valid, history: 0, historyMs: 1, onError: () => undefined }), 'history 0 and historyMs 1 are accepted')
    })

    it('throws TypeError from subscribe when the listener is not a function', () => {
      const broker = createRedisBroker({ ...valid, onError: () => undefined })
      assert.throws(() => broker.subscribe('room', undefined as unknown as () => void), /listener must be a function/, 'subscribe with no listener')
    })
  })
})

/** Runs test/fixtures/redis-unobserved-publish.ts; resolves with its exit code and output. */
async function runChild(t: TestContext, args: string[]): Promise<{ code: number | null, output: string }> {
  const child = fork(fileURLToPath(new URL('./fixtures/redis-unobserved-publish.ts', import.meta.url)), args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, output }
}

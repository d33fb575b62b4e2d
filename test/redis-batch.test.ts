/**
 * patchwire/redis publishes in batches, against a real Redis, with both
 * client libraries: the publishes of one turn go out in one script call,
 * with ids in publish order across topics; a message Redis refuses inside a
 * batch fails alone and is not delivered; a batch that fails as a whole
 * rejects every publish of it and delivers none. A lone publish (the
 * lighter script) keeps the same guarantees: a refused message leaves the
 * topic's chain as it was, and a lost epoch or counter starts a new epoch. And a broker with no
 * subscriber publishes, and refuses what needs one, naming the option.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createRedisBroker } from '../src/adapters/redis/index.ts'
import { connectionOf } from '../src/adapters/redis/clients.ts'
import { LONE_PUBLISH } from '../src/adapters/redis/lone-publish.ts'
import { Script, keyLayout } from '../src/adapters/redis/scripts.ts'
import type { PatchwireError } from '../src/errors.ts'
import { recorder } from './helpers/broker-recorder.ts'
import { LIBS, SCRIPT_COMMANDS, brokerOn, commandCalls, epochOf, eventually, isBrokerError, probe, seqOf, uniquePrefix } from './helpers/redis.ts'
import type { Server } from './helpers/redis.ts'
import { startRedisServer } from './helpers/redis-server.ts'

describe('createRedisBroker publishing in batches', { timeout: 120_000 }, () => {
  let server: Server
  before(async () => { server = await startRedisServer() })
  after(async () => { await server.stop() })

  for (const lib of LIBS) {
    describe(`with ${lib.name} clients`, () => {
      it('sends the publishes of one turn in a few script calls, with ids in publish order across topics, each delivered once', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const a = await brokerOn(t, lib, server.port, { prefix })
        const b = await brokerOn(t, lib, server.port, { prefix })
        const admin = await probe(t, server.port)
        const got = recorder()
        for (const topic of ['x', 'y', 'z']) await b.broker.subscribe(topic, got.listener, got.onGap).ready
        // Both scripts loaded: a lone publish runs one, the two after it (one batch) the other.
        await Promise.all(Array.from({ length: 3 }, () => a.broker.publish('x', '["warm"]')))
        await eventually(() => got.events.length === 3, 'the first messages')
        const before = await commandCalls(admin, SCRIPT_COMMANDS)
        const topics = ['x', 'y', 'z', 'x', 'other']
        const sent = Array.from({ length: 600 }, (_, i) => ({ topic: topics[i % topics.length] as string, payload: `[${i}]` }))
        const ids = await Promise.all(sent.map(({ topic, payload }) => a.broker.publish(topic, payload))) as string[]
        // One call at once, then the 599 others in calls of 256.
        assert.equal(await commandCalls(admin, SCRIPT_COMMANDS) - before, 4, 'one script call for the first publish, three for the 599 made while it was under way')
        assert.equal(new Set(ids.map(epochOf)).size, 1, 'one epoch')
        for (let i = 1; i < ids.length; i++) assert.ok(seqOf(ids[i]) > seqOf(ids[i - 1]), `${ids[i]} after ${ids[i - 1]}: ids follow publish order`)
        const expected = sent.flatMap(({ topic, payload }, i) => topic === 'other' ? [] : [{ payload, id: ids[i] as string }])
        await eventually(() => got.events.length >= expected.length + 3, 'every message')
        assert.deepEqual(got.events.slice(3), expected, 'each message once, in id order across the topics, with the id publish resolved with')
        assert.deepEqual([a.errors, b.errors], [[], []], 'no error reported')
      })

      it('rejects alone a message whose key Redis refuses inside a batch, and delivers the others', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, server.port, { prefix })
        const admin = await probe(t, server.port)
        const got = recorder()
        await broker.subscribe('good', got.listener, got.onGap).ready
        await broker.subscribe('bad', got.listener, got.onGap).ready
        // Something else wrote the topic's stream key as a string: XADD fails there.
        await admin.sendCommand(['SET', keyLayout(prefix).stream('bad'), 'not a stream'])
        const before = await commandCalls(admin, SCRIPT_COMMANDS)
        const sent = [broker.publish('good', '[0]'), broker.publish('good', '[1]'), broker.publish('bad', '[2]'), broker.publish('good', '[3]'), broker.publish('bad', '[4]')]
        const results = await Promise.allSettled(sent)
        assert.equal(await commandCalls(admin, SCRIPT_COMMANDS) - before, 2, 'the first publish alone, the four others in one call')
        const ids = results.map((result) => result.status === 'fulfilled' ? result.value : undefined)
        assert.equal([ids[0], ids[1], ids[3]].filter((id) => typeof id === 'string').length, 3, 'the messages of the good topic are published')
        for (const i of [2, 4]) {
          const result = results[i] as PromiseSettledResult<unknown>
          assert.ok(result.status === 'rejected' && isBrokerError(result.reason), `publish ${i} rejects with ERR_PATCHWIRE_BROKER`)
          assert.match((result as PromiseRejectedResult).reason.message, /Redis refused to publish to topic "bad" \(WRONGTYPE/, 'naming the topic and the refusal')
        }
        await broker.publish('good', '["after"]')
        await eventually(() => got.payloads().includes('["after"]'), 'the message after')
        assert.deepEqual(got.payloads(), ['[0]', '[1]', '[3]', '["after"]'], 'the refused messages never arrive, the others each once, in order')
        assert.deepEqual(got.events.slice(0, 3).map((event) => typeof event === 'string' ? event : event.id), [ids[0], ids[1], ids[3]], 'with the ids publish resolved with')
        assert.deepEqual(errors, [], 'no error reported: every rejection was awaited')
      })

      it('rejects every publish of a batch that fails as a whole with ERR_PATCHWIRE_BROKER, and delivers none of them', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker } = await brokerOn(t, lib, server.port, { prefix })
        const admin = await probe(t, server.port)
        const got = recorder()
        await broker.subscribe('room', got.listener, got.onGap).ready
        await broker.publish('room', '["before"]')
        await eventually(() => got.events.length === 1, 'the first message')
        // The counter of another type: the script fails before it writes anything.
        const { seq } = keyLayout(prefix)
        await admin.sendCommand(['DEL', seq])
        await admin.sendCommand(['SADD', seq, 'not a counter'])
        const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => broker.publish(i % 2 === 0 ? 'room' : 'other', `[${i}]`)))
        for (const [i, result] of results.entries()) {
          assert.ok(result.status === 'rejected' && isBrokerError(result.reason), `publish ${i} rejects with ERR_PATCHWIRE_BROKER`)
          assert.match((result as PromiseRejectedResult).reason.message, /Redis refused to publish/, 'Redis refused the call')
        }
        await admin.sendCommand(['DEL', seq])
        const next = await broker.publish('room', '["after"]') as string
        await eventually(() => got.payloads().includes('["after"]'), 'the message after')
        assert.deepEqual(got.payloads(), ['["before"]', '["after"]'], 'none of the failed batch was delivered')
        assert.equal((got.events.at(-1) as { id: string }).id, next, 'the next publish goes through')
      })

      it('rejects a lone publish whose stream Redis refuses, leaves the topic\'s chain as it was, and delivers the next one without a gap', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker, errors } = await brokerOn(t, lib, server.port, { prefix })
        const admin = await probe(t, server.port)
        const got = recorder()
        await broker.subscribe('room', got.listener, got.onGap).ready
        const first = await broker.publish('room', '[1]') as string
        const layout = keyLayout(prefix)
        await admin.sendCommand(['RENAME', layout.stream('room'), `${prefix}kept`])
        await admin.sendCommand(['SET', layout.stream('room'), 'not a stream'])
        await assert.rejects(broker.publish('room', '[2]'), (error: unknown) => isBrokerError(error) && /Redis refused to publish to topic "room" \(WRONGTYPE/.test((error as Error).message), 'the refusal, naming the topic')
        assert.equal(await admin.sendCommand(['GET', layout.last('room')]), String(seqOf(first)), 'the topic\'s last position is the message before')
        await admin.sendCommand(['RENAME', `${prefix}kept`, layout.stream('room')])
        const third = await broker.publish('room', '[3]') as string
        await eventually(() => got.events.length === 2, 'the next message')
        assert.deepEqual(got.events, [{ payload: '[1]', id: first }, { payload: '[3]', id: third }], 'delivered, chained to the message before, with no gap')
        const [entry] = await admin.sendCommand(['XRANGE', layout.stream('room'), String(seqOf(third)), '+']) as [[string, string[]]]
        assert.deepEqual(entry[1], ['d', '[3]', 'p', String(seqOf(first))], 'its stream entry points to the message before')
        assert.deepEqual(errors, [], 'no error reported')
      })

      it('starts a new epoch from a lone publish when the epoch or the counter alone is gone, above every position issued', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const { broker } = await brokerOn(t, lib, server.port, { prefix })
        const admin = await probe(t, server.port)
        const got = recorder()
        await broker.subscribe('room', got.listener, got.onGap).ready
        const layout = keyLayout(prefix)
        let id = await broker.publish('room', '[0]') as string
        for (const key of [layout.seq, layout.epoch]) {
          await admin.sendCommand(['DEL', key])
          // A process that has not seen the history yet: it has nothing to compare the counter with.
          const fresh = createRedisBroker({ publisher: (await lib.connect(t, server.port)).client, prefix })
          const next = await fresh.publish('room', `["without ${key}"]`) as string
          assert.notEqual(epochOf(next), epochOf(id), `a new epoch once ${key} is gone`)
          assert.ok(seqOf(next) > seqOf(id), `${next} after ${id}: positions keep increasing`)
          id = next
        }
        await eventually(() => got.payloads().length === 3, 'every message')
        assert.equal(got.gaps(), 2, 'the topic is reset at each new epoch')
        assert.deepEqual(got.events.filter((event) => event !== 'gap').map((event) => event.id).at(-1), id, 'the last message with the id publish resolved with')
      })

      it('publishes and revokes without a subscriber, and refuses subscribe, position, replay and onRevoke naming the subscriber option', { timeout: 15_000 }, async (t) => {
        const prefix = uniquePrefix()
        const listening = await brokerOn(t, lib, server.port, { prefix })
        const publisher = await lib.connect(t, server.port)
        const errors: PatchwireError[] = []
        const broker = createRedisBroker({ publisher: publisher.client, prefix, onError: (error) => errors.push(error) })
        const got = recorder()
        await listening.broker.subscribe('room', got.listener, got.onGap).ready
        const ids = await Promise.all(['[1]', '[2]', '[3]'].map((payload) => broker.publish('room', payload)))
        await eventually(() => got.events.length === 3, 'the messages')
        assert.deepEqual(got.events, ['[1]', '[2]', '[3]'].map((payload, i) => ({ payload, id: ids[i] })), 'another process gets them, with their ids')
        const admin = await probe(t, server.port)
        const clients = String(await admin.sendCommand(['CLIENT', 'LIST']))
        assert.equal(clients.split('\n').filter((line) => / flags=P /.test(line)).length, 1, 'only the listening broker holds a subscribed connection')
        const named = (call: () => unknown, what: RegExp): void => {
          assert.throws(call, (error: unknown) => error instanceof TypeError && what.test(error.message) && /has no subscriber.*Pass the subscriber option/.test(error.message), `${what}: a TypeError naming the subscriber option`)
        }
        named(() => broker.subscribe('room', () => undefined), /cannot subscribe to topic "room"/)
        named(() => broker.position?.('room'), /cannot read the position of topic "room"/)
        named(() => broker.replay?.('room', ids[0] as string), /cannot replay topic "room"/)
        named(() => broker.onRevoke?.(() => undefined), /cannot listen for revocations/)
        const heard: unknown[] = []
        listening.broker.onRevoke?.((revocation) => heard.push(revocation))
        await eventually(async () => Number((await admin.sendCommand(['PUBSUB', 'NUMSUB', `${prefix}\u0000revocations`]) as unknown[])[1]) === 1, 'the listening broker to subscribe the revocation channel')
        await broker.revoke?.({ identity: 'u1' })
        await eventually(() => heard.length === 1, 'the revocation to reach the listening broker')
        assert.deepEqual(heard, [{ identity: 'u1' }], 'a publish-only worker revokes on every process')
        assert.deepEqual([errors, listening.errors], [[], []], 'no error reported')
      })
    })
  }

  it('publishes, chains and refuses the same way where SET … GET is not used (the lone script before Redis 7)', { timeout: 15_000 }, async (t) => {
    const admin = await probe(t, server.port)
    const connection = connectionOf(admin, 'publisher')
    const layout = keyLayout(uniquePrefix())
    assert.ok(LONE_PUBLISH.includes('redis.REDIS_VERSION_NUM ~= nil'), 'the script tells Redis 7 by the version it names to scripts')
    const before7 = new Script(LONE_PUBLISH.replace('redis.REDIS_VERSION_NUM ~= nil', 'false'))
    const keys = [layout.epoch, layout.seq, layout.last('room'), layout.stream('room')]
    const run = (known: string, seen: number, payload: string): Promise<unknown> => before7.run(connection, keys, [known, String(seen), 'e0', '86400000', '100', '60000', layout.channel('room'), payload])
    const entryOf = async (seq: number): Promise<unknown> => ((await admin.sendCommand(['XRANGE', layout.stream('room'), String(seq), String(seq)])) as [[string, string[]]])[0]?.[1]
    const created = await run('', 0, '[1]') as [string, string]
    assert.equal(created[0], 'e0', 'a new history, under the epoch the call brought')
    const first = Number(created[1])
    const second = await run('e0', first, '[2]')
    assert.equal(second, first + 1, 'the next position, alone, in the epoch the call knew')
    assert.deepEqual([await admin.sendCommand(['GET', layout.last('room')]), await entryOf(first + 1)], [String(first + 1), ['d', '[2]', 'p', String(first)]], 'last moved on, and the entry points to the message before')
    await admin.sendCommand(['RENAME', layout.stream('room'), `${layout.stream('room')}:kept`])
    await admin.sendCommand(['SET', layout.stream('room'), 'not a stream'])
    assert.match(String(await run('e0', first + 1, '[3]')), /^WRONGTYPE/, 'Redis\'s refusal as the reply')
    assert.equal(await admin.sendCommand(['GET', layout.last('room')]), String(first + 1), 'last is left as it was')
    await admin.sendCommand(['RENAME', `${layout.stream('room')}:kept`, layout.stream('room')])
    assert.equal(await run('e0', first + 1, '[4]'), first + 3, 'the refused position stays unused')
    assert.deepEqual(await entryOf(first + 3), ['d', '[4]', 'p', String(first + 1)], 'chained to the last message published')
  })
})

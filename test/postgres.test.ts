/**
 * patchwire/postgres against a real PostgreSQL: one private server for the
 * file (test/helpers/postgres-server.ts), an empty database per test (the
 * broker's tables have fixed names), and servers of their own for the tests
 * that kill or recreate it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { createPostgresBroker, postgresSchema } from '../src/adapters/postgres/index.ts'
import type { HistoryFrame, ReplayResult } from '../src/broker/broker.ts'
import { PatchwireError } from '../src/errors.ts'
import { parseEventId } from '../src/protocol/event-id.ts'
import { recorder } from './helpers/broker-recorder.ts'
import { brokerOn, freshDatabase, startPostgresServer } from './helpers/postgres-server.ts'
import type { PostgresServer } from './helpers/postgres-server.ts'

describe('createPostgresBroker', { timeout: 120_000 }, () => {
  let server: PostgresServer
  before(async () => { server = await startPostgresServer() })
  after(async () => { await server.stop() })

  it('creates its tables on an empty database and delivers every publish to the listeners of every broker, in order, with the id publish resolved with', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await brokerOn(t, url)
    const gotA = recorder()
    const gotB = recorder()
    await a.broker.subscribe('room', gotA.listener, gotA.onGap).ready
    await b.broker.subscribe('room', gotB.listener, gotB.onGap).ready
    const sent = Array.from({ length: 100 }, (_, i) => JSON.stringify([['replace', '/n', i]]))
    const ids = await Promise.all(sent.map((payload, i) => (i % 2 === 0 ? a : b).broker.publish('room', payload)))
    await eventually(() => gotA.events.length >= sent.length && gotB.events.length >= sent.length, 'every message on both brokers')
    const expected = [...sent.map((payload, i) => ({ payload, id: ids[i] as string }))].sort((x, y) => seqOf(x.id) - seqOf(y.id))
    assert.deepEqual(gotA.events, expected, 'broker a got every message once, in id order')
    assert.deepEqual(gotB.events, expected, 'broker b got every message once, in id order')
    assert.equal(new Set(ids.map((id) => parseEventId(id as string)?.epoch)).size, 1, 'one epoch')
    assert.deepEqual([...a.errors, ...b.errors], [], 'no error reported')
  })

  it('delivers a message published in a transaction if and only if it commits, exactly once', async (t) => {
    const url = await freshDatabase(server)
    const { broker, connect } = await brokerOn(t, url)
    const got = recorder()
    await broker.subscribe('doc', got.listener, got.onGap).ready
    const client = await connect()
    await client.query('BEGIN')
    await broker.publish('doc', '["rolled back"]', { transaction: client })
    await client.query('ROLLBACK')
    await client.query('BEGIN')
    const id = await broker.publish('doc', '["committed"]', { transaction: client })
    // Not before the commit: the message is not in the table for anyone else yet.
    const before = await broker.position('doc')
    assert.ok(seqOf(before) < seqOf(id), `the position ${before} stays below the uncommitted id ${id}`)
    assert.deepEqual(got.events, [], 'nothing delivered before the commit')
    await client.query('COMMIT')
    await eventually(() => got.events.length >= 1, 'the committed message')
    // A later publish proves nothing else was on its way.
    const marker = await broker.publish('doc', '["marker"]')
    await eventually(() => got.events.length >= 2, 'the marker')
    assert.deepEqual(got.events, [{ payload: '["committed"]', id }, { payload: '["marker"]', id: marker }], 'the committed message once, the rolled-back one never')
    // The rollback gave its id back: ids have no holes.
    assert.equal(seqOf(id), 1, 'the rolled-back publish left no hole')
  })

  it('numbers concurrent transactions in commit order, whatever order they began and published in, so that no resume skips one that committed late', async (t) => {
    const url = await freshDatabase(server)
    const { broker, pool, connect } = await brokerOn(t, url)
    const got = recorder()
    await broker.subscribe('ledger', got.listener, got.onGap).ready
    const early = await connect()
    const late = await connect()
    await early.query('BEGIN')
    await late.query('BEGIN')
    // `early` began first; `late` publishes first and holds the counter.
    const lateId = await broker.publish('ledger', '["late"]', { transaction: late })
    const start = await broker.position('ledger')
    let earlyId: string | undefined
    const earlyPublish = broker.publish('ledger', '["early"]', { transaction: early }).then((id) => { earlyId = id })
    // `early` waits for the counter row; it must still be waiting after the
    // server has seen its statement blocked on the lock.
    await eventually(async () => (await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH next%'`)).rows[0].n === 1, 'the second publish to wait for the counter row')
    assert.equal(earlyId, undefined, 'the second publish waits for the first transaction')
    await late.query('COMMIT')
    await earlyPublish
    await early.query('COMMIT')
    assert.ok(seqOf(earlyId) > seqOf(lateId), `the transaction that committed last (${String(earlyId)}) has the higher id (${lateId})`)
    await eventually(() => got.events.length >= 2, 'both messages')
    assert.deepEqual(got.payloads(), ['["late"]', '["early"]'], 'delivered in commit order')
    // A resume from a position taken while `late` was open gets both.
    const replay = await broker.replay('ledger', start)
    assert.deepEqual(framesOf(replay).map((frame) => frame.payload), ['["late"]', '["early"]'], 'the replay from a position taken mid-way misses neither')
  })

  it('keeps the transaction waiting for the counter when another transaction published and is still open, and rejects after publishTimeoutMs', async (t) => {
    const url = await freshDatabase(server)
    const { broker, connect } = await brokerOn(t, url, { publishTimeoutMs: 300 })
    const holder = await connect()
    await holder.query('BEGIN')
    await broker.publish('x', '[1]', { transaction: holder })
    const started = Date.now()
    const error = await broker.publish('x', '[2]').then(() => undefined, (reason: unknown) => reason)
    assert.ok(isBrokerError(error), `rejected with ERR_PATCHWIRE_BROKER, got ${String(error)}`)
    assert.ok(Date.now() - started < 3000, 'within publishTimeoutMs (and some slack for a loaded machine)')
    await holder.query('ROLLBACK')
  })

  it('answers position and replay: the frames after an id, on any broker of the database', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await brokerOn(t, url)
    await a.broker.publish('t', '[0]')
    const start = await a.broker.position('t')
    const ids: string[] = []
    for (let i = 1; i <= 5; i++) ids.push(await (i % 2 === 0 ? a : b).broker.publish(i === 3 ? 'other' : 't', `[${i}]`))
    const frames = framesOf(await b.broker.replay('t', start))
    assert.deepEqual(frames, [1, 2, 4, 5].map((i) => ({ id: ids[i - 1], payload: `[${i}]` })), 'every frame of the topic after the position')
    assert.deepEqual(framesOf(await a.broker.replay('t', ids[4] as string)), [], 'nothing after the last one')
    assert.deepEqual(await a.broker.replay('t', 'nonsense'), { reset: 'malformed-id' }, 'a malformed id')
    const epoch = parseEventId(start)?.epoch as string
    assert.deepEqual(await a.broker.replay('t', `${epoch}-999`), { reset: 'foreign-id' }, 'an id above the counter')
    assert.deepEqual(await a.broker.replay('t', 'zzzz-1'), { reset: 'foreign-id' }, 'an id of another epoch')
  })

  it('bounds the history per topic: a replay from before the kept messages is history-exceeded, never short', async (t) => {
    const url = await freshDatabase(server)
    const { broker, pool } = await brokerOn(t, url, { history: 3 })
    const first = await broker.publish('busy', '[0]')
    for (let i = 1; i < 10; i++) await broker.publish('busy', `[${i}]`)
    const quiet = await broker.publish('quiet', '["q"]')
    assert.deepEqual(await broker.replay('busy', first), { reset: 'history-exceeded' }, 'more than history after the id')
    // The trim runs about a second after a publish.
    await eventually(async () => (await pool.query(`SELECT count(*)::int AS n FROM patchwire_messages WHERE topic = 'busy'`)).rows[0].n === 3, 'the trim to keep 3 messages', 10_000)
    assert.deepEqual(await broker.replay('busy', first), { reset: 'history-exceeded' }, 'the trimmed messages are known to be gone')
    const kept = (await pool.query(`SELECT seq::int FROM patchwire_messages WHERE topic = 'busy' ORDER BY seq`)).rows.map((row) => row.seq as number)
    const epoch = parseEventId(first)?.epoch as string
    assert.deepEqual(framesOf(await broker.replay('busy', `${epoch}-${(kept[0] as number) - 1}`)).map((frame) => frame.payload), ['[7]', '[8]', '[9]'], 'a replay from just before the kept ones')
    assert.deepEqual(framesOf(await broker.replay('quiet', first)).map((frame) => frame.id), [quiet], 'the other topic is not trimmed by the busy one')
  })

  it('bounds the history by age: older messages are not replayed, and a later trim deletes them', async (t) => {
    const url = await freshDatabase(server)
    const { broker, pool } = await brokerOn(t, url, { historyMs: 200 })
    const start = await broker.position('aging')
    await broker.publish('aging', '["old"]')
    const waited = Date.now()
    await eventually(() => Date.now() - waited > 300, 'the message to age')
    assert.deepEqual(await broker.replay('aging', start), { reset: 'history-exceeded' }, 'an aged message is gone for resume')
    await broker.publish('other', '["new"]')
    await eventually(async () => (await pool.query(`SELECT count(*)::int AS n FROM patchwire_messages WHERE topic = 'aging'`)).rows[0].n === 0, 'the trim to delete it', 10_000)
    assert.deepEqual(await broker.replay('aging', start), { reset: 'history-exceeded' }, 'still refused once deleted')
  })

  it('refills from the table what was published while its LISTEN connection was gone (pg_terminate_backend), with no reset', async (t) => {
    const url = await freshDatabase(server)
    const listening = await brokerOn(t, url)
    const publisher = await brokerOn(t, url)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.after(() => admin.end())
    const got = recorder()
    await listening.broker.subscribe('feed', got.listener, got.onGap).ready
    await publisher.broker.publish('feed', '[1]')
    await eventually(() => got.events.length === 1, 'the first message')
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN patchwire%' AND datname = current_database()`)
    assert.equal(killed.rowCount, 2, 'both brokers\' LISTEN connections were terminated')
    const ids = [await publisher.broker.publish('feed', '[2]'), await publisher.broker.publish('feed', '[3]')]
    await eventually(() => got.events.length === 3, 'the messages published meanwhile')
    assert.deepEqual(got.events.slice(1), [{ payload: '[2]', id: ids[0] }, { payload: '[3]', id: ids[1] }], 'refilled in order')
    assert.equal(got.gaps(), 0, 'no reset')
    await eventually(() => listening.errors.length >= 1, 'the loss to be reported')
    assert.ok(listening.errors.every(isBrokerError), 'reported as ERR_PATCHWIRE_BROKER')
    // Listening again: a later publish arrives without any other trigger.
    await eventually(async () => (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN patchwire%' AND datname = current_database()`)).rows[0].n === 2, 'both brokers to listen again')
    const last = await publisher.broker.publish('feed', '[4]')
    await eventually(() => got.events.length === 4, 'a message after the reconnection')
    assert.deepEqual(got.events[3], { payload: '[4]', id: last }, 'the later message')
  })

  it('resets a topic whose messages were trimmed before this process could read them, and goes on after it', async (t) => {
    const url = await freshDatabase(server)
    // Two connections: one for LISTEN, one the test takes to starve the
    // reads, which wait for it (a long publishTimeoutMs: they must not fail).
    const reader = await brokerOn(t, url, { publishTimeoutMs: 20_000 }, { max: 2 })
    const publisher = await brokerOn(t, url, { history: 2 })
    const got = recorder()
    await reader.broker.subscribe('t', got.listener, got.onGap).ready
    await publisher.broker.publish('t', '["before"]')
    await eventually(() => got.events.length === 1, 'the first message')
    await eventually(() => reader.pool.totalCount === 2 && reader.pool.idleCount === 1, 'an idle connection to take')
    const held = await reader.connect()
    for (let i = 0; i < 6; i++) await publisher.broker.publish('t', `[${i}]`)
    await eventually(() => reader.pool.waitingCount >= 1, 'a read to wait for a connection')
    await eventually(async () => (await publisher.pool.query(`SELECT count(*)::int AS n FROM patchwire_messages WHERE topic = 't'`)).rows[0].n === 2, 'the trim to keep 2 messages', 10_000)
    held.release()
    await eventually(() => got.gaps() === 1, 'the reset once the reads work again', 10_000)
    assert.deepEqual(got.payloads(), ['["before"]'], 'nothing of the hole is delivered: the reset (and the snapshot) covers it')
    const after = await publisher.broker.publish('t', '["after"]')
    await eventually(() => got.payloads().includes('["after"]'), 'a message after the reset')
    assert.deepEqual(got.events.at(-1), { payload: '["after"]', id: after }, 'delivered as usual')
    assert.deepEqual(reader.errors, [], 'nothing failed: a hole is a reset, not an error')
  })

  it('resets every topic (a new epoch) when the tables were dropped and created again, and refuses old ids as foreign', async (t) => {
    const url = await freshDatabase(server)
    const { broker, pool } = await brokerOn(t, url)
    const got = recorder()
    await broker.subscribe('a', got.listener, got.onGap).ready
    const old = await broker.publish('a', '[1]')
    await eventually(() => got.events.length === 1, 'the first message')
    await pool.query('DROP TABLE patchwire_state, patchwire_messages, patchwire_trims')
    const fresh = await broker.publish('a', '[2]')
    assert.notEqual(parseEventId(fresh)?.epoch, parseEventId(old)?.epoch, 'the recreated tables have a new epoch')
    await eventually(() => got.gaps() === 1, 'the reset')
    assert.deepEqual(await broker.replay('a', old), { reset: 'foreign-id' }, 'an id of the lost history is foreign')
    const next = await broker.publish('a', '[3]')
    await eventually(() => got.payloads().includes('[3]'), 'a message of the new epoch')
    assert.deepEqual(got.events.at(-1), { payload: '[3]', id: next }, 'delivered with its new id')
  })

  it('starts a new epoch when the counter went back (a restore from an older backup), so that no id is issued twice', async (t) => {
    const url = await freshDatabase(server)
    const { broker, pool } = await brokerOn(t, url)
    const got = recorder()
    await broker.subscribe('a', got.listener, got.onGap).ready
    for (let i = 0; i < 5; i++) await broker.publish('a', `[${i}]`)
    await eventually(() => got.events.length === 5, 'the messages')
    const seen = await broker.position('a')
    await pool.query('UPDATE patchwire_state SET seq = seq - 3')
    await pool.query('DELETE FROM patchwire_messages WHERE seq > 2')
    await broker.publish('a', '["after the restore"]')
    await eventually(() => got.gaps() === 1, 'the reset')
    const now = await broker.position('a')
    assert.notEqual(parseEventId(now)?.epoch, parseEventId(seen)?.epoch, 'a new epoch')
    assert.deepEqual(await broker.replay('a', seen), { reset: 'foreign-id' }, 'ids seen before the restore are foreign')
  })

  it('rejects publish with ERR_PATCHWIRE_BROKER within publishTimeoutMs when the pool is exhausted, and never runs it later', async (t) => {
    const url = await freshDatabase(server)
    // One connection for LISTEN, one for the test to hold.
    const { broker, pool, connect } = await brokerOn(t, url, { publishTimeoutMs: 300 }, { max: 2 })
    await broker.subscribe('p', () => undefined).ready
    await eventually(() => pool.totalCount === 2 || pool.idleCount >= 1, 'the LISTEN connection')
    const held = await connect()
    assert.equal(pool.idleCount, 0, 'the pool is exhausted')
    const started = Date.now()
    const error = await broker.publish('p', '["never"]').then(() => undefined, (reason: unknown) => reason)
    const took = Date.now() - started
    assert.ok(isBrokerError(error), `rejected with ERR_PATCHWIRE_BROKER, got ${String(error)}`)
    assert.ok(took >= 250 && took < 3000, `after about publishTimeoutMs, took ${took} ms`)
    held.release()
    // The connection the rejected publish waited for goes back unused.
    await eventually(() => pool.waitingCount === 0 && pool.idleCount === 1, 'the late connection to be given back')
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM patchwire_messages WHERE payload = '["never"]'`)
    assert.equal(rows[0].n, 0, 'the rejected publish never ran')
  })

  it('rejects publish with ERR_PATCHWIRE_BROKER when the database is down, and works again once it is back', async (t) => {
    const own = await startPostgresServer()
    t.after(() => own.stop())
    const { broker, errors } = await brokerOn(t, own.url, { publishTimeoutMs: 1000 })
    const got = recorder()
    await broker.subscribe('d', got.listener, got.onGap).ready
    await broker.publish('d', '[1]')
    await own.kill()
    const started = Date.now()
    const error = await broker.publish('d', '[2]').then(() => undefined, (reason: unknown) => reason)
    assert.ok(isBrokerError(error), `rejected with ERR_PATCHWIRE_BROKER, got ${String(error)}`)
    assert.ok(Date.now() - started < 3000, 'within publishTimeoutMs')
    await own.start()
    let id: string | undefined
    await eventually(async () => { id = await broker.publish('d', '[3]').catch(() => undefined); return id !== undefined }, 'a publish once the database is back', 20_000)
    await eventually(() => got.payloads().includes('[3]'), 'the message after the restart', 20_000)
    assert.deepEqual(got.payloads(), ['[1]', '[3]'], 'nothing lost, nothing invented')
    assert.equal(got.gaps(), 0, 'the same data: no reset')
    assert.ok(errors.length >= 1 && errors.every((e) => e instanceof PatchwireError), 'the outage was reported')
  })

  it('gives a reset (a new epoch) when the database came back empty', async (t) => {
    const own = await startPostgresServer()
    t.after(() => own.stop())
    const { broker } = await brokerOn(t, own.url, { publishTimeoutMs: 1000 })
    const got = recorder()
    await broker.subscribe('r', got.listener, got.onGap).ready
    const old = await broker.publish('r', '[1]')
    await eventually(() => got.events.length === 1, 'the first message')
    await own.recreate()
    await eventually(() => got.gaps() === 1, 'the reset after the database lost everything', 20_000)
    assert.deepEqual(await broker.replay('r', old), { reset: 'foreign-id' }, 'old ids are foreign')
    const fresh = await broker.publish('r', '[2]')
    await eventually(() => got.payloads().includes('[2]'), 'a message in the new database', 20_000)
    assert.notEqual(parseEventId(fresh)?.epoch, parseEventId(old)?.epoch, 'a new epoch')
  })

  it('works on tables created by a migration with the exported SQL', async (t) => {
    const url = await freshDatabase(server)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.after(() => admin.end())
    await admin.query(postgresSchema)
    await admin.query(postgresSchema)
    // A role that may use the tables but create nothing.
    await admin.query(`CREATE ROLE app LOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON patchwire_state, patchwire_messages, patchwire_trims, patchwire_revocations TO app; REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
    const { broker, errors } = await brokerOn(t, url.replace('postgres@', 'app@'))
    const got = recorder()
    await broker.subscribe('m', got.listener).ready
    const id = await broker.publish('m', '["migrated"]')
    await eventually(() => got.events.length === 1, 'the message')
    assert.deepEqual(got.events, [{ payload: '["migrated"]', id }], 'published and delivered by a role that cannot create tables')
    // The revocations' ids need no privilege on a sequence.
    await broker.revoke({ identity: 'u' })
    assert.deepEqual(errors, [], 'nothing failed for want of a privilege')
  })

  it('carries a revocation to the onRevoke listeners of every broker on the database, its own once', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await brokerOn(t, url)
    const gotA: unknown[] = []
    const gotB: unknown[] = []
    a.broker.onRevoke((revocation) => gotA.push(revocation))
    const stopB = b.broker.onRevoke((revocation) => gotB.push(revocation))
    // b listens once its LISTEN connection is up: a message proves it.
    const probe = recorder()
    await b.broker.subscribe('probe', probe.listener).ready
    await a.broker.publish('probe', '[]')
    await eventually(() => probe.events.length === 1, 'b to listen')
    await a.broker.revoke({ identity: 'user-1' })
    await a.broker.revoke({ topic: 'room:1', identity: 'user-2' })
    await eventually(() => gotB.length === 2, 'both revocations on the other broker')
    assert.deepEqual(gotB, [{ identity: 'user-1' }, { identity: 'user-2', topic: 'room:1' }], 'the other broker got them')
    // Its own echo is skipped: a third revocation from b proves a's echo would have arrived.
    await b.broker.revoke({ topic: 't' })
    await eventually(() => gotA.length === 3, 'the revocation from b')
    assert.deepEqual(gotA, [{ identity: 'user-1' }, { identity: 'user-2', topic: 'room:1' }, { topic: 't' }], 'its own once each, and the other\'s')
    stopB()
    stopB()
    await a.broker.revoke({ topic: 'after' })
    await eventually(() => gotA.length === 4, 'a later revocation')
    assert.equal(gotB.length, 3, 'a stopped listener gets nothing more (b\'s own revocation reached it once)')
    assert.throws(() => a.broker.revoke({}), TypeError, 'an empty revocation')
    assert.throws(() => a.broker.revoke({ topic: 'x'.repeat(9000) }), RangeError, 'a revocation too long for a notification')
    assert.throws(() => a.broker.onRevoke('nope' as never), TypeError, 'a listener that is not a function')
  })

  it('reports a listener that throws, and the other listeners still get the message', async (t) => {
    const url = await freshDatabase(server)
    const { broker, errors } = await brokerOn(t, url)
    const got = recorder()
    broker.subscribe('x', () => { throw new Error('boom') })
    await broker.subscribe('x', got.listener).ready
    await broker.publish('x', '[1]')
    await eventually(() => got.events.length === 1, 'the message')
    assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_LISTENER', 'the throw is reported')
  })

  it('refuses bad options and bad transactions with a TypeError or RangeError naming them', async (t) => {
    const pool = new pg.Pool({ connectionString: server.url })
    t.after(() => pool.end())
    assert.throws(() => createPostgresBroker(undefined as never), /options must be an object/, 'no options')
    assert.throws(() => createPostgresBroker({ pool: {} as never }), /pool must be a node-postgres Pool/, 'not a pool')
    assert.throws(() => createPostgresBroker({ pool, history: -1 }), RangeError, 'history')
    assert.throws(() => createPostgresBroker({ pool, historyMs: 0 }), RangeError, 'historyMs')
    assert.throws(() => createPostgresBroker({ pool, publishTimeoutMs: 0 }), RangeError, 'publishTimeoutMs')
    assert.throws(() => createPostgresBroker({ pool, onError: 'x' as never }), /onError must be a function/, 'onError')
    const url = await freshDatabase(server)
    const { broker, pool: own } = await brokerOn(t, url)
    assert.throws(() => broker.publish('x', '[]', { transaction: own }), /transaction is the pool/, 'the pool as the transaction')
    assert.throws(() => broker.publish('x', '[]', { transaction: {} }), /must be a node-postgres client/, 'not a client')
    assert.throws(() => broker.subscribe('x', 'nope' as never), /listener must be a function/, 'a listener that is not a function')
  })
})

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function isBrokerError(error: unknown): boolean {
  return error instanceof PatchwireError && error.code === 'ERR_PATCHWIRE_BROKER'
}

function seqOf(id: string | undefined): number {
  const parsed = parseEventId(id ?? '')
  assert.ok(parsed !== undefined, `not an event id: ${String(id)}`)
  return parsed.seq
}

function framesOf(result: ReplayResult): readonly HistoryFrame[] {
  assert.ok('frames' in result, `expected frames, got ${JSON.stringify(result)}`)
  return result.frames
}

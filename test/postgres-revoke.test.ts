/**
 * patchwire/postgres revocations that a process did not hear: its `LISTEN`
 * connection was gone when they were sent. They are kept in
 * `patchwire_revocations`, and read from it when the connection is back,
 * then delivered late (`Revocation.lostAt`). The broker of the process that
 * loses its connection is on a pool whose next checkout the test can hold
 * back (a gate), so that the connection stays away while the test revokes.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { createPostgresBroker } from '../src/adapters/postgres/index.ts'
import type { PostgresBroker, PostgresPool } from '../src/adapters/postgres/index.ts'
import type { Revocation } from '../src/broker/broker.ts'
import type { PatchwireError } from '../src/errors.ts'
import { brokerOn, freshDatabase, startPostgresServer } from './helpers/postgres-server.ts'
import type { PostgresServer } from './helpers/postgres-server.ts'
import { startServer, until } from './helpers/server.ts'
import { openStream } from './helpers/sse-client.ts'

/** A broker whose pool can hold back its next checkout: the LISTEN connection's, once it is lost. */
interface GatedBroker {
  readonly broker: PostgresBroker
  readonly errors: PatchwireError[]
  /** Every revocation its onRevoke listener got. */
  readonly heard: Revocation[]
  /** Holds back the next checkout of the pool until `open()`. */
  hold(): void
  /** Whether a checkout is held back. */
  readonly holding: boolean
  open(): void
}

async function gatedBroker(t: TestContext, url: string): Promise<GatedBroker> {
  const pool = new pg.Pool({ connectionString: url, application_name: 'gated' })
  pool.on('error', () => undefined)
  let armed = false
  let held: (() => void) | undefined
  const gated: PostgresPool = {
    connect(callback) {
      if (!armed) {
        pool.connect(callback as never)
        return
      }
      armed = false
      held = () => pool.connect(callback as never)
    },
  }
  const errors: PatchwireError[] = []
  const heard: Revocation[] = []
  const broker = createPostgresBroker({ pool: gated, onError: (error) => errors.push(error) })
  broker.onRevoke((revocation) => heard.push(revocation))
  const open = (): void => {
    armed = false
    const release = held
    held = undefined
    release?.()
  }
  t.after(async () => {
    open()
    await broker.close()
    await pool.end()
  })
  return { broker, errors, heard, hold: () => { armed = true }, get holding() { return held !== undefined }, open }
}

/** Admin statements on the test's database. */
async function adminOn(t: TestContext, url: string): Promise<pg.Client> {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.after(() => admin.end())
  return admin
}

async function listeningCount(admin: pg.Client): Promise<number> {
  const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN patchwire%' AND datname = current_database()`)
  return rows[0].n as number
}

/**
 * Ends `b`'s LISTEN connection and keeps it away: its next checkout (the
 * new LISTEN connection's) waits until `b.open()`. Resolves once `b` knows
 * it lost the connection (it reported the loss) and its reconnection waits.
 */
async function loseListen(b: GatedBroker, admin: pg.Client, listeners: number): Promise<void> {
  // The core compares opening times in tenths of a second, a stream of the
  // loss's tenth counting as opened since: the streams opened before this
  // call are a tenth older than the loss.
  const called = Date.now()
  await until(() => Date.now() >= called + 100, 1000, 'the clock to move on a tenth of a second')
  await until(async () => await listeningCount(admin) === listeners, 5000, `${listeners} LISTEN connections`)
  const reported = b.errors.length
  b.hold()
  const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN patchwire%' AND application_name = 'gated' AND datname = current_database()`)
  assert.equal(killed.rowCount, 1, 'b\'s LISTEN connection was terminated')
  await until(() => b.errors.length > reported && b.holding, 5000, 'b to report the loss and wait to connect again')
  assert.match(b.errors[reported]?.message ?? '', /LISTEN connection is lost/, 'the loss is what b reported')
}

/**
 * A fresh database with two brokers listening on it, `a` and the gated
 * `b`, and an admin connection.
 */
async function twoListening(t: TestContext, server: PostgresServer): Promise<{ a: Awaited<ReturnType<typeof brokerOn>>; b: GatedBroker; admin: pg.Client }> {
  const url = await freshDatabase(server)
  const a = await brokerOn(t, url)
  const b = await gatedBroker(t, url)
  const admin = await adminOn(t, url)
  await until(async () => await listeningCount(admin) === 2, 5000, 'both brokers to listen')
  return { a, b, admin }
}

function userOf(req: { url?: string | undefined }): string | undefined {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined
}

describe('patchwire/postgres revocations sent while a LISTEN connection was gone', { timeout: 60_000 }, () => {
  let server: PostgresServer
  before(async () => { server = await startPostgresServer() })
  after(async () => { await server.stop() })

  it('delivers them late once the connection is back: revoked frames to the streams open before the loss, a retry to those opened since; nothing twice', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await gatedBroker(t, url)
    const admin = await adminOn(t, url)
    const handler = await startServer(t, { broker: b.broker, identify: userOf, retryMs: 2000 })
    const early = await openStream(t, handler.port, 'doc', [], '/?user=a')
    const other = await openStream(t, handler.port, 'doc', [], '/?user=b')
    // Heard before the loss: not to be delivered again after it.
    await until(async () => await listeningCount(admin) === 2, 5000, 'both brokers to listen')
    await a.broker.revoke({ identity: 'heard-before' })
    await b.broker.revoke({ topic: 'own-before' })
    await until(() => b.heard.length === 2, 5000, 'b to hear the first revocation')
    await loseListen(b, admin, 2)
    const since = await openStream(t, handler.port, 'doc', [], '/?user=a')
    await b.broker.revoke({ topic: 'own-meanwhile' })
    await a.broker.revoke({ identity: 'a' })
    assert.equal(early.closed, false, 'nothing reaches b while its LISTEN connection is away')
    b.open()
    await early.waitForClose(10_000)
    await since.waitForClose(5000)
    assert.deepEqual(early.named('revoked').map((event) => JSON.parse(event.data) as unknown), [{ topic: 'doc' }], 'the stream open before the loss got its revoked frame')
    assert.equal(since.named('revoked').length, 0, `the stream opened since got no revoked frame: ${JSON.stringify(since.raw)}`)
    assert.equal(since.retries.length, 2, `and a retry: at its end, as an expired stream: ${JSON.stringify(since.raw)}`)
    assert.equal(other.closed, false, 'another identity\'s stream goes on')
    // A revocation after the return, heard live, proves nothing else was on its way.
    await a.broker.revoke({ identity: 'after' })
    await until(() => b.heard.some((revocation) => revocation.identity === 'after'), 5000, 'the revocation after the return')
    const lostAt = b.heard.find((revocation) => revocation.identity === 'a')?.lostAt
    assert.ok(typeof lostAt === 'number' && lostAt <= Date.now(), `the late one carries when the connection was lost: ${String(lostAt)}`)
    assert.deepEqual(b.heard, [{ identity: 'heard-before' }, { topic: 'own-before' }, { topic: 'own-meanwhile' }, { identity: 'a', lostAt }, { identity: 'after' }], 'each revocation once: its own at once, the missed one late')
    assert.equal(handler.handler.stats().revoked, 1, 'one stream counted as revoked')
  })

  it('does not deliver again, from the table, a revocation heard live while the table was being read', async (t) => {
    const { a, b, admin } = await twoListening(t, server)
    await a.broker.revoke({ identity: 'first' })
    await until(() => b.heard.length === 1, 5000, 'b to hear the first revocation')
    await loseListen(b, admin, 2)
    await a.broker.revoke({ identity: 'missed' })
    // The LISTEN connection comes back; the read of the table (the next checkout) waits.
    b.open()
    b.hold()
    await until(async () => b.holding && await listeningCount(admin) === 2, 5000, 'b to listen again, its read of the table held back')
    await a.broker.revoke({ identity: 'live' })
    await until(() => b.heard.length === 2, 5000, 'the revocation heard live')
    b.open()
    await until(() => b.heard.length === 3, 5000, 'the missed revocation, late')
    await a.broker.revoke({ identity: 'after' })
    await until(() => b.heard.length >= 4, 5000, 'a revocation after the read')
    const lostAt = b.heard[2]?.lostAt
    assert.equal(typeof lostAt, 'number', 'the missed one carries lostAt')
    assert.deepEqual(b.heard, [{ identity: 'first' }, { identity: 'live' }, { identity: 'missed', lostAt }, { identity: 'after' }], 'the one heard live is not read again from the table')
  })

  it('reports and ignores a notification without an id, and sends its JSON with its id and origin', async (t) => {
    const url = await freshDatabase(server)
    const b = await gatedBroker(t, url)
    const admin = await adminOn(t, url)
    await until(async () => await listeningCount(admin) === 1, 5000, 'b to listen')
    await admin.query(`SELECT pg_notify('patchwire_revoke', $1)`, [JSON.stringify({ origin: 'elsewhere', identity: 'u' })])
    await until(() => b.errors.length === 1, 5000, 'the notification without an id to be reported')
    await admin.query(`SELECT pg_notify('patchwire_revoke', '{"id":7}')`)
    await until(() => b.errors.length === 2, 5000, 'the one without a filter to be reported')
    await admin.query(`SELECT pg_notify('patchwire_revoke', 'not JSON')`)
    await until(() => b.errors.length === 3, 5000, 'the one that is not JSON to be reported')
    assert.ok(b.errors.every((error) => error.code === 'ERR_PATCHWIRE_BROKER'), 'reported as ERR_PATCHWIRE_BROKER')
    assert.deepEqual(b.heard, [], 'and none delivered')
    // What it sends: the revocation's JSON, with its id and origin as more keys.
    const sent: string[] = []
    admin.on('notification', (message) => sent.push(message.payload ?? ''))
    await admin.query('LISTEN patchwire_revoke')
    await b.broker.revoke({ identity: 'v', topic: 't' })
    await until(() => sent.length === 1, 5000, 'the notification')
    const { id, origin, ...filter } = JSON.parse(sent[0] as string) as { id: unknown, origin: unknown }
    assert.deepEqual(filter, { identity: 'v', topic: 't' }, `the revocation's fields: ${sent[0]}`)
    assert.ok(Number.isSafeInteger(id) && typeof origin === 'string', `with its id and origin: ${sent[0]}`)
  })

  it('reports once that some may have been missed when they were trimmed before the connection came back, and delivers those kept', async (t) => {
    const { a, b, admin } = await twoListening(t, server)
    await a.broker.revoke({ identity: 'first' })
    await until(() => b.heard.length === 1, 5000, 'b to hear the first revocation')
    await loseListen(b, admin, 2)
    for (const identity of ['gone', 'kept-1', 'kept-2']) await a.broker.revoke({ identity })
    // As the trim does with more than it keeps: the oldest go.
    await admin.query(`DELETE FROM patchwire_revocations WHERE revocation LIKE '%"first"%' OR revocation LIKE '%"gone"%'`)
    const reported = b.errors.length
    b.open()
    await until(() => b.heard.length === 3, 5000, 'the kept revocations, late')
    assert.deepEqual(b.heard.map((revocation) => revocation.identity), ['first', 'kept-1', 'kept-2'], 'the kept ones delivered')
    await a.broker.revoke({ identity: 'after' })
    await until(() => b.heard.length === 4, 5000, 'a revocation after the return')
    const gaps = b.errors.slice(reported).filter((error) => /may have been missed/.test(error.message))
    assert.equal(gaps.length, 1, `reported once: ${b.errors.map((error) => error.message).join('; ')}`)
    assert.equal(gaps[0]?.code, 'ERR_PATCHWIRE_BROKER', 'as ERR_PATCHWIRE_BROKER')
    assert.match(gaps[0]?.message ?? '', /until/, 'saying that the streams still end at their until')
  })

  it('reports that some may have been missed when the table lost what was heard (emptied, its ids restarted), and follows the new ids', async (t) => {
    const { a, b, admin } = await twoListening(t, server)
    for (const identity of ['first', 'second']) await a.broker.revoke({ identity })
    await until(() => b.heard.length === 2, 5000, 'b to hear both')
    await loseListen(b, admin, 2)
    await admin.query('TRUNCATE patchwire_revocations RESTART IDENTITY')
    await a.broker.revoke({ identity: 'in-the-new-table' })
    const reported = b.errors.length
    b.open()
    await until(() => b.errors.slice(reported).some((error) => /may have been missed/.test(error.message)), 5000, 'the report')
    // The next catch-up starts from the new table's ids: a second loss, with nothing heard between, proves it.
    await loseListen(b, admin, 2)
    await a.broker.revoke({ identity: 'missed-later' })
    b.open()
    await until(() => b.heard.some((revocation) => revocation.identity === 'missed-later'), 5000, 'the revocation of the second outage, late')
    assert.deepEqual(b.heard.map((revocation) => revocation.identity), ['first', 'second', 'missed-later'], 'the one in the emptied table is reported, not delivered; the later ones are')
    assert.equal(b.errors.filter((error) => /may have been missed/.test(error.message)).length, 1, 'reported once')
  })

  it('reports a failed read of the missed revocations and reads them again', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const admin = await adminOn(t, url)
    // b's role may read patchwire_revocations until the test takes that away.
    await a.broker.position('x')
    await admin.query(`CREATE ROLE reader LOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON patchwire_state, patchwire_messages, patchwire_trims, patchwire_revocations TO reader`)
    const b = await gatedBroker(t, url.replace('postgres@', 'reader@'))
    await until(async () => await listeningCount(admin) === 2, 5000, 'both brokers to listen')
    await a.broker.revoke({ identity: 'first' })
    await until(() => b.heard.length === 1, 5000, 'b to hear the first revocation')
    await loseListen(b, admin, 2)
    await a.broker.revoke({ identity: 'missed' })
    await admin.query('REVOKE SELECT ON patchwire_revocations FROM reader')
    const reported = b.errors.length
    b.open()
    await until(() => b.errors.length > reported, 5000, 'the failed read to be reported')
    assert.equal(b.errors[reported]?.code, 'ERR_PATCHWIRE_BROKER', 'reported as ERR_PATCHWIRE_BROKER')
    assert.match(b.errors[reported]?.message ?? '', /revocations/, `naming what failed: ${b.errors[reported]?.message}`)
    await admin.query('GRANT SELECT ON patchwire_revocations TO reader')
    await until(() => b.heard.length === 2, 5000, 'the missed revocation once the read works')
    assert.deepEqual(b.heard[1], { identity: 'missed', lostAt: b.heard[1]?.lostAt }, 'delivered late')
    assert.equal(typeof b.heard[1]?.lostAt, 'number', 'with lostAt')
  })

  it('reports a row of the table that is not a revocation and skips it, and a listener that throws; the others still get theirs', async (t) => {
    const { a, b, admin } = await twoListening(t, server)
    const stop = b.broker.onRevoke(() => { throw new Error('listener bug') })
    t.after(stop)
    await loseListen(b, admin, 2)
    await a.broker.revoke({ identity: 'before-the-bad-row' })
    await admin.query(`INSERT INTO patchwire_revocations (revocation) VALUES ('not JSON')`)
    await a.broker.revoke({ identity: 'after-the-bad-row' })
    const reported = b.errors.length
    b.open()
    await until(() => b.heard.length === 2, 5000, 'the two revocations, late')
    assert.deepEqual(b.heard.map((revocation) => revocation.identity), ['before-the-bad-row', 'after-the-bad-row'], 'the bad row skipped, the others delivered in order')
    const errors = b.errors.slice(reported)
    assert.equal(errors.filter((error) => /of patchwire_revocations is not a revocation/.test(error.message)).length, 1, `the bad row reported once: ${errors.map((error) => error.message).join('; ')}`)
    assert.equal(errors.filter((error) => error.code === 'ERR_PATCHWIRE_LISTENER').length, 2, 'the throwing listener reported for each revocation')
  })

  it('keeps the newest 10 000 revocations', async (t) => {
    const url = await freshDatabase(server)
    const { broker, pool } = await brokerOn(t, url)
    await broker.position('x')
    await pool.query(`INSERT INTO patchwire_revocations (revocation) SELECT '{"topic":"t"}' FROM generate_series(1, 10005)`)
    await broker.revoke({ topic: 't' })
    // The trim runs about a second after a revoke.
    await until(async () => (await pool.query('SELECT count(*)::int AS n FROM patchwire_revocations')).rows[0].n === 10_000, 10_000, 'the trim to keep 10 000')
    const { rows } = await pool.query('SELECT min(id)::int AS first, max(id)::int AS last FROM patchwire_revocations')
    assert.deepEqual(rows[0], { first: 10_006 - 9_999, last: 10_006 }, 'the newest ones')
  })

  it('adds the revocations table to a database of the previous version', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    await a.broker.position('x')
    await a.pool.query('DROP TABLE patchwire_revocations')
    const b = await brokerOn(t, url)
    await b.broker.revoke({ identity: 'u' })
    const { rows } = await b.pool.query('SELECT count(*)::int AS n FROM patchwire_revocations')
    assert.equal(rows[0].n, 1, 'the revocation is kept in the new table')
  })
})

/**
 * patchwire/postgres behind real handlers: two handlers, each on a broker
 * and pool of its own on one private database, as two processes would be;
 * raw SSE streams over real sockets. Multi-topic streams, the snapshot, the
 * server-render hand-off with `position`, and a resume that reaches the
 * other handler; a revocation sent through one broker ending the streams of
 * the other handler; and the `{ transaction }` option of `publish`.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createBroker, position, publish, revoke } from '../src/index.ts'
import { brokerOn, freshDatabase, startPostgresServer } from './helpers/postgres-server.ts'
import type { PostgresServer } from './helpers/postgres-server.ts'
import { startServer, until } from './helpers/server.ts'
import { openRaw, openStream } from './helpers/sse-client.ts'

describe('patchwire/postgres behind handlers', { timeout: 60_000 }, () => {
  let server: PostgresServer
  before(async () => { server = await startPostgresServer() })
  after(async () => { await server.stop() })

  it('resumes a multi-topic stream on the other handler with exactly the patches it missed, committed ones only', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await brokerOn(t, url)
    const first = await startServer(t, { broker: a.broker })
    const second = await startServer(t, { broker: b.broker })
    const stream = await openRaw(t, first.port, '/?topic=x&topic=y')
    await until(() => stream.named('ready').length === 1, 5000, 'the stream to be ready')
    await publish(a.broker, 'x', [['replace', '/n', 1]])
    await publish(b.broker, 'y', [['replace', '/n', 1]])
    await until(() => stream.named('patch').length === 2, 5000, 'both patches')
    const last = stream.named('patch').at(-1)?.id as string
    stream.destroy()
    // Published while the browser is away: two commits and a rollback.
    const client = await a.connect()
    await client.query('BEGIN')
    await publish(a.broker, 'x', [['replace', '/n', 2]], { transaction: client })
    await client.query('COMMIT')
    await client.query('BEGIN')
    await publish(a.broker, 'y', [['replace', '/n', -1]], { transaction: client })
    await client.query('ROLLBACK')
    await publish(b.broker, 'y', [['replace', '/n', 2]])
    const resumed = await openRaw(t, second.port, '/?topic=x&topic=y', [`Last-Event-ID: ${last}`])
    await until(() => resumed.named('ready').length === 1, 5000, 'the resumed stream to be ready')
    assert.deepEqual(resumed.named('reset'), [], 'no reset')
    assert.deepEqual(resumed.named('patch').map((event) => event.data), ['"x"\n[["replace","/n",2]]', '"y"\n[["replace","/n",2]]'], 'the two committed patches, each naming its topic, in commit order')
    await publish(a.broker, 'x', [['replace', '/n', 3]])
    await until(() => resumed.named('patch').length === 3, 5000, 'a live patch after the replay')
    assert.equal(resumed.named('patch')[2]?.data, '"x"\n[["replace","/n",3]]', 'the live patch')
  })

  it('sends the snapshot to a fresh stream, and hands a server render over with position on another process', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await brokerOn(t, url)
    let state = { n: 0 }
    const handler = await startServer(t, { broker: b.broker, snapshot: () => state })
    const fresh = await openStream(t, handler.port, 'doc')
    assert.deepEqual(fresh.named('snapshot').map((event) => JSON.parse(event.data)), [{ n: 0 }], 'the snapshot first')
    // The render: state and position together, on process a.
    state = { n: 1 }
    await publish(a.broker, 'doc', [['replace', '/n', 1]])
    const at = await position(a.broker, 'doc')
    await publish(a.broker, 'doc', [['replace', '/n', 2]])
    const page = await openStream(t, handler.port, 'doc', [`Last-Event-ID: ${at}`])
    await until(() => page.named('patch').length === 1, 5000, 'the patch after the render')
    assert.deepEqual(page.named('patch').map((event) => event.data), ['[["replace","/n",2]]'], 'exactly the patch after the position')
    assert.deepEqual(page.named('snapshot'), [], 'no snapshot on a resume')
  })

  it('ends the matching streams of the other handler within 1 s when a revocation goes through one broker', async (t) => {
    const url = await freshDatabase(server)
    const a = await brokerOn(t, url)
    const b = await brokerOn(t, url)
    const identify = (req: { url?: string | undefined }): string | undefined => new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined
    const handler = await startServer(t, { broker: b.broker, identify })
    const revoked = await openStream(t, handler.port, 'room', [], '/?user=a')
    const kept = await openStream(t, handler.port, 'room', [], '/?user=b')
    // A patch from the other broker proves b's LISTEN connection is up.
    await publish(a.broker, 'room', [['replace', '/n', 0]])
    await until(() => revoked.named('patch').length === 1 && kept.named('patch').length === 1, 5000, 'the patch through b')
    const started = Date.now()
    await revoke(a.broker, { identity: 'a', topic: 'room' })
    await revoked.waitForClose(1000)
    t.diagnostic(`the stream on the other handler ended ${Date.now() - started} ms after revoke() was called`)
    assert.deepEqual(revoked.named('revoked').map((event) => JSON.parse(event.data)), [{ topic: 'room' }], 'one revoked frame naming the topic')
    await publish(a.broker, 'room', [['replace', '/n', 1]])
    await until(() => kept.named('patch').length === 2, 5000, 'the other identity to get the next patch')
    assert.equal(kept.closed, false, 'the other identity keeps its stream')
    assert.equal(handler.handler.stats().revoked, 1, 'stats().revoked counts the stream')
  })

  it('refuses a transaction on a broker that cannot take one, and bad options, with a TypeError', async (t) => {
    const memory = createBroker()
    assert.throws(() => publish(memory, 't', [['replace', '/n', 1]], { transaction: {} }), /cannot publish inside a transaction/, 'the in-process broker has no transactions')
    assert.throws(() => publish(memory, 't', [], null as never), /options must be an object/, 'options that are not an object')
    assert.throws(() => publish(memory, 't', [], { transaction: 'BEGIN' as never }), /transaction must be a client/, 'a transaction that is not an object')
    const id = await publish(memory, 't', [], {})
    assert.match(id, /^[0-9a-z]+-1$/, 'empty options publish as usual')
    const url = await freshDatabase(server)
    const { broker, pool } = await brokerOn(t, url)
    assert.throws(() => publish(broker, 't', [], { transaction: pool }), /transaction is the pool/, 'the pool is not a transaction')
  })
})

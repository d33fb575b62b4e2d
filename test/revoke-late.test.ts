/**
 * A revocation that its broker delivers late (`Revocation.lostAt`): after
 * the broker's connection for hearing revocations was lost and came back.
 * The streams open before the loss get their `revoked` frames; those that
 * opened since, and the requests still opening, may have been authorized
 * after the revocation was made, so they are sent back through `authorize`
 * (ended as expired streams are) or left alone.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createBroker, publish, type Broker, type NodeRequest, type Revocation } from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'
import { openStream } from './helpers/sse-client.ts'

/** The user a request says it is: `?user=` (a stand-in for a session cookie). */
function userOf(req: NodeRequest): string | undefined {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined
}

/** An in-process broker whose revocations the test delivers itself, late or not. */
function lateBroker(): { broker: Broker; deliver(revocation: Revocation): void } {
  const base = createBroker()
  const listeners = new Set<(revocation: Revocation) => void>()
  const deliver = (revocation: Revocation): void => {
    for (const listener of listeners) listener(revocation)
  }
  const broker: Broker = {
    publish: (topic, payload) => base.publish(topic, payload),
    subscribe: (topic, listener, onGap) => base.subscribe(topic, listener, onGap),
    revoke: (revocation) => Promise.resolve(deliver(revocation)),
    onRevoke: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
  return { broker, deliver }
}

/**
 * The moment the broker "lost" its connection: a `Date.now()` a tenth of a
 * second past every stream opened so far (the core compares opening times
 * in tenths of a second, a stream of the same tenth counting as opened since).
 */
async function lossAfterNow(): Promise<number> {
  const opened = Date.now()
  await until(() => Date.now() >= opened + 100, 1000, 'the clock to move on a tenth of a second')
  return Date.now()
}

describe('a revocation delivered late (lostAt)', () => {
  it('gives revoked frames to the identity\'s streams open before the loss, and sends those opened since back through authorize', async (t) => {
    const { broker, deliver } = lateBroker()
    const server = await startServer(t, { broker, identify: userOf, retryMs: 2000 })
    const before = await openStream(t, server.port, 'doc', [], '/?user=a')
    const other = await openStream(t, server.port, 'doc', [], '/?user=b')
    const lostAt = await lossAfterNow()
    const since = await openStream(t, server.port, 'doc', [], '/?user=a')
    deliver({ identity: 'a', lostAt })
    await before.waitForClose(1000)
    await since.waitForClose(1000)
    assert.deepEqual(before.named('revoked').map((event) => JSON.parse(event.data) as unknown), [{ topic: 'doc' }], 'open before the loss: revoked')
    assert.equal(since.named('revoked').length, 0, `opened since the loss: no revoked frame: ${JSON.stringify(since.raw)}`)
    assert.equal(since.retries.length, 2, `opened since the loss: a retry: at the end, as an expiry: ${JSON.stringify(since.raw)}`)
    const retry = since.retries[1] as number
    assert.ok(retry >= 1500 && retry <= 2500, `its retry ${retry} is within 0.75–1.25 × retryMs`)
    await publish(broker, 'doc', [['replace', '/x', 1]])
    await until(() => other.named('patch').length === 1, 5000, 'the other identity to get the patch')
    assert.equal(other.closed, false, 'another identity keeps its stream')
    const stats = server.handler.stats()
    assert.equal(stats.revoked, 1, 'stats().revoked counts the stream given revoked frames')
    assert.equal(stats.expired, 1, 'stats().expired counts the stream sent back through authorize')
  })

  it('does the same for a topic\'s streams', async (t) => {
    const { broker, deliver } = lateBroker()
    const server = await startServer(t, { broker })
    const before = await openStream(t, server.port, 'room')
    const lostAt = await lossAfterNow()
    const since = await openStream(t, server.port, 'room')
    const elsewhere = await openStream(t, server.port, 'hall')
    deliver({ topic: 'room', lostAt })
    await before.waitForClose(1000)
    await since.waitForClose(1000)
    assert.deepEqual(before.named('revoked').map((event) => JSON.parse(event.data) as unknown), [{ topic: 'room' }], 'open before the loss: revoked')
    assert.equal(since.named('revoked').length, 0, 'opened since the loss: no revoked frame')
    assert.equal(since.retries.length, 2, `opened since the loss: a retry: at the end: ${JSON.stringify(since.raw)}`)
    assert.equal(elsewhere.closed, false, 'a stream of another topic goes on')
  })

  it('leaves a request still opening alone: it is being authorized after the loss', async (t) => {
    const { broker, deliver } = lateBroker()
    let release = (): void => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const server = await startServer(t, { broker, identify: userOf, snapshot: async () => { await gate; return {} } })
    const lostAt = await lossAfterNow()
    const opening = openStream(t, server.port, 'room', [], '/?user=a')
    await until(() => server.handler.stats().pending === 1, 5000, 'the request to wait for its snapshot')
    deliver({ identity: 'a', lostAt })
    release()
    const client = await opening
    await publish(broker, 'room', [['replace', '/x', 1]])
    await until(() => client.named('patch').length === 1, 5000, 'the stream to get the patch')
    assert.equal(client.closed, false, 'the stream stays open')
    assert.equal(client.named('revoked').length, 0, 'and got no revoked frame')
    assert.equal(server.handler.stats().revoked, 0, 'nothing counted as revoked')
  })
})

/**
 * A real EventSource client (the `eventsource` package, v3, which follows
 * the WHATWG spec) against the handler: the frames are what a browser sees.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import { createBroker, publish, type PatchOp } from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'

interface Received {
  type: string
  data: string
  lastEventId: string
}

/** Opens an EventSource on `url`, recording `ready` and `patch` events; closed after the test. */
function connect(t: TestContext, url: string): { source: EventSource; received: Received[]; errors: number } {
  const source = new EventSource(url)
  const state = { source, received: [] as Received[], errors: 0 }
  for (const type of ['ready', 'patch', 'reset', 'message']) {
    source.addEventListener(type, (event) => {
      state.received.push({ type: event.type, data: event.data, lastEventId: event.lastEventId })
    })
  }
  source.addEventListener('error', () => state.errors++)
  t.after(() => source.close())
  return state
}

describe('EventSource client (eventsource package)', () => {
  it('gets the ready event, then patch events with their data and lastEventId', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker })
    const client = connect(t, `${server.origin}/?topic=${encodeURIComponent('room:1')}`)
    await until(() => client.received.length === 1, 5000, 'the ready event')
    const [ready] = client.received
    assert.equal(ready?.type, 'ready', 'the first event is ready')
    assert.notEqual(ready?.lastEventId, '', 'ready carries an id')
    assert.equal(ready?.data, ready?.lastEventId, 'ready carries its position as data')
    assert.equal(client.source.readyState, EventSource.OPEN, 'the EventSource is open')

    const batches: PatchOp[][] = [
      [['replace', '/counter', 1]],
      [['add', '/items/-', { id: 7, text: 'multi\nline\r\ntext \u2028 🎉' }], ['remove', '/old']],
      [],
    ]
    for (const ops of batches) await publish(broker, 'room:1', ops)
    await until(() => client.received.length === 1 + batches.length, 5000, 'the patch events')
    const patches = client.received.slice(1)
    assert.deepEqual(patches.map((p) => p.type), ['patch', 'patch', 'patch'], 'one patch event per publish')
    assert.deepEqual(patches.map((p) => JSON.parse(p.data)), batches, 'each patch event carries its ops as published, the empty batch and the multi-line text included')
    const ids = patches.map((p) => p.lastEventId)
    assert.equal(new Set([ready?.lastEventId, ...ids]).size, 4, `every frame has its own id: ${ids.join(', ')}`)
    assert.ok(ids.every((id) => id !== ''), `every patch has an id: ${ids.join(', ')}`)
    assert.equal(client.received.filter((r) => r.type === 'message').length, 0, 'no unnamed message events')
    assert.equal(client.errors, 0, 'no error events')
  })

  it('only gets its own topic, alongside another EventSource on another topic', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker })
    const a = connect(t, `${server.origin}/?topic=a`)
    const b = connect(t, `${server.origin}/?topic=b`)
    await until(() => a.received.length === 1 && b.received.length === 1, 5000, 'both ready')
    await publish(broker, 'a', [['add', '/to', 'a']])
    await publish(broker, 'b', [['add', '/to', 'b']])
    await until(() => a.received.length === 2 && b.received.length === 2, 5000, 'both patches')
    assert.deepEqual(JSON.parse(a.received[1]?.data ?? ''), [['add', '/to', 'a']], 'the stream of topic a gets the patch of a only')
    assert.deepEqual(JSON.parse(b.received[1]?.data ?? ''), [['add', '/to', 'b']], 'the stream of topic b gets the patch of b only')
  })

  it('gives up with an error on a refused stream instead of opening it', async (t) => {
    const server = await startServer(t, { topicPrefix: 'ok:' })
    const client = connect(t, `${server.origin}/?topic=nope`)
    await until(() => client.errors > 0, 5000, 'the error event')
    assert.equal(client.source.readyState, EventSource.CLOSED, 'the EventSource gives up on a refused topic')
    assert.deepEqual(client.received, [], 'no event from a refused stream')
    assert.equal(server.handler.stats().connections, 0, 'the server holds no stream for it')
  })

  it('is forgotten by the server when it closes', async (t) => {
    const server = await startServer(t, {})
    const client = connect(t, `${server.origin}/?topic=a`)
    await until(() => client.received.length === 1, 5000, 'the ready event')
    assert.equal(server.handler.stats().connections, 1, 'the server counts the open EventSource')
    client.source.close()
    await until(() => server.handler.stats().connections === 0, 5000, 'the server to forget it')
  })
})

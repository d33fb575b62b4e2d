/**
 * State in the stream: the `snapshot` option sends a topic's state to a
 * stream that starts fresh and after any reset, positioned so that every
 * later patch follows it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { applyPatch } from '../src/client/index.ts'
import { createBroker, publish, type PatchOp, type PatchwireError } from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'
import { openRaw, openStream, type SseClient } from './helpers/sse-client.ts'

interface Counter {
  n: number
}

/** Applies what a stream carried to a state, as a page would: snapshot replaces, patches apply. */
function replay(client: SseClient): Counter | undefined {
  let state: Counter | undefined
  for (const event of client.events) {
    if (event.event === 'snapshot') state = JSON.parse(event.data) as Counter
    if (event.event === 'patch') state = applyPatch(state, JSON.parse(event.data) as PatchOp[])
  }
  return state
}

describe('snapshot', () => {
  it('sends a fresh stream the state, then every later patch, and no snapshot on an exact resume', async (t) => {
    const broker = createBroker()
    const state: Counter = { n: 0 }
    const seen: string[] = []
    const { port, handler } = await startServer(t, {
      broker,
      snapshot: (req, topic) => {
        seen.push(`${topic} ${req.url}`)
        return state
      },
    })
    const client = await openStream(t, port, 'count')
    assert.deepEqual(client.events.map((event) => event.event), ['snapshot', 'ready'], 'a fresh stream gets the snapshot, then ready')
    assert.equal(client.named('snapshot')[0]?.data, '{"n":0}', 'the snapshot carries the state as JSON')
    assert.equal(client.named('snapshot')[0]?.id, undefined, 'a snapshot carries no id of its own')
    for (let n = 1; n <= 3; n++) {
      state.n = n
      await publish(broker, 'count', [['replace', '/n', n]])
    }
    await client.waitForEvents(5)
    assert.deepEqual(replay(client), { n: 3 }, 'the snapshot plus the later patches make the current state')
    assert.deepEqual(seen, ['count /?topic=count'], 'snapshot gets the request and the topic')

    const back = await openStream(t, port, 'count', [`Last-Event-ID: ${client.events.at(-1)?.id}`])
    assert.deepEqual(back.events.map((event) => event.event), ['ready'], 'an exact resume needs no state')
    assert.equal(handler.stats().snapshots, 1, 'one snapshot: none on the exact resume')
  })

  it('sends reset then snapshot to a reconnect whose id is beyond the history, and the state ends right', async (t) => {
    const broker = createBroker({ history: 2 })
    const state: Counter = { n: 0 }
    const { port } = await startServer(t, { broker, snapshot: () => state })
    const client = await openStream(t, port, 'count')
    const from = client.events.at(-1)?.id as string
    client.destroy()
    for (let n = 1; n <= 5; n++) {
      state.n = n
      await publish(broker, 'count', [['replace', '/n', n]])
    }
    const back = await openStream(t, port, 'count', [`Last-Event-ID: ${from}`])
    assert.deepEqual(back.events.map((event) => event.event), ['reset', 'snapshot', 'ready'], 'a reconnect beyond the history gets reset, snapshot, ready')
    assert.equal(JSON.parse(back.named('reset')[0]?.data ?? '{}').reason, 'history-exceeded', 'the reset names history-exceeded')
    assert.deepEqual(replay(back), { n: 5 }, 'the fresh snapshot makes the current state')
  })

  it('loses nothing to an async snapshot that publishes race, and applies the racing patches after it', async (t) => {
    const broker = createBroker()
    // The database: a list that grows; the snapshot reads it slowly.
    const rows: number[] = []
    let release: (() => void) | undefined
    const { port } = await startServer(t, {
      broker,
      snapshot: async () => {
        const read = [...rows]
        await new Promise<void>((resolve) => (release = resolve))
        return { rows: read }
      },
    })
    const client = await openRaw(t, port, '/?topic=rows')
    await until(() => release !== undefined, 3000, 'the snapshot to start')
    // Published while the snapshot runs: after the read, so not in it.
    for (let n = 0; n < 3; n++) {
      rows.push(n)
      await publish(broker, 'rows', [['add', '/rows/-', n]])
    }
    release?.()
    await client.waitForEvents(1 + 1 + 3)
    // What arrived while the snapshot ran was held, and follows it, before ready.
    assert.deepEqual(client.events.map((event) => event.event), ['snapshot', 'patch', 'patch', 'patch', 'ready'], `the racing patches come between the snapshot and ready: ${JSON.stringify(client.events.map((event) => event.event))}`)
    let state = JSON.parse(client.named('snapshot')[0]?.data ?? 'null') as { rows: number[] }
    for (const event of client.named('patch')) state = applyPatch(state, JSON.parse(event.data) as PatchOp[])
    assert.deepEqual(state, { rows: [0, 1, 2] }, 'the snapshot and the racing patches make the whole state')
    // And live patches follow.
    await publish(broker, 'rows', [['add', '/rows/-', 3]])
    await client.waitForEvents(6)
    assert.equal(client.named('patch').length, 4, 'the later patch arrives too')
  })

  it('answers 500 and reports ERR_PATCHWIRE_SNAPSHOT when snapshot throws or rejects, and opens nothing', async (t) => {
    const errors: PatchwireError[] = []
    let mode: 'throw' | 'reject' | 'undefined' = 'throw'
    const { port, handler } = await startServer(t, {
      onError: (error) => errors.push(error),
      snapshot: () => {
        if (mode === 'throw') throw new Error('database down')
        if (mode === 'reject') return Promise.reject(new Error('database down'))
        return undefined
      },
    })
    for (const next of ['throw', 'reject', 'undefined'] as const) {
      mode = next
      const client = await openRaw(t, port, '/?topic=broken')
      await until(() => client.response !== undefined, 3000, 'an answer')
      assert.equal(client.response?.status, 500, mode)
      assert.doesNotMatch(client.raw, /event-stream/, `a snapshot that ends in ${mode} opens no stream: ${JSON.stringify(client.raw.slice(0, 200))}`)
    }
    assert.deepEqual(errors.map((error) => error.code), ['ERR_PATCHWIRE_SNAPSHOT', 'ERR_PATCHWIRE_SNAPSHOT', 'ERR_PATCHWIRE_SNAPSHOT'], 'each failed snapshot (throw, reject, undefined) reported with the snapshot code')
    assert.match(String((errors[2]?.cause as Error).message), /JSON value/, 'the cause for a snapshot of undefined says it is no JSON value')
    assert.equal(handler.stats().connections, 0, 'no stream for a failed snapshot')
    await until(() => handler.stats().topics <= 1, 3000, 'nothing held')
  })

  it('after a broker gap, sends reset then a fresh snapshot on the open stream; a failing one ends the stream', async (t) => {
    let gap: (() => void) | undefined
    const inner = createBroker()
    const errors: PatchwireError[] = []
    let failing = false
    const state: Counter = { n: 0 }
    const { port } = await startServer(t, {
      broker: {
        publish: (topic, payload) => inner.publish(topic, payload),
        subscribe(topic, listener, onGap) {
          gap = onGap
          return inner.subscribe(topic, listener)
        },
      },
      onError: (error) => errors.push(error),
      snapshot: async () => {
        if (failing) throw new Error('database down')
        return state
      },
    })
    const client = await openStream(t, port, 'count')
    state.n = 7
    gap?.()
    await client.waitForEvents(4)
    assert.deepEqual(client.events.map((event) => event.event), ['snapshot', 'ready', 'reset', 'snapshot'], 'after the gap, reset then a fresh snapshot on the open stream')
    assert.deepEqual(replay(client), { n: 7 }, 'the fresh snapshot makes the current state')
    failing = true
    gap?.()
    await client.waitForClose()
    assert.deepEqual(errors.map((error) => error.code), ['ERR_PATCHWIRE_SNAPSHOT'], 'the failing snapshot reported once')
  })
})

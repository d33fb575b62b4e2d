import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, mock, type TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import { createBroker, createHandler, position, publish, type Broker, type Handler, type HandlerOptions } from '../src/index.ts'
import { applyPatch, subscribe, type EventSourceConstructor, type PatchMeta, type PatchOp, type PatchwireError, type ResetReason, type SubscribeOptions, type Subscription, type SubscriptionState } from '../src/client/index.ts'
import { startServer, until } from './helpers/server.ts'

const TIMEOUT = { timeout: 15_000 }

/** One subscription and everything it reported. */
interface Probe {
  stop: Subscription
  patches: { ops: PatchOp[]; meta: PatchMeta }[]
  errors: PatchwireError[]
  states: SubscriptionState[]
  resets: ResetReason[]
}

function probe(t: TestContext, url: string, topic: string, options: SubscribeOptions = {}): Probe {
  const patches: Probe['patches'] = []
  const errors: PatchwireError[] = []
  const states: SubscriptionState[] = []
  const resets: ResetReason[] = []
  const stop = subscribe(topic, (ops, meta) => patches.push({ ops, meta }), {
    path: url,
    EventSource,
    onError: (error) => errors.push(error),
    onStateChange: (state) => states.push(state),
    onReset: (reason) => resets.push(reason),
    ...options,
  })
  t.after(stop)
  return { stop, patches, errors, states, resets }
}

async function serve(t: TestContext, options: HandlerOptions = {}): Promise<{ url: string; handler: Handler; server: http.Server; broker: Broker }> {
  const broker = createBroker()
  const { origin, handler, server } = await startServer(t, { broker, retryMs: 50, ...options })
  return { url: `${origin}/events`, handler, server, broker }
}

const codes = (p: Probe): string[] => p.errors.map((error) => error.code)

/** Lets the microtasks (the stream's batch) and one turn of I/O run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** An EventSource that records how it was constructed and does nothing else. */
function recorder(): { EventSource: EventSourceConstructor; urls: string[]; inits: unknown[] } {
  const urls: string[] = []
  const inits: unknown[] = []
  class Recording {
    readyState = 0
    constructor(url: string, init?: unknown) {
      urls.push(url)
      inits.push(init)
    }
    addEventListener(): void {}
    close(): void {}
  }
  return { EventSource: Recording, urls, inits }
}

describe('subscribe', TIMEOUT, () => {
  describe('against createHandler', () => {
    it('delivers each publish as ops with its event id', async (t) => {
      const { url, broker } = await serve(t)
      const p = probe(t, url, 'room:1')
      await until(() => p.stop.state === 'open', 5000, 'open')
      assert.deepEqual(p.states, ['open'], `the subscription opens once, straight to open: ${p.states.join()}`)
      await publish(broker, 'room:1', [['replace', '/counter', 1]])
      await publish(broker, 'room:1', [['add', '/items/-', { id: 1 }], ['limit', '/items', -10]])
      await until(() => p.patches.length === 2, 5000, 'two patches')
      assert.deepEqual(p.patches.map((patch) => patch.ops), [[['replace', '/counter', 1]], [['add', '/items/-', { id: 1 }], ['limit', '/items', -10]]], 'each publish arrives once, in order, as its ops')
      const [first, second] = p.patches.map((patch) => patch.meta.id)
      assert.ok(first !== undefined && first !== '' && second !== undefined && second !== first, `two different ids: ${String(first)}, ${String(second)}`)
      assert.deepEqual(p.errors, [], `no error on a clean stream: ${codes(p).join()}`)
    })

    it('encodes the topic in the query string, after an existing query', async (t) => {
      const { url, broker } = await serve(t)
      const topic = 'a b/ü&c=d?#%'
      const p = probe(t, `${url}?x=1`, topic)
      await until(() => p.stop.state === 'open', 5000, 'open')
      await publish(broker, topic, [['replace', '/x', 1]])
      await until(() => p.patches.length === 1, 5000, 'a patch')
    })

    it('shares one EventSource per path for one topic, closing it with the last stop', async (t) => {
      const { url, broker, handler } = await serve(t)
      const one = probe(t, url, 'shared')
      const two = probe(t, url, 'shared')
      await until(() => one.stop.state === 'open', 5000, 'open')
      assert.equal(two.stop.state, 'open', 'the second subscriber of the topic is open with the first')
      assert.equal(handler.stats().connections, 1, 'two subscribers of one topic share one connection')

      one.stop()
      one.stop()
      assert.equal(one.stop.state, 'closed', 'a stopped subscription is closed, however many stops')
      assert.equal(two.stop.state, 'open', 'one stop leaves the other subscriber open')
      await publish(broker, 'shared', [['replace', '/n', 1]])
      await until(() => two.patches.length === 1, 5000, 'the remaining subscriber gets the patch')
      assert.equal(one.patches.length, 0, `the stopped subscriber gets no patch: ${one.patches.length}`)
      assert.equal(handler.stats().connections, 1, 'the remaining subscriber keeps the shared connection')

      two.stop()
      await until(() => handler.stats().connections === 0, 5000, 'the shared stream closed')

      const again = probe(t, url, 'shared')
      await until(() => again.stop.state === 'open', 5000, 'a new stream for a new subscriber')
      assert.equal(handler.stats().connections, 1, 'the new subscriber opens one new connection')
    })

    it('reports a refusal as ERR_PATCHWIRE_REFUSED with state closed, and a later subscribe tries again', async (t) => {
      const { url, handler } = await serve(t, { topicPrefix: 'ok:' })
      const p = probe(t, url, 'secret')
      await until(() => p.errors.length === 1, 5000, 'the refusal')
      assert.deepEqual(codes(p), ['ERR_PATCHWIRE_REFUSED'], `the refusal is ERR_PATCHWIRE_REFUSED: ${p.errors.map((error) => error.message).join(' | ')}`)
      assert.match(p.errors[0]?.message ?? '', /refused the stream .*topic=secret.*403/, `the refusal names the stream of secret and its 403: ${p.errors[0]?.message}`)
      assert.equal(p.stop.state, 'closed', 'a refused subscription is closed')
      assert.deepEqual(p.states, ['closed'], `a refused subscription goes straight to closed: ${p.states.join()}`)
      assert.equal(handler.stats().connections, 0, 'no stream is counted for a refusal')

      const q = probe(t, url, 'secret')
      await until(() => q.errors.length === 1, 5000, 'a second refusal from a second EventSource')
      assert.deepEqual(codes(q), ['ERR_PATCHWIRE_REFUSED'], `the second subscribe is refused again: ${q.errors.map((error) => error.message).join(' | ')}`)
      assert.equal(p.errors.length, 1, `the first subscription is not told twice: ${p.errors.map((error) => error.message).join(' | ')}`)
    })

    it('reports a drop as ERR_PATCHWIRE_DISCONNECTED, reconnects and resumes without loss', async (t) => {
      const { url, broker, server } = await serve(t)
      const p = probe(t, url, 'feed')
      await until(() => p.stop.state === 'open', 5000, 'open')
      await publish(broker, 'feed', [['add', '/l/-', 1]])
      await until(() => p.patches.length === 1, 5000, 'first patch')

      server.closeAllConnections()
      await until(() => p.stop.state === 'connecting', 5000, 'the drop')
      await publish(broker, 'feed', [['add', '/l/-', 2]])
      await publish(broker, 'feed', [['add', '/l/-', 3]])
      await until(() => p.patches.length === 3, 5000, 'the replayed patches')

      assert.deepEqual(codes(p), ['ERR_PATCHWIRE_DISCONNECTED'], `the drop is reported once: ${codes(p).join()}`)
      assert.deepEqual(p.states, ['open', 'connecting', 'open'], `the drop goes to connecting and back to open: ${p.states.join()}`)
      assert.deepEqual(p.resets, [], `a resumed stream is not reset: ${p.resets.join()}`)
      const state = { l: [] as number[] }
      for (const { ops } of p.patches) applyPatch(state, ops)
      assert.deepEqual(state.l, [1, 2, 3], `no patch lost or repeated across the drop: ${JSON.stringify(state.l)}`)
      assert.equal(new Set(p.patches.map((patch) => patch.meta.id)).size, 3, 'each patch keeps its own id')
    })

    it('calls onReset with the reason when the server cannot resume (another handler instance)', async (t) => {
      const broker = createBroker()
      let handler = createHandler({ broker, retryMs: 50 })
      const server = http.createServer((req, res) => handler(req, res))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const first = handler
      t.after(async () => {
        await first.close()
        await handler.close()
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
      })
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`
      const p = probe(t, url, 'restart')
      const silent = probe(t, url, 'restart', { onReset: undefined as never })
      await until(() => p.stop.state === 'open', 5000, 'open')
      await publish(broker, 'restart', [['replace', '/v', 1]])
      await until(() => p.patches.length === 1, 5000, 'first patch')

      // A restarted process: a new handler on a new in-process broker.
      const restarted = createBroker()
      handler = createHandler({ broker: restarted, retryMs: 50 })
      await first.close({ reconnectSpreadMs: 0 })
      await until(() => p.resets.length === 1, 5000, 'the reset')
      assert.deepEqual(p.resets, ['foreign-id'], `the new handler resets with foreign-id: ${p.resets.join()}`)
      assert.equal(p.stop.state, 'open', 'a reset does not close the subscription')
      await publish(restarted, 'restart', [['replace', '/v', 2]])
      await until(() => p.patches.length === 2, 5000, 'live patches after the reset')
      // Outside a browser, nothing can reload the page: the default onReset reports.
      assert.ok(codes(silent).includes('ERR_PATCHWIRE_RESET'), `the default onReset reports ERR_PATCHWIRE_RESET: ${codes(silent).join(', ')}`)
    })

    it('reloads the page on reset by default in a browser, once however many subscribers', async (t) => {
      const reloads: number[] = []
      Object.defineProperty(globalThis, 'location', { value: { reload: () => reloads.push(1) }, configurable: true })
      t.after(() => delete (globalThis as { location?: unknown }).location)
      const p = await handWritten(t, ['event: reset\ndata: {"reason":"history-exceeded"}\n\n'])
      for (let i = 0; i < 3; i++) t.after(subscribe('t', () => {}, { path: p.url, EventSource, onError: () => {} }))
      await until(() => reloads.length === 1, 5000, 'location.reload()')
      // Every subscriber was told in that same dispatch.
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(reloads.length, 1, 'one reload for three subscribers')
    })

    it('reports each state change once, however many errors a reconnect goes through', async (t) => {
      const { url, server } = await serve(t)
      const p = probe(t, url, 'down')
      await until(() => p.stop.state === 'open', 5000, 'open')
      server.close()
      server.closeAllConnections()
      // Every failed reconnect is an error event; the state stays connecting.
      await until(() => p.errors.length >= 3, 5000, 'three failed reconnects')
      assert.deepEqual(p.states, ['open', 'connecting'], `the state changes once for many failed reconnects: ${p.states.join()}`)
      assert.ok(codes(p).every((code) => code === 'ERR_PATCHWIRE_DISCONNECTED'), `every error is ERR_PATCHWIRE_DISCONNECTED: ${codes(p).join(', ')}`)
    })
  })

  describe('one stream for the topics of a path, against createHandler', () => {
    /** The values of `['add', '/l/-', n]` ops, in the order they came. */
    const values = (p: Probe): unknown[] => p.patches.flatMap(({ ops }) => ops.map((op) => op[2]))
    const counting = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1)

    it('carries two topics on ONE connection; a third added while both publish loses and repeats nothing', async (t) => {
      const { url, broker, handler } = await serve(t)
      const a = probe(t, url, 'a')
      const b = probe(t, url, 'b')
      await until(() => a.stop.state === 'open' && b.stop.state === 'open', 5000, 'open')
      assert.equal(handler.stats().connections, 1, 'two topics share one connection')
      let c: Probe | undefined
      for (let n = 1; n <= 40; n++) {
        await publish(broker, 'a', [['add', '/l/-', n]])
        await publish(broker, 'b', [['add', '/l/-', n]])
        // The reopen for c happens while frames of a and b are on their way.
        if (n === 10) c = probe(t, url, 'c')
        await tick()
      }
      await until(() => c?.stop.state === 'open', 5000, 'c open')
      await publish(broker, 'c', [['add', '/l/-', 1]])
      await until(() => a.patches.length === 40 && b.patches.length === 40 && c?.patches.length === 1, 5000, 'every patch')
      assert.deepEqual(values(a), counting(40), 'a gets each of its 40 patches once, in order, across the reopen for c')
      assert.deepEqual(values(b), counting(40), 'b gets each of its 40 patches once, in order, across the reopen for c')
      assert.deepEqual(values(c as Probe), [1], 'c gets its one patch')
      await until(() => handler.stats().connections === 1, 5000, 'one connection again')
      assert.deepEqual([...a.errors, ...b.errors, ...(c as Probe).errors], [], `no errors on any topic: ${[...a.errors, ...b.errors, ...(c as Probe).errors].map((error) => error.message).join(' | ')}`)
      assert.deepEqual(a.states, ['open'], 'a reopen is not a drop')
    })

    it('gives a fresh stream each topic\'s snapshot, then every later patch; a topic added later gets its own', async (t) => {
      const state: Record<string, { l: number[] }> = { a: { l: [0] }, b: { l: [0] }, c: { l: [0] } }
      const { url, broker } = await serve(t, { snapshot: (_req, topic) => state[topic] })
      const send = async (topic: string, n: number): Promise<void> => {
        state[topic]?.l.push(n)
        await publish(broker, topic, [['add', '/l/-', n]])
      }
      const views: Record<string, { l: number[] }[]> = {}
      const follow = (topic: string): Probe => {
        const view: { current?: { l: number[] } } = {}
        const p = probe(t, url, topic, { onSnapshot: (snapshot) => ((view.current = snapshot as { l: number[] }), (views[topic] ??= []).push(view.current)) })
        const onPatch = p.patches.push.bind(p.patches)
        p.patches.push = (...items) => {
          for (const { ops } of items) applyPatch(view.current, ops)
          return onPatch(...items)
        }
        return p
      }
      follow('a')
      follow('b')
      await until(() => views['a']?.length === 1 && views['b']?.length === 1, 5000, 'the snapshots')
      await send('a', 1)
      await send('b', 1)
      follow('c')
      await send('a', 2)
      await until(() => views['c']?.length === 1, 5000, 'the snapshot of c')
      await send('c', 1)
      await until(() => views['a']?.[0]?.l.length === 3 && views['c']?.[0]?.l.length === 2, 5000, 'the patches')
      for (const topic of ['a', 'b', 'c']) assert.deepEqual(views[topic], [state[topic]], `${topic}: one snapshot, brought up to the server's state by the patches`)
    })

    it('after a restart: reset, then the snapshot replaces the state, and nothing reloads the page', async (t) => {
      const reloads: number[] = []
      Object.defineProperty(globalThis, 'location', { value: { reload: () => reloads.push(1) }, configurable: true })
      t.after(() => delete (globalThis as { location?: unknown }).location)
      const seen: string[] = []
      const snapshot = (_req: unknown, topic: string): unknown => ({ topic, at: seen.length })
      let handler = createHandler({ broker: createBroker(), retryMs: 50, snapshot })
      const server = http.createServer((req, res) => handler(req, res))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const first = handler
      t.after(async () => {
        await handler.close()
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
      })
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`
      for (const topic of ['a', 'b']) {
        probe(t, url, topic, { onReset: (reason) => seen.push(`${topic} reset ${reason}`), onSnapshot: () => seen.push(`${topic} snapshot`) })
      }
      const quiet = probe(t, url, 'a', { onReset: undefined as never, onSnapshot: () => seen.push('quiet snapshot') })
      await until(() => seen.length === 3, 5000, 'the first snapshots')
      const restarted = createBroker()
      handler = createHandler({ broker: restarted, retryMs: 50, snapshot })
      await first.close({ reconnectSpreadMs: 0 })
      await until(() => seen.length === 8, 5000, 'resets and snapshots')
      assert.deepEqual(seen.slice(3).filter((line) => line.startsWith('a')), ['a reset foreign-id', 'a snapshot'], `a is reset and then gets its new snapshot: ${seen.slice(3).join(', ')}`)
      assert.deepEqual(seen.slice(3).filter((line) => line.startsWith('b')), ['b reset foreign-id', 'b snapshot'], `b is reset and then gets its new snapshot: ${seen.slice(3).join(', ')}`)
      assert.ok(seen.slice(3).includes('quiet snapshot'), `the quiet topic gets a snapshot too: ${seen.slice(3).join(', ')}`)
      assert.deepEqual(reloads, [], 'with onSnapshot nothing reloads the page')
      assert.deepEqual(codes(quiet), ['ERR_PATCHWIRE_DISCONNECTED'], 'the drop, and no ERR_PATCHWIRE_RESET')
      await publish(restarted, 'a', [['replace', '/v', 2]])
      await until(() => quiet.patches.length === 1, 5000, 'live patches after the reset')
    })

    it('starts a topic at its lastEventId from position() (server rendering), beside a topic at the stream\'s position', async (t) => {
      const { url, broker, handler } = await serve(t)
      const live = probe(t, url, 'live')
      await until(() => live.stop.state === 'open', 5000, 'open')
      await publish(broker, 'rendered', [['add', '/l/-', 1]])
      const rendered = await position(broker, 'rendered')
      await publish(broker, 'rendered', [['add', '/l/-', 2]])
      await publish(broker, 'live', [['add', '/l/-', 1]])
      await until(() => live.patches.length === 1, 5000, 'the live patch')
      const late = probe(t, url, 'rendered', { lastEventId: rendered })
      await publish(broker, 'rendered', [['add', '/l/-', 3]])
      await publish(broker, 'live', [['add', '/l/-', 2]])
      await until(() => late.patches.length === 2 && live.patches.length === 2, 5000, 'every patch')
      await publish(broker, 'rendered', [['add', '/l/-', 4]])
      await until(() => late.patches.length === 3, 5000, 'after the merge')
      assert.deepEqual(values(late), [2, 3, 4], 'the late topic starts after its position and merges in without loss or repeat')
      assert.deepEqual(values(live), [1, 2], 'the live topic gets each of its patches once, across the catch-up and the merge')
      await until(() => handler.stats().connections === 1, 5000, 'the catch-up merged into the stream')
    })

    it('refuses every topic of a path once they outnumber the server\'s maxTopics, saying so', async (t) => {
      const { url, handler } = await serve(t, { maxTopics: 2 })
      const probes = ['a', 'b', 'c'].map((topic) => probe(t, url, topic))
      await until(() => probes.every((p) => p.stop.state === 'closed'), 5000, 'the refusals')
      for (const p of probes) {
        assert.deepEqual(codes(p), ['ERR_PATCHWIRE_REFUSED'], `every topic of the path is refused: ${p.errors.map((error) => error.message).join(' | ')}`)
        assert.match(p.errors[0]?.message ?? '', /\(3 topics: over maxTopics\?\)/, `the refusal points to maxTopics: ${p.errors[0]?.message}`)
      }
      assert.equal(handler.stats().connections, 0, 'no stream is counted for refused topics')
    })

    it('refuses only the forbidden topic of a path; the accepted ones stay on one connection', async (t) => {
      const { url, broker, handler } = await serve(t, { topicPrefix: 'ok:' })
      const a = probe(t, url, 'ok:a')
      await until(() => a.stop.state === 'open', 5000, 'open')
      const secret = probe(t, url, 'secret')
      const b = probe(t, url, 'ok:b')
      await until(() => secret.stop.state === 'closed' && b.stop.state === 'open', 5000, 'the refusal')
      assert.deepEqual(codes(secret), ['ERR_PATCHWIRE_REFUSED'], `the forbidden topic is refused: ${secret.errors.map((error) => error.message).join(' | ')}`)
      assert.deepEqual([...codes(a), ...codes(b)], [], `the accepted topics get no error: ${[...a.errors, ...b.errors].map((error) => error.message).join(' | ')}`)
      await publish(broker, 'ok:a', [['add', '/l/-', 1]])
      await publish(broker, 'ok:b', [['add', '/l/-', 1]])
      await until(() => a.patches.length === 1 && b.patches.length === 1, 5000, 'the patches')
      await until(() => handler.stats().connections === 1, 5000, 'one connection')
    })
  })

  describe('frames and callbacks', () => {
    it('reports frames that are not ops as ERR_PATCHWIRE_FRAME and goes on', async (t) => {
      const server = await handWritten(t, [
        'id: 1\nevent: patch\ndata: not json\n\n',
        'id: 2\nevent: patch\ndata: {"op":"add"}\n\n',
        'id: 3\nevent: patch\ndata: [["add"]]\n\n',
        'id: 4\nevent: patch\ndata: [["add", 1, 2]]\n\n',
        'id: 5\nevent: patch\ndata: [["replace","/a",1]]\n\n',
      ])
      const p = probe(t, server.url, 't')
      await until(() => p.patches.length === 1, 5000, 'the good frame')
      assert.deepEqual(codes(p), ['ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME'], `one ERR_PATCHWIRE_FRAME per bad frame: ${p.errors.map((error) => error.message).join(' | ')}`)
      assert.match(p.errors[0]?.message ?? '', /bad patch frame on .*: not json/, `the error names the bad data: ${p.errors[0]?.message}`)
      assert.deepEqual(p.patches[0], { ops: [['replace', '/a', 1]], meta: { id: '5', topic: 't' } }, 'the good frame after the bad ones arrives with its id and topic')
      assert.equal(p.stop.state, 'open', 'bad frames do not close the subscription')
    })

    it('reports a callback that throws as ERR_PATCHWIRE_CALLBACK; the other subscribers still get the patch', async (t) => {
      const server = await handWritten(t, ['id: 1\nevent: patch\ndata: [["replace","/a",1]]\n\nid: 2\nevent: patch\ndata: [["replace","/a",2]]\n\n'])
      const boom = new Error('boom')
      const failing = probe(t, server.url, 't')
      const errors: PatchwireError[] = []
      const thrower = subscribe('t', () => { throw boom }, { path: server.url, EventSource, onError: (error) => errors.push(error) })
      t.after(thrower)
      const after = probe(t, server.url, 't')
      await until(() => after.patches.length === 2 && failing.patches.length === 2, 5000, 'both patches')
      assert.deepEqual(errors.map((error) => [error.code, error.cause]), [['ERR_PATCHWIRE_CALLBACK', boom], ['ERR_PATCHWIRE_CALLBACK', boom]], 'each patch reports the throwing callback once, with the thrown error as cause')
      assert.equal(thrower.state, 'open', 'a throwing callback does not close its subscription')
    })

    it('keeps an onError that throws out of the page: reported on the console, the other subscribers still get the patch', async (t) => {
      const server = await handWritten(t, ['id: 1\nevent: patch\ndata: [["replace","/a",1]]\n\n'])
      const logged: unknown[][] = []
      mock.method(console, 'error', (...args: unknown[]) => logged.push(args))
      t.after(() => mock.restoreAll())
      const broken = new Error('onError broke')
      const thrower = subscribe('t', () => { throw new Error('onPatch broke') }, { path: server.url, EventSource, onError: () => { throw broken } })
      t.after(thrower)
      const after = probe(t, server.url, 't')
      await until(() => after.patches.length === 1, 5000, 'the patch at the other subscriber')
      assert.equal(logged.length, 1, `the throwing onError is reported once on the console: ${logged.map(String).join(' | ')}`)
      assert.match(String(logged[0]?.[0]), /ERR_PATCHWIRE_CALLBACK: the onError callback .* threw/, `the console names ERR_PATCHWIRE_CALLBACK and onError: ${String(logged[0]?.[0])}`)
      assert.equal(logged[0]?.[1], broken, 'the console gets the error onError threw')
    })

    it('passes the reason of a reset frame, or its raw data when it is not the JSON form', async (t) => {
      const server = await handWritten(t, ['event: reset\ndata: {"reason":"history-exceeded"}\n\nevent: reset\ndata: gone\n\nevent: reset\ndata: {"why":1}\n\n'])
      const p = probe(t, server.url, 't')
      await until(() => p.resets.length === 3, 5000, 'three resets')
      assert.deepEqual(p.resets, ['history-exceeded', 'gone', '{"why":1}'], `the reasons, the raw data for non-JSON or unknown forms: ${p.resets.join(' | ')}`)
    })

    it('lets a callback stop another subscriber of the same stream', async (t) => {
      const server = await handWritten(t, ['id: 1\nevent: patch\ndata: [["replace","/a",1]]\n\n'])
      let second: Probe | undefined
      const first = subscribe('t', () => second?.stop(), { path: server.url, EventSource })
      t.after(first)
      second = probe(t, server.url, 't')
      await until(() => second?.stop.state === 'closed', 5000, 'the second stopped')
      assert.equal(second.patches.length, 0, 'a subscriber stopped by another callback gets no patch')
    })

    it('passes withCredentials to the EventSource only when asked', async () => {
      const { EventSource: Recording, inits } = recorder()
      const stops = [subscribe('t', () => {}, { path: '/e', EventSource: Recording }), subscribe('t', () => {}, { path: '/e', EventSource: Recording, withCredentials: true })]
      await tick()
      stops.forEach((stop) => stop())
      assert.deepEqual(inits, [{ withCredentials: false }, { withCredentials: true }], 'withCredentials is passed as given, false by default')
    })
  })

  describe('environment', () => {
    it('defaults the path to the page\'s directory + __events: a directory path, or the directory of a page that is a file', async (t) => {
      const { EventSource: Recording, urls } = recorder()
      const pathname = { value: '/' }
      Object.defineProperty(globalThis, 'window', { value: { location: { get pathname() { return pathname.value } }, EventSource: Recording }, configurable: true })
      t.after(() => delete (globalThis as { window?: unknown }).window)
      const pages = ['/', '/dashboard', '/dashboard/', '/x.html', '/reports/q3/index.html', '/v1.2/']
      for (const value of pages) {
        pathname.value = value
        const stop = subscribe('user:42', () => {})
        await tick()
        stop()
      }
      assert.deepEqual(urls, ['/__events', '/dashboard/__events', '/dashboard/__events', '/__events', '/reports/q3/__events', '/v1.2/__events'].map((path) => `${path}?topic=user%3A42`), `the paths of the pages ${pages.join(', ')}`)
    })

    it('puts the topic before a #fragment of the path', async () => {
      const { EventSource: Recording, urls } = recorder()
      const stops = [subscribe('t', () => {}, { path: '/e#main', EventSource: Recording }), subscribe('t', () => {}, { path: '/e?x=1#main', EventSource: Recording })]
      await tick()
      stops.forEach((stop) => stop())
      assert.deepEqual(urls, ['/e?topic=t', '/e?x=1&topic=t'], `the topic goes before the fragment: ${urls.join(' ')}`)
    })

    it('uses the global EventSource in a worker, where there is no window', async (t) => {
      const { EventSource: Recording, urls } = recorder()
      const scope = globalThis as { WorkerGlobalScope?: unknown; EventSource?: unknown }
      const saved = scope.EventSource
      scope.WorkerGlobalScope = class {}
      scope.EventSource = Recording
      t.after(() => {
        delete scope.WorkerGlobalScope
        scope.EventSource = saved
      })
      const stop = subscribe('t', () => {}, { path: '/e' })
      assert.equal(stop.state, 'connecting', 'a worker subscription starts connecting')
      await tick()
      stop()
      assert.deepEqual(urls, ['/e?topic=t'], `the global EventSource of the worker opens the stream: ${urls.join(' ')}`)
      assert.throws(() => subscribe('t', () => {}), { name: 'TypeError', message: /options\.path is required outside a page/ }, 'a worker without options.path is refused')
    })

    it('does nothing during server-side rendering (no window, no EventSource option)', () => {
      let called = false
      const stop = subscribe('t', () => (called = true))
      assert.equal(stop.state, 'closed', 'without a window or EventSource the subscription is closed')
      stop()
      stop()
      assert.equal(called, false, 'no callback runs during server-side rendering')
    })

    it('needs options.path outside a browser', () => {
      assert.throws(() => subscribe('t', () => {}, { EventSource }), { name: 'TypeError', message: /options\.path is required outside a page/ }, 'outside a page options.path is required')
    })

    it('refuses unknown options with a TypeError that names them, suggests the one meant and lists the valid ones', () => {
      const options = { path: '/e', EventSource, onSnapShot: () => {} } as SubscribeOptions
      assert.throws(() => subscribe('t', () => {}, options), (error: unknown) => {
        assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`)
        assert.match(error.message, /^subscribe: unknown option "onSnapShot" \(did you mean "onSnapshot"\?\); the options are path, withCredentials, onSnapshot, /, 'the message names the option, the one meant and the valid ones')
        return true
      }, 'a misspelled onSnapshot is refused')
      assert.throws(() => subscribe('t', () => {}, { path: '/e', EventSource, snapshot: true, retry: 1 } as SubscribeOptions), { name: 'TypeError', message: /unknown options "snapshot", "retry"; the options are/ }, 'every unknown option is named')
      assert.throws(() => subscribe('t', () => {}, null as unknown as SubscribeOptions), { name: 'TypeError', message: /options must be an object, got null/ }, 'null options are refused')
      assert.throws(() => subscribe('t', () => {}, '/events' as unknown as SubscribeOptions), { name: 'TypeError', message: /options must be an object, got string/ }, 'a path given in place of the options is refused')
    })

    it('types onSnapshot by subscribe<T>, so that applyPatch on the state is typed', () => {
      let state: { counter: number } | undefined
      const stop = subscribe<{ counter: number }>('t', (ops) => applyPatch(state, ops), { path: '/e', EventSource: recorder().EventSource, onSnapshot: (snapshot) => { state = snapshot } })
      stop()
      // @ts-expect-error: the snapshot is a { counter: number }, not a string
      subscribe<{ counter: number }>('t', () => {}, { path: '/e', EventSource: recorder().EventSource, onSnapshot: (snapshot: string) => snapshot })()
      assert.equal(state, undefined, 'nothing arrived from a recorder')
    })

    it('with debug: true, logs each frame, state change and reconnect to the console', async (t) => {
      const { url, broker, handler } = await serve(t, { snapshot: () => ({ counter: 0 }) })
      const lines: string[] = []
      t.mock.method(console, 'log', (...args: unknown[]) => lines.push(args.map(String).join(' ')))
      const p = probe(t, url, 'dbg', { debug: true, onSnapshot: () => {} })
      await until(() => p.states.includes('open'), 5000, 'the stream opened')
      await publish(broker, 'dbg', [['replace', '/counter', 1]])
      await until(() => p.patches.length === 1, 5000, 'the patch arrived')
      handler.close({ reconnectSpreadMs: 0 })
      await until(() => p.states.includes('connecting'), 5000, 'the stream dropped')
      const seen = lines.filter((line) => line.startsWith('[patchwire] dbg: '))
      assert.ok(seen.some((line) => line === '[patchwire] dbg: snapshot {"counter":0}'), `the snapshot is logged: ${seen.join(' | ')}`)
      assert.ok(seen.some((line) => line === '[patchwire] dbg: state open'), `the open state is logged: ${seen.join(' | ')}`)
      assert.ok(seen.some((line) => /^\[patchwire\] dbg: patch \S+ \[\["replace","\/counter",1\]\]$/.test(line)), `the patch is logged with its id: ${seen.join(' | ')}`)
      assert.ok(seen.some((line) => line.startsWith('[patchwire] dbg: state connecting ERR_PATCHWIRE_DISCONNECTED the stream ')), `the reconnect is logged: ${seen.join(' | ')}`)
    })

    it('logs nothing without debug (control)', async (t) => {
      const { url, broker } = await serve(t)
      const lines: string[] = []
      t.mock.method(console, 'log', (...args: unknown[]) => lines.push(args.map(String).join(' ')))
      const p = probe(t, url, 'quiet')
      await until(() => p.states.includes('open'), 5000, 'the stream opened')
      await publish(broker, 'quiet', [['replace', '/counter', 1]])
      await until(() => p.patches.length === 1, 5000, 'the patch arrived')
      assert.deepEqual(lines.filter((line) => line.startsWith('[patchwire]')), [], 'nothing is logged')
    })

    it('throws a TypeError for a bad topic or onPatch', () => {
      assert.throws(() => subscribe('', () => {}, { path: '/e', EventSource }), { name: 'TypeError', message: /topic must be a non-empty string/ }, 'an empty topic is refused')
      assert.throws(() => subscribe(42 as never, () => {}, { path: '/e', EventSource }), TypeError, 'a topic that is not a string is refused')
      assert.throws(() => subscribe('t', 'nope' as never, { path: '/e', EventSource }), { name: 'TypeError', message: /onPatch must be a function/ }, 'an onPatch that is not a function is refused')
      assert.throws(() => subscribe('a\ud800', () => {}, { path: '/e', EventSource }), { name: 'TypeError', message: /well-formed Unicode/ }, 'a topic with a lone surrogate is refused')
      assert.throws(() => subscribe('t', () => {}, { path: 'http://[nope', EventSource }), { name: 'TypeError', message: /options\.path must be a URL path or a URL, got "http:\/\/\[nope"/ }, 'a path that is no URL is refused, naming it')
      for (const lastEventId of ['', 7]) {
        assert.throws(() => subscribe('t', () => {}, { path: '/e', EventSource, lastEventId: lastEventId as string }), { name: 'TypeError', message: /options\.lastEventId must be a non-empty event id string/ }, `lastEventId ${JSON.stringify(lastEventId)} is refused`)
      }
    })
  })
})

// A node:http SSE server that writes the given frames on each stream, for
// frames createHandler never writes (malformed ones).
async function handWritten(t: TestContext, frames: string[]): Promise<{ url: string }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    res.write('retry: 60000\n\n')
    for (const frame of frames) res.write(frame)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events` }
}

/**
 * createFetchHandler in process: real `Request`s in, real `Response`s out,
 * bodies read (or not) as a Fetch server would. The headers, the exact
 * bytes, every refusal, clients that leave (before and after the stream
 * opens), the slow-reader cut-off on the body's queue, and close().
 * test/runtimes.test.ts runs the same handler inside Bun, Deno and Node's
 * Fetch servers.
 */
import assert from 'node:assert/strict'
import { describe, it, mock, type TestContext } from 'node:test'
import { createBroker, createFetchHandler, formatPatch, position, publish, PatchwireError, type Broker, type FetchHandler, type FetchHandlerOptions, type PatchOp } from '../src/index.ts'
import { streamCounts } from './helpers/server.ts'
import { SseBody } from './fixtures/runtimes/sse-body.ts'

const ORIGIN = 'http://patchwire.test'
const OPS: PatchOp[] = [['replace', '/counter', 7]]

function start(t: TestContext, options: FetchHandlerOptions = {}): { handler: FetchHandler; broker: Broker } {
  const broker = createBroker()
  const handler = createFetchHandler({ broker, ...options })
  t.after(() => handler.close({ reconnectSpreadMs: 0 }))
  return { handler, broker }
}

/** Opens a stream and waits for its `ready` frame. */
async function open(handler: FetchHandler, query: string, init?: RequestInit): Promise<SseBody> {
  const response = await handler(new Request(`${ORIGIN}/events?${query}`, init))
  if (response.status !== 200) assert.fail(`the stream did not open: ${response.status} ${await response.text()}`)
  const body = new SseBody(response)
  await body.waitForReady()
  return body
}

/** Everything before the first frame after `ready`: `retry:`, then what the opening sent, then the `ready` frame. */
function readyFrame(id: string): string {
  return `id: ${id}\nevent: ready\ndata: ${id}\n\n`
}

/** A `retry:` hint spread over 0.75 to 1.25 × retryMs. */
function retryOf(text: string, retryMs: number): string {
  const match = /^retry: (\d+)\n\n/.exec(text)
  assert.ok(match, `the stream starts with retry: ${JSON.stringify(text.slice(0, 40))}`)
  const retry = Number(match[1])
  assert.ok(retry >= Math.floor(retryMs * 0.75) && retry <= Math.ceil(retryMs * 1.25), `retry ${retry} within ±25 % of ${retryMs}`)
  return match[0]
}

async function assertRefused(response: Response, status: number, bodyIncludes?: string): Promise<void> {
  assert.equal(response.status, status, `the refusal's status: ${response.status} ${response.statusText}`)
  assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8', 'a refusal is plain UTF-8 text')
  assert.equal(response.headers.get('cache-control'), 'no-store', 'a refusal is not cached')
  const text = await response.text()
  if (bodyIncludes !== undefined) assert.ok(text.includes(bodyIncludes), `${JSON.stringify(text)} names ${bodyIncludes}`)
}

/** Lets the handler's end-of-turn flush run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

describe('createFetchHandler', () => {
  it('validates its options like createHandler, naming itself', () => {
    assert.throws(() => createFetchHandler({ bogus: 1 } as FetchHandlerOptions), (error: Error) => error instanceof TypeError && error.message.startsWith('createFetchHandler: unknown option "bogus"'), 'an unknown option throws a TypeError naming createFetchHandler and the option')
    assert.throws(() => createFetchHandler({ heartbeatMs: 0 }), RangeError, 'heartbeatMs 0 throws a RangeError')
  })

  describe('an accepted stream', () => {
    it('answers 200 with the stream headers, then retry:, ready, and each patch byte for byte as formatPatch', async (t) => {
      const { handler, broker } = start(t, { retryMs: 1000 })
      const response = await handler(new Request(`${ORIGIN}/events?topic=room`))
      assert.equal(response.status, 200, 'status 200')
      assert.equal(response.headers.get('content-type'), 'text/event-stream', 'content-type is text/event-stream')
      assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform', 'cache-control forbids caching and transforms')
      assert.equal(response.headers.get('x-accel-buffering'), 'no', 'x-accel-buffering turns off proxy buffering')
      const body = new SseBody(response)
      await body.waitForReady()
      const readyId = body.named('ready')[0]?.id ?? ''
      assert.equal(readyId, await position(broker, 'room'), 'the ready id is the broker\'s position for the topic')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 1, topics: 1, dropped: 0 }, 'one stream on one topic')

      const first = await publish(broker, 'room', OPS)
      const second = await publish(broker, 'room', [['add', '/items/-', { n: 'é\u2028' }]])
      await body.waitFor(() => body.named('patch').length === 2, 'both patches')
      const retry = retryOf(body.text, 1000)
      assert.equal(body.text, retry + readyFrame(readyId) + formatPatch(OPS, first) + formatPatch([['add', '/items/-', { n: 'é\u2028' }]], second), 'retry, ready, then both patches byte for byte as formatPatch')
    })

    it('carries several topics on one stream, each frame naming its topic', async (t) => {
      const { handler, broker } = start(t)
      const body = await open(handler, 'topic=a&topic=b')
      const a = await publish(broker, 'a', OPS)
      const b = await publish(broker, 'b', [['remove', '/x']])
      await body.waitFor(() => body.named('patch').length === 2, 'a patch of each topic')
      assert.ok(body.text.endsWith(`id: ${a}\nevent: patch\ndata: "a"\ndata: [["replace","/counter",7]]\n\nid: ${b}\nevent: patch\ndata: "b"\ndata: [["remove","/x"]]\n\n`), body.text)
    })

    it('gives authorize and snapshot the Fetch Request, and sends the snapshot before ready', async (t) => {
      const seen: unknown[] = []
      const { handler } = start(t, {
        authorize: (req, topic) => {
          seen.push(req)
          return req.headers.get('x-user') === 'ann' && topic === 'room'
        },
        snapshot: (req, topic) => ({ user: req.headers.get('x-user'), topic }),
      })
      const request = new Request(`${ORIGIN}/events?topic=room`, { headers: { 'x-user': 'ann' } })
      const body = new SseBody(await handler(request))
      await body.waitForReady()
      assert.deepEqual(seen, [request], 'authorize got the Fetch Request itself')
      const readyId = body.named('ready')[0]?.id ?? ''
      assert.equal(body.text, `${retryOf(body.text, 3000)}event: snapshot\ndata: {"user":"ann","topic":"room"}\n\n${readyFrame(readyId)}`, 'retry, the snapshot built from the Request, then ready')
      await assertRefused(await handler(new Request(`${ORIGIN}/events?topic=room`, { headers: { 'x-user': 'bob' } })), 403)
    })

    it('resumes exactly after Last-Event-ID, which wins over ?lastEventId=', async (t) => {
      const { handler, broker } = start(t)
      const first = await publish(broker, 'room', [['replace', '/n', 1]])
      const second = await publish(broker, 'room', [['replace', '/n', 2]])
      const third = await publish(broker, 'room', [['replace', '/n', 3]])
      const body = await open(handler, 'topic=room&lastEventId=not-an-id', { headers: { 'Last-Event-ID': first } })
      assert.equal(body.text, retryOf(body.text, 3000) + formatPatch([['replace', '/n', 2]], second) + formatPatch([['replace', '/n', 3]], third) + readyFrame(third), 'the header position wins: the two later patches, then ready at the last')
      assert.equal(handler.stats().replays, 1, 'one exact replay counted')

      const byQuery = await open(handler, `topic=room&lastEventId=${encodeURIComponent(second)}`)
      assert.equal(byQuery.text, retryOf(byQuery.text, 3000) + formatPatch([['replace', '/n', 3]], third) + readyFrame(third), 'the query position replays the patch after it')
    })

    it('sends the heartbeat comment to an idle stream', async (t) => {
      const { handler } = start(t, { heartbeatMs: 20 })
      const body = await open(handler, 'topic=quiet')
      await body.waitFor(() => body.comments >= 2, 'two heartbeats')
      assert.ok(body.text.endsWith(':\n\n'), `the stream ends with a heartbeat comment: ${JSON.stringify(body.text.slice(-40))}`)
    })
  })

  describe('refusals', () => {
    const long = 'x'.repeat(257)
    const cases: [string, string, RequestInit, number, string?][] = [
      ['a missing topic', '/events', {}, 400, 'topic'],
      ['an empty topic', '/events?topic=', {}, 400, 'topic'],
      ['a topic with a control character', '/events?topic=a%0Ab', {}, 400, 'control'],
      ['broken percent-encoding', '/events?topic=%E0%A4%A', {}, 400, 'percent'],
      ['too many topics', '/events?topic=app:a&topic=app:b&topic=app:c', {}, 400, 'maxTopics'],
      ['a topic outside topicPrefix', '/events?topic=other:a', {}, 403],
      ['a topic longer than maxTopicLength', `/events?topic=app:${long}`, {}, 414, 'maxTopicLength'],
      ['a POST', '/events?topic=app:a', { method: 'POST', body: 'x' }, 405],
      ['a HEAD', '/events?topic=app:a', { method: 'HEAD' }, 405],
      ['a path other than path', '/elsewhere?topic=app:a', {}, 404],
    ]
    for (const [what, target, init, status, names] of cases) {
      it(`answers ${what} with ${status}, plain text, and opens nothing`, async (t) => {
        const { handler } = start(t, { path: '/events', topicPrefix: 'app:', maxTopics: 2 })
        const response = await handler(new Request(`${ORIGIN}${target}`, init))
        await assertRefused(response, status, names)
        if (status === 405) assert.equal(response.headers.get('allow'), 'GET', 'the 405 answer says GET is allowed')
        assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'a refusal opens no stream and holds no topic')
        assert.deepEqual(handler.stats().refused, { [status]: 1 }, `the refusal counted under ${status}`)
      })
    }

    it('answers 500 when authorize throws, and reports ERR_PATCHWIRE_AUTHORIZE', async (t) => {
      const errors: PatchwireError[] = []
      const { handler } = start(t, { authorize: () => { throw new Error('db down') }, onError: (error) => errors.push(error) })
      await assertRefused(await handler(new Request(`${ORIGIN}/events?topic=room`)), 500)
      assert.deepEqual(errors.map((error) => error.code), ['ERR_PATCHWIRE_AUTHORIZE'], 'the throwing authorize reported once')
      assert.equal(handler.stats().connections, 0, 'no stream for the refused request')
    })

    it('answers 500 when snapshot rejects, and reports ERR_PATCHWIRE_SNAPSHOT', async (t) => {
      const errors: PatchwireError[] = []
      const { handler } = start(t, { snapshot: () => Promise.reject(new Error('db down')), onError: (error) => errors.push(error) })
      await assertRefused(await handler(new Request(`${ORIGIN}/events?topic=room`)), 500)
      assert.deepEqual(errors.map((error) => error.code), ['ERR_PATCHWIRE_SNAPSHOT'], 'the rejected snapshot reported once')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 1, dropped: 0 }, 'no stream for the refused request; the topic lingers on its subscription')
    })

    it('answers 503 once closed', async (t) => {
      const { handler } = start(t)
      await handler.close()
      await assertRefused(await handler(new Request(`${ORIGIN}/events?topic=room`)), 503, 'shutting down')
    })
  })

  describe('a client that leaves', () => {
    it('is forgotten as soon as the server cancels the body, without any publish', async (t) => {
      const { handler } = start(t, { lingerMs: 0 })
      const one = await open(handler, 'topic=a&topic=b')
      const two = await open(handler, 'topic=a')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 2, topics: 2, dropped: 0 }, 'two streams on topics a and b')
      await one.cancel()
      assert.deepEqual(streamCounts(handler.stats()), { connections: 1, topics: 1, dropped: 0 }, 'the cancelled stream and its lone topic b forgotten')
      await two.cancel()
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'nothing left once both are cancelled')
    })

    it('while its stream waits to open is answered at once and never opened', async (t) => {
      let verdict: (allowed: boolean) => void = () => {}
      const { handler } = start(t, { lingerMs: 0, authorize: () => new Promise<boolean>((resolve) => (verdict = resolve)) })
      const abort = new AbortController()
      const answer = handler(new Request(`${ORIGIN}/events?topic=room`, { signal: abort.signal }))
      assert.equal(handler.stats().pending, 1, 'the request waits on authorize')
      // A server sees a client leave in a later turn than its request.
      await nextTurn()
      abort.abort()
      verdict(true)
      const response = await answer
      assert.equal(response.status, 499, 'the server gets a Response, which nobody will read')
      assert.equal(response.body, null, 'the answer to a client that left has no body')
      assert.deepEqual({ ...streamCounts(handler.stats()), pending: handler.stats().pending }, { connections: 0, topics: 0, dropped: 0, pending: 0 }, 'nothing opened or pending for the client that left')
    })

    it('does not look at the request signal of an opening that did not wait', async (t) => {
      const { handler } = start(t, { authorize: (_req, topic) => topic === 'mine' })
      // Deno warns once per process when a request whose signal was read
      // ends well: a plain refusal or stream must not read it.
      const untouched = (url: string): Request => {
        const request = new Request(url)
        Object.defineProperty(request, 'signal', { get: () => assert.fail('signal read') })
        return request
      }
      await assertRefused(await handler(untouched(`${ORIGIN}/events?topic=theirs`)), 403)
      const body = new SseBody(await handler(untouched(`${ORIGIN}/events?topic=mine`)))
      await body.waitForReady()
    })
  })

  describe('slow readers', () => {
    it('cuts a reader that takes nothing once its queue passes maxBufferedBytes, while a healthy reader gets every frame', async (t) => {
      const maxBufferedBytes = 64 * 1024
      const { handler, broker } = start(t, { maxBufferedBytes })
      const stalledResponse = await handler(new Request(`${ORIGIN}/events?topic=feed`))
      const healthy = await open(handler, 'topic=feed')
      const frame = formatPatch([['replace', '/blob', 'x'.repeat(4096)]], '0').length
      const ids: string[] = []
      let sentToStalled = 0
      while (handler.stats().dropped === 0) {
        assert.ok(ids.length < 200, 'the stalled reader is cut')
        ids.push(await publish(broker, 'feed', [['replace', '/blob', 'x'.repeat(4096)]]))
        await nextTurn()
        if (handler.stats().dropped === 0) sentToStalled += frame + (ids.at(-1) as string).length - 1
      }
      // Its queue held everything it was sent: it was not cut before the
      // limit, and not much after (the two batches left out of the count).
      assert.ok(sentToStalled > maxBufferedBytes && sentToStalled <= maxBufferedBytes + 3 * frame, `cut with ${sentToStalled} bytes queued`)
      t.diagnostic(`in process: cut with ${sentToStalled} bytes queued (maxBufferedBytes ${maxBufferedBytes}, frames of ${frame} bytes)`)
      await assert.rejects(stalledResponse.body?.getReader().read() ?? Promise.resolve(), (reason) => typeof reason === 'string' && reason.includes('maxBufferedBytes'), 'the stalled body is errored, naming maxBufferedBytes')
      await healthy.waitFor(() => healthy.named('patch').length === ids.length, 'every frame at the healthy reader')
      assert.deepEqual(healthy.named('patch').map((event) => event.id), ids, 'the healthy reader got every frame, in order')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 1, topics: 1, dropped: 1 }, 'the stalled stream counted as dropped; the healthy one stays')
    })

    it('never cuts a stream for one large frame alone', async (t) => {
      const { handler, broker } = start(t, { maxBufferedBytes: 1000 })
      const response = await handler(new Request(`${ORIGIN}/events?topic=feed`))
      const id = await publish(broker, 'feed', [['replace', '/blob', 'x'.repeat(50_000)]])
      await nextTurn()
      assert.equal(handler.stats().dropped, 0, 'one large frame does not cut the stream')
      const body = new SseBody(response)
      await body.waitFor(() => body.named('patch').length === 1, 'the large frame')
      assert.equal(body.named('patch')[0]?.id, id, 'the large frame arrives')
    })

    it('cuts a reader that took nothing for two heartbeats and at least 10 s, even on a quiet topic', async (t) => {
      // The heartbeat's interval on a mocked clock: 10 s pass in no time.
      mock.timers.enable({ apis: ['setInterval'] })
      t.after(() => mock.timers.reset())
      const { handler, broker } = start(t, { heartbeatMs: 1000 })
      const response = await handler(new Request(`${ORIGIN}/events?topic=quiet`))
      await publish(broker, 'quiet', OPS)
      await nextTurn()
      for (let beat = 0; beat < 9; beat++) mock.timers.tick(1000)
      assert.equal(handler.stats().dropped, 0, 'not before 10 s')
      for (let beat = 0; beat < 3; beat++) mock.timers.tick(1000)
      assert.equal(handler.stats().dropped, 1, 'cut once 10 s passed without progress')
      assert.equal(handler.stats().connections, 0, 'no stream left after the cut')
      await assert.rejects(response.body?.getReader().read() ?? Promise.resolve(), (reason) => typeof reason === 'string' && reason.includes('cut by the server'), 'the stalled body is errored as cut by the server')
    })
  })

  describe('#close()', () => {
    it('ends every stream with a retry: hint, cuts one with a backlog, and resolves', async (t) => {
      const { handler, broker } = start(t, { retryMs: 1000 })
      const single = await open(handler, 'topic=a')
      const multi = await open(handler, 'topic=a&topic=b')
      const stalledResponse = await handler(new Request(`${ORIGIN}/events?topic=b`))
      await publish(broker, 'b', OPS)
      await nextTurn()
      await handler.close({ reconnectSpreadMs: 0 })
      assert.equal(handler.stats().connections, 0, 'no stream left after close()')
      await Promise.all([single.waitForEnd(), multi.waitForEnd()])
      for (const body of [single, multi]) {
        assert.equal(body.ended, true, 'each stream ended by close()')
        assert.ok(body.text.endsWith('retry: 1000\n\n'), JSON.stringify(body.text.slice(-40)))
      }
      await assert.rejects(stalledResponse.body?.getReader().read() ?? Promise.resolve(), (reason) => typeof reason === 'string' && reason.includes('cut by the server'), 'the stream with a backlog is errored as cut by the server')
      await assertRefused(await handler(new Request(`${ORIGIN}/events?topic=a`)), 503)
    })

    it('throws a RangeError for a bad reconnectSpreadMs', (t) => {
      const { handler } = start(t)
      assert.throws(() => handler.close({ reconnectSpreadMs: -1 }), RangeError, 'a negative reconnectSpreadMs throws a RangeError')
      assert.throws(() => handler.close({ reconnectSpreadMs: Number.NaN }), /reconnectSpreadMs/, 'a NaN reconnectSpreadMs throws, naming the option')
    })
  })
})

/**
 * The Next.js recipe (examples/runtimes/next-events.ts and next-route.ts):
 * Next.js itself does not run here, so the route module is loaded as Next.js
 * loads it and its `GET` is called with real `Request`s, the way Next.js
 * calls a route handler; the body is read, and cancelled, as Next.js does
 * when the client leaves. It imports `patchwire` (the built package), as the
 * recipe does, so `publish` reaches the same default broker.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatPatch, publish } from 'patchwire'
import { events } from '../examples/runtimes/next-events.ts'
import * as route from '../examples/runtimes/next-route.ts'
import { SseBody } from './fixtures/runtimes/sse-body.ts'

const ORIGIN = 'http://localhost:3000'

async function open(query: string, headers: Record<string, string> = {}): Promise<SseBody> {
  const response = await route.GET(new Request(`${ORIGIN}/events?${query}`, { headers }))
  if (response.status !== 200) assert.fail(`the stream did not open: ${response.status} ${await response.text()}`)
  const body = new SseBody(response)
  await body.waitForReady()
  return body
}

describe('Next.js route handler (examples/runtimes/next-route.ts)', () => {
  it('exports only what a Next.js route file may: GET, and dynamic = force-dynamic', () => {
    assert.deepEqual(Object.keys(route).sort(), ['GET', 'dynamic'], 'the route module exports GET and dynamic only')
    assert.equal(route.dynamic, 'force-dynamic', 'dynamic is force-dynamic')
  })

  it('answers GET with the stream headers, then each patch byte for byte', async () => {
    const body = await open('topic=board:next')
    assert.equal(body.response.headers.get('content-type'), 'text/event-stream', 'content-type is text/event-stream')
    assert.equal(body.response.headers.get('cache-control'), 'no-cache, no-transform', 'cache-control forbids caching and transforms')
    assert.equal(body.response.headers.get('x-accel-buffering'), 'no', 'x-accel-buffering turns off proxy buffering')
    const id = await publish('board:next', [['replace', '/title', 'live']])
    await body.waitFor(() => body.named('patch').length === 1, 'the patch')
    assert.ok(body.text.endsWith(formatPatch([['replace', '/title', 'live']], id)), body.text)
    await body.cancel()
    assert.equal(events.stats().connections, 0, 'the cancelled stream is forgotten')
  })

  it('refuses with the handler\'s status codes', async () => {
    const missing = await route.GET(new Request(`${ORIGIN}/events`))
    assert.equal(missing.status, 400, 'a request without topic is refused with 400')
    const foreign = await route.GET(new Request(`${ORIGIN}/events?topic=other:x`))
    assert.equal(foreign.status, 403, 'a topic outside the prefix is refused with 403')
    assert.equal(events.stats().connections, 0, 'no stream opened by a refusal')
  })

  it('forgets a client that leaves (its body is cancelled), without any publish', async () => {
    const one = await open('topic=board:next&topic=board:other')
    const two = await open('topic=board:next')
    assert.equal(events.stats().connections, 2, 'two streams open')
    await one.cancel()
    await two.cancel()
    assert.equal(events.stats().connections, 0, 'both cancelled streams forgotten')
  })

  it('resumes exactly after Last-Event-ID', async () => {
    const seen = await publish('board:resume', [['replace', '/n', 1]])
    const missed = await publish('board:resume', [['replace', '/n', 2]])
    const body = await open('topic=board:resume', { 'Last-Event-ID': seen })
    const retry = /^retry: \d+\n\n/.exec(body.text)?.[0] ?? assert.fail(`no retry: ${body.text}`)
    assert.equal(body.text, retry + formatPatch([['replace', '/n', 2]], missed) + `id: ${missed}\nevent: ready\ndata: ${missed}\n\n`, 'the header position replays the missed patch, then ready')
    await body.cancel()
  })

  it('ends every stream on events.close(), as a shutdown hook would call it', async () => {
    const body = await open('topic=board:next')
    await events.close({ reconnectSpreadMs: 0 })
    await body.waitForEnd()
    assert.equal(body.ended, true, 'the stream ended on events.close()')
    assert.ok(body.text.endsWith('retry: 3000\n\n'), `the stream ends with its retry: ${JSON.stringify(body.text.slice(-40))}`)
    assert.equal((await route.GET(new Request(`${ORIGIN}/events?topic=board:next`))).status, 503, 'a request after close() is answered 503')
  })
})

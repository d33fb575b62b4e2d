/**
 * The same handler on `node:http2` (h2c, no TLS) through the compatibility
 * API, with a real `node:http2` client. The TLS server with `allowHTTP1` is
 * covered with issue 7.
 */
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { createBroker, createHandler, formatPatch, publish, type Broker, type Handler, type HandlerOptions, type PatchOp } from '../src/index.ts'
import { streamCounts, until } from './helpers/server.ts'

interface H2Server {
  handler: Handler
  broker: Broker
  session: http2.ClientHttp2Session
}

/**
 * An h2c server around a handler and a connected client session; all closed after the test.
 * @param before - runs on each request before the handler, as a middleware would
 */
async function startH2(t: TestContext, options: HandlerOptions = {}, before?: (res: http2.Http2ServerResponse) => void): Promise<H2Server> {
  const broker = createBroker()
  const handler = createHandler({ broker, ...options })
  const server = http2.createServer((req, res) => {
    before?.(res)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  t.after(async () => {
    await handler.close()
    session.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { handler, broker, session }
}

interface H2Stream {
  stream: http2.ClientHttp2Stream
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader
  body: () => string
  events: EventSourceMessage[]
  retries: number[]
  ended: () => boolean
}

/** Requests `path` and resolves once the response headers are in. */
async function request(session: http2.ClientHttp2Session, path: string, method = 'GET'): Promise<H2Stream> {
  const stream = session.request({ ':method': method, ':path': path })
  stream.setEncoding('utf8')
  let body = ''
  let ended = false
  const events: EventSourceMessage[] = []
  const retries: number[] = []
  const parser = createParser({ onEvent: (event) => events.push(event), onRetry: (ms) => retries.push(ms) })
  stream.on('data', (chunk: string) => {
    body += chunk
    parser.feed(chunk)
  })
  stream.on('end', () => (ended = true))
  stream.on('close', () => (ended = true))
  stream.on('error', () => {})
  if (method !== 'GET') stream.end()
  const headers = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
    stream.once('response', resolve)
    stream.once('error', reject)
  })
  return { stream, headers, body: () => body, events, retries, ended: () => ended }
}

describe('createHandler on node:http2 (h2c)', () => {
  it('opens a stream with the SSE headers, no connection header, then retry and ready', async (t) => {
    const { handler, session } = await startH2(t, { retryMs: 2500 })
    const res = await request(session, '/?topic=a')
    assert.equal(res.headers[':status'], 200, 'status 200')
    assert.equal(res.headers['content-type'], 'text/event-stream', 'content-type is text/event-stream')
    assert.equal(res.headers['cache-control'], 'no-cache, no-transform', 'cache-control forbids caching and transforms')
    assert.equal(res.headers['x-accel-buffering'], 'no', 'x-accel-buffering turns off proxy buffering')
    assert.equal(res.headers['connection'], undefined, 'no connection header on HTTP/2')
    assert.equal(res.headers['transfer-encoding'], undefined, 'no transfer-encoding on HTTP/2')
    assert.equal(res.headers['content-length'], undefined, 'no content-length on a stream')
    await until(() => res.events.some((e) => e.event === 'ready'), 3000, 'the ready frame')
    assert.match(res.body(), /^retry: \d+\n\n/, `the body starts with a retry hint: ${JSON.stringify(res.body())}`)
    assert.equal(res.retries.length, 1, `one retry hint: ${JSON.stringify(res.retries)}`)
    const [retry = 0] = res.retries
    assert.ok(retry >= 1875 && retry <= 3125, `retry ${retry} spread within ±25 % of 2500`)
    assert.equal(handler.stats().connections, 1, 'one stream counted')
  })

  it('delivers a publish as the exact formatPatch bytes, to every h2 stream of the topic only', async (t) => {
    const { broker, session } = await startH2(t)
    const a1 = await request(session, '/?topic=a')
    const a2 = await request(session, '/?topic=a')
    const b = await request(session, '/?topic=b')
    for (const s of [a1, a2, b]) await until(() => s.events.length === 1, 3000, 'ready')
    const ops: PatchOp[] = [['replace', '/msg', 'héllo\nworld']]
    await publish(broker, 'a', ops)
    for (const s of [a1, a2]) await until(() => s.events.length === 2, 3000, 'the patch')
    const patch = a1.events[1]
    assert.equal(patch?.event, 'patch', 'the frame after ready is the patch')
    assert.deepEqual(JSON.parse(patch?.data ?? ''), ops, 'the patch data parses back to the ops')
    assert.ok(patch?.id, `the patch has an id: ${JSON.stringify(patch)}`)
    assert.ok(a1.body().endsWith(formatPatch(ops, patch.id)), `the first stream ends with the patch frame: ${JSON.stringify(a1.body().slice(-200))}`)
    assert.ok(a2.body().endsWith(formatPatch(ops, patch.id)), `the second stream ends with the same patch frame: ${JSON.stringify(a2.body().slice(-200))}`)
    // b's own patch comes after anything wrongly sent to it before.
    await publish(broker, 'b', [['add', '/b', 1]])
    await until(() => b.events.length >= 2, 3000, 'the patch on b')
    assert.deepEqual(b.events.slice(1).map((e) => JSON.parse(e.data)), [[['add', '/b', 1]]], 'the other topic got only its own patch')
  })

  it('forgets a stream the client closes, while the session stays open', async (t) => {
    const { handler, session } = await startH2(t, { lingerMs: 0 })
    const one = await request(session, '/?topic=a')
    const two = await request(session, '/?topic=a')
    await until(() => handler.stats().connections === 2, 3000, 'two streams')
    one.stream.close(http2.constants.NGHTTP2_CANCEL)
    await until(() => handler.stats().connections === 1, 3000, 'the closed stream to be forgotten')
    assert.equal(handler.stats().topics, 1, 'the topic stays while one stream of it is open')
    two.stream.close(http2.constants.NGHTTP2_CANCEL)
    await until(() => handler.stats().connections === 0, 3000, 'the last stream to be forgotten')
    assert.equal(handler.stats().topics, 0, 'the topic is let go with its last stream')
    assert.equal(session.closed, false, 'the session stays open when its streams close')
  })

  it('forgets every stream when the whole session goes away', async (t) => {
    const { handler, session } = await startH2(t)
    await request(session, '/?topic=a')
    await request(session, '/?topic=b')
    await until(() => handler.stats().connections === 2, 3000, 'two streams')
    session.destroy()
    await until(() => handler.stats().connections === 0, 3000, 'the streams to be forgotten')
  })

  it('close() ends the h2 streams and later requests get 503', async (t) => {
    const { handler, session } = await startH2(t)
    const one = await request(session, '/?topic=a')
    const two = await request(session, '/?topic=b')
    await until(() => handler.stats().connections === 2, 3000, 'two streams')
    await handler.close()
    await until(() => one.ended() && two.ended(), 3000, 'the streams to end')
    assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'no stream or topic left after close()')
    const late = await request(session, '/?topic=a')
    assert.equal(late.headers[':status'], 503, 'a request after close() is answered 503')
    assert.match(String(late.headers['content-type']), /^text\/plain/, 'the 503 is plain text')
  })

  it('leaves out headers set earlier that would break the stream, and keeps the others', async (t) => {
    const { broker, session } = await startH2(t, {}, (res) => {
      res.setHeader('Content-Length', '10')
      res.setHeader('Content-Encoding', 'gzip')
      res.setHeader('Access-Control-Allow-Origin', '*')
    })
    const res = await request(session, '/?topic=a')
    assert.equal(res.headers[':status'], 200, 'the stream opens with 200')
    assert.equal(res.headers['content-length'], undefined, 'a content-length set earlier is left out')
    assert.equal(res.headers['content-encoding'], undefined, 'a content-encoding set earlier is left out')
    assert.equal(res.headers['access-control-allow-origin'], '*', 'a CORS header set earlier is kept')
    await until(() => res.events.length === 1, 3000, 'the ready frame')
    await publish(broker, 'a', [['add', '/x', 1]])
    await until(() => res.events.length === 2, 3000, 'the patch')
    assert.equal(res.ended(), false, 'the stream stays open after the patch')
  })

  it('forgets a stream whose client left while authorize was pending', async (t) => {
    let allow!: (allowed: boolean) => void
    let requestStream: http2.ServerHttp2Stream | undefined
    const { handler, session } = await startH2(t, {
      authorize: (req) => {
        requestStream = (req as http2.Http2ServerRequest).stream
        return new Promise<boolean>((resolve) => (allow = resolve))
      },
    })
    const res = session.request({ ':path': '/?topic=a' })
    res.on('error', () => {})
    await until(() => requestStream !== undefined, 3000, 'authorize to be asked')
    res.close(http2.constants.NGHTTP2_CANCEL)
    await until(() => requestStream?.destroyed === true, 3000, 'the server to see the cancel')
    allow(true)
    // The handler's continuation runs in the microtasks before this.
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'nothing open for the client that left')
  })

  it('forgets a stream whose client left while the broker subscription was not live yet', async (t) => {
    const inner = createBroker()
    let live!: () => void
    const broker: Broker = {
      publish: (topic, payload) => inner.publish(topic, payload),
      subscribe(topic, listener) {
        const off = inner.subscribe(topic, listener)
        return Object.assign(off, { ready: new Promise<void>((resolve) => (live = resolve)) })
      },
    }
    let requestStream: http2.ServerHttp2Stream | undefined
    const { handler, session } = await startH2(t, {
      broker,
      lingerMs: 0,
      authorize: (req) => {
        requestStream = (req as http2.Http2ServerRequest).stream
        return true
      },
    })
    const res = session.request({ ':path': '/?topic=a' })
    res.on('error', () => {})
    await until(() => requestStream !== undefined, 3000, 'the request to wait for the subscription')
    res.close(http2.constants.NGHTTP2_CANCEL)
    await until(() => requestStream?.destroyed === true, 3000, 'the server to see the cancel')
    live()
    await until(() => handler.stats().topics === 0, 3000, 'the topic to be let go')
    assert.equal(handler.stats().connections, 0, 'no stream for the client that left')
  })

  it('close() ends a stream whose reader stalled', async (t) => {
    const { handler, broker, session } = await startH2(t)
    const res = await request(session, '/?topic=a')
    await until(() => res.events.length === 1, 3000, 'the ready frame')
    res.stream.pause()
    // Far beyond the flow-control window: the rest waits in the server's stream.
    await publish(broker, 'a', [['replace', '/blob', 'w'.repeat(4 * 1024 * 1024)]])
    await handler.close()
    // The client has not read what it holds, so it emits no 'close' yet; the stream is closed all the same.
    await until(() => res.stream.closed, 3000, 'the stalled stream to be closed')
    assert.equal(handler.stats().connections, 0, 'the stalled stream is gone after close()')
  })

  it('refuses over h2 like over HTTP/1', async (t) => {
    const { handler, session } = await startH2(t, { topicPrefix: 'p:' })
    const cases: [string, string, number][] = [
      ['GET', '/?topic=', 400],
      ['GET', '/?topic=%zz', 400],
      ['GET', `/?topic=p:${'a'.repeat(300)}`, 414],
      ['GET', '/?topic=q:1', 403],
      ['POST', '/?topic=p:1', 405],
    ]
    for (const [method, path, status] of cases) {
      const res = await request(session, path, method)
      assert.equal(res.headers[':status'], status, `${method} ${path}`)
      assert.match(String(res.headers['content-type']), /^text\/plain/, `the ${status} to ${method} ${path} is plain text`)
      if (status === 405) assert.equal(res.headers['allow'], 'GET', 'the 405 answer says GET is allowed')
      await until(res.ended, 3000, `the ${status} body to end`)
    }
    assert.equal(handler.stats().connections, 0, 'no stream opened by a refusal')
  })
})

/**
 * The Node recipes of docs/runtimes.md, one per stack, against the real
 * servers and frameworks: each opens a stream, gets a publish, and leaves
 * nothing behind once the client disconnects. Each recipe is written here
 * exactly as the guide shows it.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import tls from 'node:tls'
import { promisify } from 'node:util'
import compression from 'compression'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import { createBroker, createHandler, publish, type Broker, type Handler } from '../src/index.ts'
import { streamCounts, listen, until } from './helpers/server.ts'
import { openStream, SseClient } from './helpers/sse-client.ts'

const TIMEOUT = { timeout: 15_000 }
/** How long a clean-up may take before it fails (see {@link bounded}). */
const CLEANUP_MS = 5000
const OPS = [['replace', '/counter', 7]] as const

/** What a test needs of an open stream, whatever carries it. */
interface OpenStream {
  status: number
  headers: Record<string, string | string[] | undefined>
  named(type: string): EventSourceMessage[]
  destroy(): void
}

/**
 * What every recipe must do: answer with an event stream, deliver a publish,
 * and let go of the stream and its topic as soon as the client disconnects.
 * The handlers use `lingerMs: 0` so that the topic goes with its last stream.
 */
async function assertRoundTrip(handler: Handler, broker: Broker, stream: OpenStream, topic: string): Promise<void> {
  assert.equal(stream.status, 200, 'the stream answers 200')
  assert.equal(stream.headers['content-type'], 'text/event-stream', 'content-type is text/event-stream')
  assert.equal(stream.headers['cache-control'], 'no-cache, no-transform', 'cache-control forbids caching and transforms')
  assert.equal(stream.named('ready').length, 1, 'one ready event on open')
  assert.deepEqual(streamCounts(handler.stats()), { connections: 1, topics: 1, dropped: 0 }, 'one stream on one topic')

  await publish(broker, topic, OPS)
  await until(() => stream.named('patch').length === 1, 5000, 'the published patch')
  assert.deepEqual(JSON.parse(stream.named('patch')[0]?.data ?? ''), OPS, 'the published patch arrives intact')

  stream.destroy()
  await until(() => handler.stats().connections === 0 && handler.stats().topics === 0, 5000, 'the handler to forget the stream and its topic')
}

/** An {@link OpenStream} over the raw HTTP/1.1 client. */
function raw(client: SseClient): OpenStream {
  const response = client.response
  assert.ok(response, `no response head: ${JSON.stringify(client.raw)}`)
  return { status: response.status, headers: response.headers, named: (type) => client.named(type), destroy: () => client.destroy() }
}

/** An `authorize` verdict that takes a while, as a database lookup would. */
function slowly(allowed: boolean): Promise<boolean> {
  return new Promise((resolve) => setTimeout(resolve, 30, allowed))
}

/** Sends one plain request and reads the whole answer. */
async function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, { headers }, resolve).on('error', reject))
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  return { status: res.statusCode ?? 0, headers: res.headers, body }
}

describe('recipes', () => {
  describe('node:http', () => {
    it('serves the stream and hands other requests to the app', TIMEOUT, async (t) => {
      const broker = createBroker()
      // Recipe: node:http
      const events = createHandler({ broker, path: '/events', lingerMs: 0 })
      const app = (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('app')
      const server = http.createServer((req, res) => events(req, res, () => app(req, res)))
      const { port, origin } = await listen(t, server, events)

      assert.equal((await get(`${origin}/page`)).body, 'app', 'another path goes to the app')
      const client = await openStream(t, port, 'room', [], '/events')
      await assertRoundTrip(events, broker, raw(client), 'room')
    })

    it('shuts down: events.close() ends the streams, so server.close() can finish', TIMEOUT, async (t) => {
      const events = createHandler({ path: '/events' })
      const server = http.createServer((req, res) => events(req, res, () => res.end('app')))
      const { port } = await listen(t, server, events)
      const client = await openStream(t, port, 'room', [], '/events')

      await events.close()
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
      await client.waitForClose()
    })
  })

  describe('node:https', () => {
    it('serves the stream over TLS', TIMEOUT, async (t) => {
      const broker = createBroker()
      const { key, cert } = certificate()
      // Recipe: node:https
      const events = createHandler({ broker, path: '/events', lingerMs: 0 })
      const server = https.createServer({ key, cert }, (req, res) => events(req, res, () => res.end('app')))
      const port = await serve(t, server, events)

      const client = await openTls(t, port, '/events?topic=room')
      assert.equal(client.socket instanceof tls.TLSSocket && client.socket.encrypted, true, 'the stream runs over an encrypted TLS socket')
      assert.match(client.raw, /^HTTP\/1\.1 200 /, `the stream is answered 200 over HTTP/1.1: ${JSON.stringify(client.raw.slice(0, 100))}`)
      await assertRoundTrip(events, broker, raw(client), 'room')
    })
  })

  describe('node:http2 over TLS, allowHTTP1', () => {
    /** Recipe: node:http2 */
    function h2Server(broker: Broker) {
      const { key, cert } = certificate()
      const events = createHandler({ broker, path: '/events', lingerMs: 0 })
      const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, (req, res) => {
        events(req, res, () => res.writeHead(404).end())
      })
      return { events, server }
    }

    it('carries more than 6 streams from one origin on a single HTTP/2 session', TIMEOUT, async (t) => {
      const broker = createBroker()
      const { events, server } = h2Server(broker)
      const sessions: http2.ServerHttp2Session[] = []
      server.on('session', (session) => sessions.push(session))
      const port = await serve(t, server, events)

      const session = http2.connect(`https://127.0.0.1:${port}`, { ca: certificate().cert })
      session.on('error', () => {})
      t.after(() => session.destroy())
      const streams = Array.from({ length: 10 }, () => new H2Stream(session, '/events?topic=room'))
      await until(() => streams.every((s) => s.named('ready').length === 1), 5000, 'all 10 streams to open')
      assert.equal(sessions.length, 1, 'one connection carries every stream')
      assert.equal(session.alpnProtocol, 'h2', 'the session negotiated h2')
      assert.deepEqual(streamCounts(events.stats()), { connections: 10, topics: 1, dropped: 0 }, 'ten streams on one topic')
      for (const stream of streams) {
        assert.equal(stream.status, 200, 'each HTTP/2 stream answers 200')
        assert.equal(stream.headers['content-type'], 'text/event-stream', 'each HTTP/2 stream is text/event-stream')
        assert.equal(stream.headers['connection'], undefined, 'no connection-specific header on HTTP/2')
      }

      await publish(broker, 'room', OPS)
      await until(() => streams.every((s) => s.named('patch').length === 1), 5000, 'every stream to get the patch')

      // Cancelling a stream (RST_STREAM) is a disconnect of that stream only.
      const [cancelled, kept] = [streams.slice(0, 4), streams.slice(4)]
      for (const stream of cancelled) stream.destroy()
      await until(() => events.stats().connections === 6, 5000, 'the cancelled streams to be forgotten')
      await publish(broker, 'room', OPS)
      await until(() => kept.every((s) => s.named('patch').length === 2), 5000, 'the other streams to get the next patch')
      assert.ok(cancelled.every((s) => s.named('patch').length === 1), 'the cancelled streams got the first patch only')

      // Closing the connection forgets every stream it carried.
      session.destroy()
      await until(() => events.stats().connections === 0 && events.stats().topics === 0, 5000, 'the session\'s streams to be forgotten')

      // And one stream on a fresh session makes the same round trip as every other recipe.
      const last = http2.connect(`https://127.0.0.1:${port}`, { ca: certificate().cert })
      last.on('error', () => {})
      t.after(() => last.destroy())
      const stream = new H2Stream(last, '/events?topic=solo')
      await until(() => stream.named('ready').length === 1, 5000, 'the stream to open')
      await assertRoundTrip(events, broker, stream, 'solo')
    })

    it('serves an HTTP/1.1 client on the same port', TIMEOUT, async (t) => {
      const broker = createBroker()
      const { events, server } = h2Server(broker)
      const port = await serve(t, server, events)

      const client = await openTls(t, port, '/events?topic=room', ['http/1.1'])
      assert.equal((client.socket as tls.TLSSocket).alpnProtocol, 'http/1.1', 'the HTTP/1.1 client negotiated http/1.1')
      assert.match(client.raw, /^HTTP\/1\.1 200 /, `the stream is answered 200 over HTTP/1.1: ${JSON.stringify(client.raw.slice(0, 100))}`)
      assert.equal(client.response?.headers['connection'], 'close', 'the HTTP/1.1 stream is close-delimited')
      await assertRoundTrip(events, broker, raw(client), 'room')
    })
  })

  describe('Express 5', () => {
    it('serves app.get(path, handler), keeping the headers Express set', TIMEOUT, async (t) => {
      const broker = createBroker()
      // Recipe: Express, app.get
      const events = createHandler({ broker, lingerMs: 0 })
      const app = express()
      app.get('/events', events)
      app.get('/', (_req, res) => {
        res.send('home')
      })
      const { port, origin } = await listen(t, http.createServer(app), events)

      assert.equal((await get(origin)).body, 'home', 'the app\'s own route answers')
      const refused = await get(`${origin}/events`)
      assert.equal(refused.status, 400, 'a stream request without topic is refused with 400')
      assert.match(refused.body, /Missing "topic"/, 'the 400 says the topic is missing')

      const client = await openStream(t, port, 'room', [], '/events')
      assert.equal(client.response?.headers['x-powered-by'], 'Express', 'the header Express set is kept on the stream')
      await assertRoundTrip(events, broker, raw(client), 'room')
    })

    it('serves app.use(handler) with the path option, passing other requests on', TIMEOUT, async (t) => {
      const broker = createBroker()
      // Recipe: Express, app.use
      const events = createHandler({ broker, path: '/events', lingerMs: 0 })
      const app = express()
      app.use(events)
      app.get('/', (_req, res) => {
        res.send('home')
      })
      const { port, origin } = await listen(t, http.createServer(app), events)

      assert.equal((await get(origin)).body, 'home', 'the app\'s own route answers')
      const missing = await get(`${origin}/nowhere`)
      assert.equal(missing.status, 404, 'an unknown path falls through to Express\'s 404')
      assert.match(missing.body, /Cannot GET \/nowhere/, 'Express\'s own 404: the handler called next()')

      const client = await openStream(t, port, 'room', [], '/events')
      await assertRoundTrip(events, broker, raw(client), 'room')
    })

    it('matches path relative to the mount point under app.use(prefix, handler)', TIMEOUT, async (t) => {
      const broker = createBroker()
      const events = createHandler({ broker, path: '/events', lingerMs: 0 })
      const app = express()
      app.use('/api', events)
      const { port, origin } = await listen(t, http.createServer(app), events)

      assert.match((await get(`${origin}/events?topic=room`)).body, /Cannot GET/, 'outside the mount point')
      const client = await openStream(t, port, 'room', [], '/api/events')
      await assertRoundTrip(events, broker, raw(client), 'room')
    })

    it('streams through compression() uncompressed, every frame at once', TIMEOUT, async (t) => {
      const broker = createBroker()
      const events = createHandler({ broker, path: '/events', lingerMs: 0 })
      const app = express()
      app.use(compression())
      app.use(events)
      // The control: compression() does gzip an event stream that lacks
      // `Cache-Control: no-transform`, and would hold its frames back.
      app.get('/unmarked', (_req, res) => {
        res.setHeader('Content-Type', 'text/event-stream')
        res.end(`data: ${'x'.repeat(2048)}\n\n`)
      })
      const { port, origin } = await listen(t, http.createServer(app), events)

      const unmarked = await get(`${origin}/unmarked`, { 'accept-encoding': 'gzip' })
      assert.equal(unmarked.headers['content-encoding'], 'gzip', 'the control: compression() gzips an event stream without no-transform')

      const client = await openStream(t, port, 'room', ['Accept-Encoding: gzip, deflate, br'], '/events')
      assert.equal(client.response?.headers['content-encoding'], undefined, 'the stream is not compressed')
      // Each small frame must arrive on its own: a compressor would hold
      // these few hundred bytes until about 16 KiB had gathered.
      for (let n = 1; n <= 3; n++) {
        await publish(broker, 'room', [['replace', '/counter', n]])
        await until(() => client.named('patch').length === n, 2000, `patch ${n} to arrive uncompressed`)
      }
      assert.ok(Buffer.byteLength(client.raw) < 1024, 'every frame was well below compression\'s 1 KiB threshold')
      assert.match(client.response?.body ?? '', /data: \[\["replace","\/counter",3\]\]\n\n$/, `the last frame arrived whole: ${JSON.stringify(client.response?.body)}`)

      client.destroy()
      await until(() => events.stats().connections === 0 && events.stats().topics === 0, 5000, 'the handler to forget the stream')
    })
  })

  describe('Fastify 5', () => {
    /** Recipe: Fastify, with a slow `authorize` so that the route's promise settles before any answer. */
    async function fastifyApp(t: TestContext, broker: Broker) {
      const logs: string[] = []
      const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => logs.push(line) } } })
      const events = createHandler({ broker, lingerMs: 0, authorize: (_req, topic) => slowly(topic !== 'secret') })
      app.get('/events', async (request, reply) => {
        // Fastify must not answer when this promise settles: the handler owns the response.
        reply.hijack()
        events(request.raw, reply.raw)
      })
      app.addHook('preClose', () => events.close())
      app.get('/', async () => 'home')
      await app.listen({ port: 0, host: '127.0.0.1' })
      t.after(() => bounded('app.close()', app.close(), () => app.server.closeAllConnections()))
      const { port } = app.server.address() as AddressInfo
      return { app, events, logs, port, origin: `http://127.0.0.1:${port}` }
    }

    it('serves a hijacked reply, and Fastify sends nothing of its own', TIMEOUT, async (t) => {
      const broker = createBroker()
      const { events, logs, port, origin } = await fastifyApp(t, broker)

      assert.equal((await get(origin)).body, 'home', 'the app\'s own route answers')
      const missing = await get(`${origin}/events`)
      assert.equal(missing.status, 400, 'a stream request without topic is refused with 400')
      assert.match(missing.body, /^Missing "topic"/, 'the 400 says the topic is missing')
      const forbidden = await get(`${origin}/events?topic=secret`)
      assert.equal(forbidden.status, 403, 'a topic authorize refuses gets 403')
      assert.equal(forbidden.body, 'Forbidden: the handler\'s authorize option did not return true for every topic of this stream', 'the 403 body is the handler\'s own')

      const client = await openStream(t, port, 'room', [], '/events')
      await assertRoundTrip(events, broker, raw(client), 'room')
      // A second reply, or a route promise that settled without one, would be logged at warn or error.
      assert.deepEqual(logs, [], `Fastify logged nothing at warn or above: ${logs.join('')}`)
    })

    it('closes: the preClose hook ends the streams, so app.close() finishes', TIMEOUT, async (t) => {
      const { app, port, logs } = await fastifyApp(t, createBroker())
      const client = await openStream(t, port, 'room', [], '/events')
      await app.close()
      await client.waitForClose()
      assert.deepEqual(logs, [], `Fastify logged nothing at warn or above: ${logs.join('')}`)
    })
  })

  describe('Koa 3', () => {
    /** Recipe: Koa */
    function koaApp(broker: Broker, authorize?: (req: unknown, topic: string) => Promise<boolean>) {
      const events = createHandler({ broker, lingerMs: 0, ...(authorize ? { authorize } : {}) })
      const app = new Koa()
      app.use(async (ctx, next) => {
        if (ctx.path !== '/events') return next()
        // Koa must not answer: it would end the response with its default 404.
        ctx.respond = false
        events(ctx.req, ctx.res)
      })
      app.use((ctx) => {
        ctx.body = 'home'
      })
      return { app, events }
    }

    it('serves the stream with ctx.respond = false', TIMEOUT, async (t) => {
      const broker = createBroker()
      const { app, events } = koaApp(broker)
      const errors: unknown[] = []
      app.on('error', (error) => errors.push(error))
      const { port, origin } = await listen(t, http.createServer(app.callback()), events)

      assert.equal((await get(origin)).body, 'home', 'the app\'s own route answers')
      const refused = await get(`${origin}/events`)
      assert.equal(refused.status, 400, 'a stream request without topic is refused with 400')
      assert.match(refused.body, /^Missing "topic"/, 'the 400 says the topic is missing')

      const client = await openStream(t, port, 'room', [], '/events')
      await assertRoundTrip(events, broker, raw(client), 'room')
      assert.deepEqual(errors, [], `Koa reported no error: ${errors.map(String).join('; ')}`)
    })

    it('waits for an async authorize: Koa answers nothing in the meantime', TIMEOUT, async (t) => {
      const broker = createBroker()
      const { app, events } = koaApp(broker, (_req, topic) => slowly(topic === 'room'))
      const { port, origin } = await listen(t, http.createServer(app.callback()), events)

      const refused = await get(`${origin}/events?topic=secret`)
      assert.equal(refused.status, 403, 'a topic authorize refuses gets 403')
      assert.equal(refused.body, 'Forbidden: the handler\'s authorize option did not return true for every topic of this stream', 'the 403 body is the handler\'s own')

      const client = await openStream(t, port, 'room', [], '/events')
      await assertRoundTrip(events, broker, raw(client), 'room')
    })
  })
})

// ---------------------------------------------------------------------------
// TLS: one self-signed certificate for 127.0.0.1, made by the openssl CLI.

let tlsFiles: { key: string; cert: string } | undefined
let tlsDir: string | undefined

before(async () => {
  tlsDir = await mkdtemp(path.join(os.tmpdir(), 'patchwire-tls-'))
  const key = path.join(tlsDir, 'key.pem')
  const cert = path.join(tlsDir, 'cert.pem')
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ])
  } catch (error) {
    throw new Error('the TLS recipes need the openssl CLI on PATH to make a self-signed certificate', { cause: error })
  }
  tlsFiles = { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') }
})

after(async () => {
  if (tlsDir !== undefined) await rm(tlsDir, { recursive: true, force: true })
})

function certificate(): { key: string; cert: string } {
  assert.ok(tlsFiles, 'the certificate is made before the tests')
  return tlsFiles
}

/** Listens on 127.0.0.1:0; after the test, closes the handler, every connection and the server. */
async function serve(t: TestContext, server: tls.Server, events: Handler): Promise<number> {
  const sockets = new Set<tls.TLSSocket>()
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const dropAll = (): void => {
    for (const socket of sockets) socket.destroy()
  }
  const close = async (): Promise<void> => {
    await events.close()
    dropAll()
    await new Promise((resolve) => server.close(resolve))
  }
  t.after(() => bounded('closing the handler and the server', close(), () => {
    dropAll()
    server.close()
  }))
  return (server.address() as AddressInfo).port
}

/**
 * Bounds a clean-up: `t.after` hooks have no time limit, so one that never
 * settles (a server that waits for a stream nothing ended) would hang the run
 * instead of failing it. Past {@link CLEANUP_MS}, `force` cuts what the
 * clean-up waits for, so that the process can still exit, and the clean-up
 * fails with an error that names it.
 */
async function bounded(what: string, cleanUp: Promise<unknown>, force: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      force()
      reject(new Error(`clean-up: ${what} did not finish within ${CLEANUP_MS} ms`))
    }, CLEANUP_MS)
  })
  try {
    await Promise.race([cleanUp, timedOut])
  } finally {
    clearTimeout(timer)
  }
}

/** The raw HTTP/1.1 client over TLS; resolves once the stream is ready or refused. */
async function openTls(t: TestContext, port: number, target: string, ALPNProtocols?: string[]): Promise<SseClient> {
  const socket = tls.connect({ port, host: '127.0.0.1', ca: certificate().cert, ...(ALPNProtocols ? { ALPNProtocols } : {}) })
  t.after(() => socket.destroy())
  const client = new SseClient(socket)
  await once(socket, 'secureConnect')
  socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
  await until(() => client.named('ready').length > 0 || client.closed, 5000, `the stream to be ready: ${JSON.stringify(client.raw)}`)
  return client
}

/** One SSE request on an HTTP/2 session, parsed with eventsource-parser. */
class H2Stream implements OpenStream {
  status = 0
  headers: http2.IncomingHttpHeaders = {}
  readonly events: EventSourceMessage[] = []
  readonly #request: http2.ClientHttp2Stream

  constructor(session: http2.ClientHttp2Session, target: string) {
    const parser = createParser({ onEvent: (event) => this.events.push(event) })
    this.#request = session.request({ ':path': target })
    this.#request.setEncoding('utf8')
    this.#request.on('response', (headers) => {
      this.status = Number(headers[':status'])
      this.headers = headers
    })
    this.#request.on('data', (chunk: string) => parser.feed(chunk))
    this.#request.on('error', () => {})
  }

  named(type: string): EventSourceMessage[] {
    return this.events.filter((event) => (event.event ?? 'message') === type)
  }

  /** Cancels this stream only (RST_STREAM); the session stays up. */
  destroy(): void {
    this.#request.close(http2.constants.NGHTTP2_CANCEL)
  }
}

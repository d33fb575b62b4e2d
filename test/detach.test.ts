/**
 * src/http/detach.ts: an HTTP/1 stream's socket is detached from node:http
 * once its head is out. Every behaviour a stream relies on is checked on
 * both paths, detached and left on node:http (the fallback, forced with
 * `setDetaching(false)`), over real sockets, plain and TLS; and the cases
 * where detaching must not happen fall back by themselves.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import net, { type Socket } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, beforeEach, describe, it, type TestContext } from 'node:test'
import tls from 'node:tls'
import { promisify } from 'node:util'
import { setDetaching } from '../src/http/detach.ts'
import { createBroker, createHandler, publish, type Broker, type Handler, type HandlerOptions } from '../src/index.ts'
import { listen, until } from './helpers/server.ts'
import { openStream, SseClient } from './helpers/sse-client.ts'

// Every test starts on the default path; the fallback's describe turns it off for its own.
beforeEach(() => setDetaching(true))
after(() => setDetaching(true))

/** A server-side socket as node:http leaves it: its parser, while it has one. */
type ServerSocket = Socket & { parser?: unknown }

interface Setup {
  readonly broker: Broker
  readonly handler: Handler
  readonly server: http.Server
  readonly port: number
  /** The server side of every connection that reached the handler, in order. */
  readonly sockets: ServerSocket[]
}

/**
 * A handler on a node:http server; `around` runs before the handler, and
 * what it returns right after it.
 */
async function setup(t: TestContext, options: HandlerOptions = {}, around?: (req: http.IncomingMessage, res: http.ServerResponse) => (() => void) | void): Promise<Setup> {
  const broker = createBroker()
  const handler = createHandler({ broker, lingerMs: 0, ...options })
  const sockets: ServerSocket[] = []
  const server = http.createServer((req, res) => {
    sockets.push(req.socket)
    const then = around?.(req, res)
    handler(req, res)
    then?.()
  })
  const { port } = await listen(t, server, handler)
  return { broker, handler, server, port, sockets }
}

/** Whether a socket was detached from node:http: it has lost its parser, and has the detached stream's listener. */
function isDetached(socket: ServerSocket): boolean {
  return socket.parser === null && socket.listeners('close').some((listener) => listener.name === 'onDetachedClose')
}

/** Waits until the stream's socket is on the path under test: detached, or still on node:http. */
async function onPath(socket: ServerSocket | undefined, detached: boolean): Promise<void> {
  assert.ok(socket !== undefined, 'the server saw the connection')
  if (detached) await until(() => isDetached(socket), 3000, 'the socket to be detached from node:http')
  else assert.ok(socket.parser != null && !isDetached(socket), 'the socket is still on node:http, with its parser')
}

/** A publish reaches the client. */
async function roundTrip(broker: Broker, client: SseClient, topic: string): Promise<void> {
  const before = client.named('patch').length
  await publish(broker, topic, [['replace', '/n', before + 1]])
  await until(() => client.named('patch').length === before + 1, 3000, `the patch on ${topic}: ${JSON.stringify(client.raw.slice(-200))}`)
}

const PATHS = [
  { name: 'detached from node:http', detached: true },
  { name: 'left on node:http (the fallback)', detached: false },
] as const

for (const { name, detached } of PATHS) {
  describe(`node:http streams, ${name}`, () => {
    beforeEach(() => setDetaching(detached))

    it('delivers, and forgets a client that leaves at once', async (t) => {
      const { broker, handler, port, sockets } = await setup(t)
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      await roundTrip(broker, client, 'a')
      client.destroy()
      await until(() => handler.stats().connections === 0 && handler.stats().topics === 0, 3000, 'the stream to be forgotten')
    })

    it('a client that half-closes gets the connection ended, and is forgotten', async (t) => {
      const { handler, port, sockets } = await setup(t)
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      client.socket.end()
      await client.waitForClose(3000)
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
    })

    it('a stream opened after a refusal on the same keep-alive connection', async (t) => {
      const { broker, handler, port, sockets } = await setup(t)
      const client = new SseClient(await connected(port))
      t.after(() => client.destroy())
      client.socket.write('GET /?topic= HTTP/1.1\r\nHost: x\r\n\r\n')
      await until(() => client.raw.includes('Missing'), 3000, `the refusal: ${JSON.stringify(client.raw)}`)
      assert.match(client.raw, /^HTTP\/1\.1 400 /, 'the first request is refused')
      const refusal = client.raw.length
      client.socket.write('GET /?topic=a HTTP/1.1\r\nHost: x\r\n\r\n')
      await until(() => client.named('ready').length === 1, 3000, `the stream after the refusal: ${JSON.stringify(client.raw.slice(refusal))}`)
      assert.equal(sockets.length, 2, 'both requests on one connection')
      assert.equal(sockets[0], sockets[1], 'both requests on one connection')
      await onPath(sockets[1], detached)
      await roundTrip(broker, client, 'a')
      client.destroy()
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
    })

    it('heartbeats go on', async (t) => {
      const { port, sockets } = await setup(t, { heartbeatMs: 50 })
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      const seen = client.comments
      await until(() => client.comments >= seen + 2, 3000, 'two heartbeats after the stream was set on its path')
    })

    it('cuts a connection that pipelines a request behind its stream', async (t) => {
      const { handler, port, sockets } = await setup(t)
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      client.socket.write('GET /?topic=b HTTP/1.1\r\nHost: x\r\n\r\n')
      await client.waitForClose(3000)
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
      assert.doesNotMatch(client.response?.body ?? '', /HTTP\/1\.1/, 'no second response inside the stream')
    })

    it('cuts a connection that sends garbage, and writes no HTTP error into the stream', async (t) => {
      const { handler, port, sockets } = await setup(t)
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      client.socket.write('NOT HTTP AT ALL\r\n\r\n')
      await client.waitForClose(3000)
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
      assert.doesNotMatch(client.response?.body ?? '', /HTTP\/1\.1 4\d\d/, 'no error response inside the stream')
    })

    it('tolerates blank lines after the request, as the HTTP parser does', async (t) => {
      const { broker, port, sockets } = await setup(t)
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      client.socket.write('\r\n\r\n')
      await roundTrip(broker, client, 'a')
      assert.equal(client.closed, false, 'the stream is still open')
    })

    it('cuts a slow reader with the shared error, which a clientError listener sees once', async (t) => {
      const { broker, handler, server, port, sockets } = await setup(t, { maxBufferedBytes: 16 * 1024 })
      const seen: Error[] = []
      server.on('clientError', (error: Error, socket: Socket) => {
        seen.push(error)
        socket.destroy()
      })
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      client.socket.pause()
      for (let n = 0; n < 5000 && handler.stats().dropped === 0; n++) {
        await publish(broker, 'a', [['replace', '/n', n], ['replace', '/pad', 'p'.repeat(4096)]])
        if (n % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      assert.equal(handler.stats().dropped, 1, 'the slow reader was cut')
      await until(() => seen.length === 1, 3000, 'the clientError listener to see the cut')
      assert.match(seen[0]?.message ?? '', /slow reader/, 'the shared error')
    })

    it('handler.close() ends the stream, and server.close() then completes', async (t) => {
      const { handler, server, port, sockets } = await setup(t)
      const client = await openStream(t, port, 'a')
      await onPath(sockets[0], detached)
      let serverClosed = false
      server.close(() => (serverClosed = true))
      await handler.close()
      await client.waitForClose(3000)
      await until(() => serverClosed, 3000, 'server.close() to complete')
      assert.equal(handler.stats().connections, 0, 'no stream left')
    })

    it('server.closeAllConnections() ends the stream', async (t) => {
      const { handler, server, port, sockets } = await setup(t)
      const clients = [await openStream(t, port, 'a'), await openStream(t, port, 'b')]
      await onPath(sockets[0], detached)
      await onPath(sockets[1], detached)
      server.closeAllConnections()
      await Promise.all(clients.map((client) => client.waitForClose(3000)))
      await until(() => handler.stats().connections === 0, 3000, 'the streams to be forgotten')
    })

    it('over TLS (node:https): delivers, and forgets a client that leaves', async (t) => {
      const broker = createBroker()
      const handler = createHandler({ broker, lingerMs: 0 })
      const sockets: ServerSocket[] = []
      const server = https.createServer(certificate(), (req, res) => {
        sockets.push(req.socket)
        handler(req, res)
      })
      const { port } = await listen(t, server, handler)
      const client = await openTls(t, port, '/?topic=a')
      await until(() => client.named('ready').length === 1, 3000, 'the stream to be ready')
      assert.equal(sockets[0] instanceof tls.TLSSocket, true, 'the server side is a TLS socket')
      await onPath(sockets[0], detached)
      await roundTrip(broker, client, 'a')
      client.destroy()
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
    })

    it('over TLS: server.closeAllConnections() ends the stream', async (t) => {
      const handler = createHandler({ lingerMs: 0 })
      const sockets: ServerSocket[] = []
      const server = https.createServer(certificate(), (req, res) => {
        sockets.push(req.socket)
        handler(req, res)
      })
      const { port } = await listen(t, server, handler)
      const client = await openTls(t, port, '/?topic=a')
      await until(() => client.named('ready').length === 1, 3000, 'the stream to be ready')
      await onPath(sockets[0], detached)
      server.closeAllConnections()
      await client.waitForClose(3000)
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
    })
  })
}

describe('what stays on node:http', () => {
  it('a stream whose request has a close listener (the app waits for it) stays, and the listener is told', async (t) => {
    let closed = 0
    const { handler, port, sockets } = await setup(t, {}, (req) => {
      req.on('close', () => closed++)
    })
    // A detach happens in the turn the head is written, before the client (in this process) can read it.
    const client = await openStream(t, port, 'a')
    await onPath(sockets[0], false)
    client.destroy()
    await until(() => closed === 1 && handler.stats().connections === 0, 3000, 'the request\'s close listener and the stream to be told')
  })

  it('a stream whose response has another close listener stays, and the listener is told', async (t) => {
    let closed = 0
    const { handler, port, sockets } = await setup(t, {}, (_req, res) => {
      res.on('close', () => closed++)
    })
    const client = await openStream(t, port, 'a')
    await onPath(sockets[0], false)
    client.destroy()
    await until(() => closed === 1 && handler.stats().connections === 0, 3000, 'the response\'s close listener and the stream to be told')
  })

  it('a stream whose connection goes before the detach is simply forgotten', async (t) => {
    // The handler opens the stream synchronously here; the socket goes right after, in the same turn.
    const { handler, port, sockets } = await setup(t, {}, (req) => () => req.socket.destroy())
    const client = new SseClient(await connected(port))
    t.after(() => client.destroy())
    client.socket.write('GET /?topic=a HTTP/1.1\r\nHost: x\r\n\r\n')
    await client.waitForClose(3000)
    await until(() => handler.stats().connections === 0 && handler.stats().topics === 0, 3000, 'the stream to be forgotten')
    assert.ok(sockets[0] !== undefined && !isDetached(sockets[0]), 'the socket was never detached')
  })
})

describe('what a stream keeps of its request', () => {
  it('snapshot gets the whole request after a reset of an open, detached stream', async (t) => {
    const inner = createBroker()
    const gaps = new Map<string, () => void>()
    // The in-process broker never loses a message: this one can be told it did.
    const broker: Broker = {
      publish: (topic, payload) => inner.publish(topic, payload),
      subscribe(topic, listener, onGap) {
        if (onGap !== undefined) gaps.set(topic, onGap)
        return inner.subscribe(topic, listener, onGap)
      },
    }
    const seen: (string | undefined)[] = []
    const handler = createHandler({
      broker,
      snapshot: (req) => {
        seen.push(req.headers['x-user'] as string | undefined)
        return { user: req.headers['x-user'] }
      },
    })
    const sockets: ServerSocket[] = []
    const server = http.createServer((req, res) => {
      sockets.push(req.socket)
      handler(req, res)
    })
    const { port } = await listen(t, server, handler)
    const client = await openStream(t, port, 'a', ['X-User: ada'])
    await onPath(sockets[0], true)
    assert.deepEqual(seen, ['ada'], 'the snapshot on open')
    gaps.get('a')?.()
    await until(() => client.named('snapshot').length === 2, 3000, `the snapshot after the reset: ${JSON.stringify(client.raw.slice(-300))}`)
    assert.equal(client.named('reset').length, 1, 'the reset')
    assert.deepEqual(seen, ['ada', 'ada'], 'the second snapshot read the request\'s headers')
    assert.deepEqual(JSON.parse(client.named('snapshot')[1]?.data ?? 'null'), { user: 'ada' }, 'the snapshot frame after the reset')
  })

  it('without snapshot, the request is let go of once the stream is open', { skip: typeof gc !== 'function' && 'needs --expose-gc' }, async (t) => {
    let request: WeakRef<http.IncomingMessage> | undefined
    const { port, sockets } = await setup(t, {}, (req) => {
      request = new WeakRef(req)
    })
    const client = await openStream(t, port, 'a')
    await onPath(sockets[0], true)
    await until(async () => {
      ;(gc as () => void)()
      await new Promise((resolve) => setImmediate(resolve))
      return request?.deref() === undefined
    }, 3000, 'the request to be collected')
    assert.equal(client.closed, false, 'the stream is still open')
  })
})

async function connected(port: number): Promise<Socket> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return socket
}

/** A raw TLS SSE client. */
async function openTls(t: TestContext, port: number, target: string): Promise<SseClient> {
  const socket = tls.connect({ port, host: '127.0.0.1', ca: certificate().cert })
  const client = new SseClient(socket)
  t.after(() => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
  return client
}

// TLS: one self-signed certificate for 127.0.0.1, made by the openssl CLI.
let tlsFiles: { key: string; cert: string } | undefined
let tlsDir: string | undefined

before(async () => {
  tlsDir = await mkdtemp(path.join(os.tmpdir(), 'patchwire-detach-tls-'))
  const key = path.join(tlsDir, 'key.pem')
  const cert = path.join(tlsDir, 'cert.pem')
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ])
  tlsFiles = { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') }
})

after(async () => {
  if (tlsDir !== undefined) await rm(tlsDir, { recursive: true, force: true })
})


function certificate(): { key: string; cert: string } {
  assert.ok(tlsFiles !== undefined, 'the certificate was made')
  return tlsFiles
}

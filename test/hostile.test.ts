/**
 * Hostile and unlucky clients: request targets that try to bypass `path`,
 * queries built to be expensive, bytes sent after a stream opened, clients
 * that stall or hold a connection half open, requests that wait for ever.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { describe, it, mock } from 'node:test'
import { createBroker, createHandler, publish } from '../src/index.ts'
import { listen, startServer, until } from './helpers/server.ts'
import { openRaw, openStream, sendRaw } from './helpers/sse-client.ts'

describe('hostile clients', () => {
  describe('request targets (RFC 9112 section 3.2) and the path option', () => {
    const targets: [string, string, number][] = [
      ['origin form, the path', '/events?topic=a', 200],
      ['origin form, another path', '/other?topic=a', 404],
      ['origin form, the path with a fragment', '/events#x?topic=a', 400],
      ['absolute form, the path', 'http://example.com/events?topic=a', 200],
      ['absolute form, a port and the path', 'http://example.com:80/events?topic=a', 200],
      ['absolute form, no path but a "/" inside the query', 'http://x?topic=a/events', 404],
      ['absolute form, no path and a query that names the path', 'http://x?/events&topic=a', 404],
      ['absolute form, another path', 'http://x/other?topic=a/events', 404],
      ['authority form (CONNECT only)', 'example.com:443', 404],
      ['asterisk form (OPTIONS only)', '*', 404],
    ]
    for (const [name, target, status] of targets) {
      it(`${name}: ${target} → ${status}`, async (t) => {
        const { port } = await startServer(t, { path: '/events' })
        const client = await sendRaw(t, port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
        await until(() => client.response !== undefined || client.closed, 3000, 'an answer')
        // Node refuses some forms itself (400) before any handler runs; never a stream.
        const got = client.response?.status ?? 400
        assert.equal(got === status || (status === 404 && got === 400), true, `status ${got}`)
        if (status !== 200) assert.doesNotMatch(client.raw, /text\/event-stream/, `no event stream for ${target}: ${JSON.stringify(client.raw.slice(0, 200))}`)
      })
    }
  })

  describe('expensive queries', () => {
    it('answers a query of thousands of malformed names without decoding any of them', async (t) => {
      const { port } = await startServer(t)
      const decode = mock.method(globalThis, 'decodeURIComponent')
      t.after(() => decode.mock.restore())
      const client = await openStream(t, port, 'a', [], `/?${'%&'.repeat(7_000)}`)
      assert.equal(client.response?.status, 200, 'thousands of malformed names do not stop the stream')
      assert.equal(decode.mock.callCount(), 0, 'names are matched as written, never decoded')
    })

    it('decodes at most one component per topic however many parameters there are', async (t) => {
      const { port } = await startServer(t, { maxTopics: 4 })
      const decode = mock.method(globalThis, 'decodeURIComponent')
      t.after(() => decode.mock.restore())
      const client = await openRaw(t, port, `/?${'topic=%FF&'.repeat(1_000)}`)
      await until(() => client.response !== undefined, 3000, 'an answer')
      assert.equal(client.response?.status, 400, 'a topic that does not decode is refused with 400')
      assert.ok(decode.mock.callCount() <= 1, `${decode.mock.callCount()} decodes`)
    })

    it('refuses with 414 a target longer than any set of topics the handler allows', async (t) => {
      const { port } = await startServer(t, { maxTopics: 1, maxTopicLength: 8 })
      const client = await openRaw(t, port, `/?x=${'y'.repeat(5_000)}&topic=a`)
      await until(() => client.response !== undefined, 3000, 'an answer')
      assert.equal(client.response?.status, 414, 'a target longer than the topics allow is refused with 414')
    })
  })

  describe('bytes after the stream opened', () => {
    const garbage: [string, string][] = [
      ['a garbage line', 'NOT HTTP AT ALL\r\n\r\n'],
      ['a header larger than the limit', `GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n`],
    ]
    for (const [name, bytes] of garbage) {
      it(`${name}: the stream ends, and no HTTP error text lands inside it`, async (t) => {
        const broker = createBroker()
        const { port } = await startServer(t, { broker })
        const client = await openStream(t, port, 'a')
        client.socket.write(bytes)
        await client.waitForClose()
        const body = client.response?.body ?? ''
        assert.doesNotMatch(body, /HTTP\/1\.1 4\d\d/, `no HTTP error text inside the stream: ${JSON.stringify(body.slice(-200))}`)
      })
    }

    it('cuts a connection that pipelines another request behind its stream', async (t) => {
      const { port, handler } = await startServer(t, { lingerMs: 0 })
      const client = await openStream(t, port, 'a')
      client.socket.write('GET /?topic=b HTTP/1.1\r\nHost: x\r\n\r\n')
      await client.waitForClose()
      await until(() => handler.stats().connections === 0, 3000, 'the stream to be forgotten')
      assert.doesNotMatch(client.response?.body ?? '', /HTTP\/1\.1/, 'no response to the pipelined request inside the stream')
    })
  })

  describe('stalled readers', () => {
    it('cuts a stalled reader on a quiet topic within a few heartbeats (at least 10 s), even one holding a replay', { timeout: 40_000 }, async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, heartbeatMs: 100 })
      const first = await openStream(t, port, 'quiet')
      const from = first.events.at(-1)?.id as string
      first.destroy()
      // A replay far larger than the kernel's buffers, then silence on the topic.
      const chunk = 'q'.repeat(1024 * 1024)
      for (let n = 0; n < 24; n++) await publish(broker, 'quiet', [['replace', '/chunk', chunk]])
      const stalled = await openRaw(t, port, '/?topic=quiet', [`Last-Event-ID: ${from}`])
      stalled.socket.pause()
      await until(() => handler.stats().connections === 1, 3000, 'the reconnect to open')
      await until(() => handler.stats().dropped === 1, 25_000, 'the stall to be cut')
      assert.equal(handler.stats().connections, 0, 'no stream left after the cut')
    })

    it('cuts an HTTP/1 slow reader with one shared error, which a clientError listener sees once, and nothing crashes', async (t) => {
      const broker = createBroker()
      const handler = createHandler({ broker, maxBufferedBytes: 16 * 1024 })
      const server = http.createServer((req, res) => handler(req, res))
      const seen: Error[] = []
      server.on('clientError', (error: Error, socket) => {
        seen.push(error)
        socket.destroy()
      })
      const { port } = await listen(t, server, handler)
      const slow = await openStream(t, port, 'flood')
      slow.socket.pause()
      for (let n = 0; n < 5000 && handler.stats().dropped === 0; n++) {
        await publish(broker, 'flood', [['replace', '/n', n], ['replace', '/pad', 'p'.repeat(4096)]])
        if (n % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      assert.equal(handler.stats().dropped, 1, 'the slow reader was cut once')
      await until(() => seen.length === 1, 3000, 'the clientError of the cut socket')
      assert.match(seen[0]?.message ?? '', /slow reader/, `the clientError names the slow reader: ${seen[0]?.message}`)
    })

    it('keeps a reader that drains slowly but steadily', { timeout: 90_000 }, async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, heartbeatMs: 100 })
      const first = await openStream(t, port, 'slow')
      const from = first.events.at(-1)?.id as string
      first.destroy()
      for (let n = 0; n < 6; n++) await publish(broker, 'slow', [['replace', '/chunk', 's'.repeat(1024 * 1024)]])
      const reader = await openRaw(t, port, '/?topic=slow', [`Last-Event-ID: ${from}`])
      // Read one chunk every 30 ms: progress in every heartbeat interval.
      reader.socket.pause()
      const timer = setInterval(() => {
        reader.socket.once('data', () => reader.socket.pause())
        reader.socket.resume()
      }, 30)
      t.after(() => clearInterval(timer))
      await until(() => reader.named('ready').length === 1 || handler.stats().dropped > 0 || reader.closed, 60_000, 'the whole replay, or a cut')
      assert.equal(handler.stats().dropped, 0, 'a reader that makes progress is never cut')
      assert.equal(reader.named('ready').length, 1, 'the whole replay was read, up to ready')
      assert.equal(handler.stats().dropped, 0, 'no stream was cut')
    })
  })

  describe('requests that wait', () => {
    it('answers 503 at once when more requests wait than maxPending', async (t) => {
      let release: () => void = () => {}
      const gate = new Promise<boolean>((resolve) => (release = () => resolve(true)))
      const { port, handler } = await startServer(t, { maxPending: 2, authorize: () => gate })
      const waiting = [await openRaw(t, port, '/?topic=a'), await openRaw(t, port, '/?topic=a')]
      await until(() => handler.stats().pending === 2, 3000, 'two waiting')
      const third = await openRaw(t, port, '/?topic=a')
      await until(() => third.response !== undefined, 3000, 'the refusal')
      assert.equal(third.response?.status, 503, 'the request over maxPending is answered 503')
      assert.match(third.response?.body ?? '', /maxPending/, 'the 503 names maxPending')
      release()
      for (const client of waiting) await until(() => client.named('ready').length === 1, 3000, 'the waiting streams')
    })

    it('answers 503 when authorize takes longer than pendingTimeoutMs', async (t) => {
      const { port, handler } = await startServer(t, { pendingTimeoutMs: 50, authorize: () => new Promise<boolean>(() => {}) })
      const client = await openRaw(t, port, '/?topic=a')
      await until(() => client.response !== undefined, 3000, 'the refusal')
      assert.equal(client.response?.status, 503, 'an authorize slower than pendingTimeoutMs gets 503')
      assert.match(client.response?.body ?? '', /pendingTimeoutMs/, 'the 503 names pendingTimeoutMs')
      assert.equal(handler.stats().pending, 0, 'nothing left waiting after the timeout')
    })

    it('close() answers a request inside a long authorize at once, and server.close() completes', async (t) => {
      const handler = createHandler({ authorize: () => new Promise<boolean>(() => {}) })
      const server = http.createServer((req, res) => handler(req, res))
      const { port } = await listen(t, server, handler)
      const client = await openRaw(t, port, '/?topic=a')
      await until(() => handler.stats().pending === 1, 3000, 'the request to wait')
      await handler.close()
      await until(() => client.response !== undefined, 1000, 'the 503')
      assert.equal(client.response?.status, 503, 'the waiting request is answered 503 by close()')
      await new Promise((resolve) => server.close(resolve))
    })
  })

  describe('close()', () => {
    it('ends every stream with a spread retry: and resolves even when clients keep their half open', async (t) => {
      const handler = createHandler({ retryMs: 1000 })
      const server = http.createServer((req, res) => handler(req, res))
      const { port } = await listen(t, server, handler)
      const sockets = await Promise.all(Array.from({ length: 20 }, () => halfOpenStream(port)))
      t.after(() => sockets.forEach((socket) => socket.destroy()))
      await until(() => handler.stats().connections === 20, 3000, 'the streams')
      const received = sockets.map(() => '')
      sockets.forEach((socket, i) => socket.on('data', (chunk: string) => (received[i] += chunk)))
      await handler.close({ reconnectSpreadMs: 5_000 })
      await new Promise((resolve) => server.close(resolve))
      const retries = received.map((text) => Number(/retry: (\d+)\n\n$/.exec(text)?.[1]))
      assert.ok(retries.every((retry) => retry >= 1000 && retry < 6000), JSON.stringify(retries))
      assert.ok(new Set(retries).size > 1, 'spread, not one value')
    })
  })
})

/** A stream whose client never closes its side: it ignores the server's FIN. */
async function halfOpenStream(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.setEncoding('utf8')
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET /?topic=half HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => socket.once('data', resolve))
  return socket
}

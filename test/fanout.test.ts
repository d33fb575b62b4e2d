import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, it, mock } from 'node:test'
import { createBroker, publish, type Broker } from '../src/index.ts'
import { streamCounts, startServer, until } from './helpers/server.ts'
import { openQuiet, openStream, type SseClient } from './helpers/sse-client.ts'

const gc = globalThis.gc as (() => void) | undefined

function heapAfterGc(): number {
  assert.ok(gc, 'run with --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

describe('fan-out', () => {
  describe('heartbeat', () => {
    it('drives 1000 streams from one shared timer, and stops it when the last stream goes', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, heartbeatMs: 100 })
      const setIntervalSpy = mock.method(globalThis, 'setInterval')
      const setTimeoutSpy = mock.method(globalThis, 'setTimeout')
      const clearIntervalSpy = mock.method(globalThis, 'clearInterval')
      t.after(() => mock.restoreAll())

      const clients: SseClient[] = []
      for (let batch = 0; batch < 10; batch++) {
        clients.push(...(await Promise.all(Array.from({ length: 100 }, (_, i) => openStream(t, port, `topic-${i % 7}`)))))
      }
      assert.equal(handler.stats().connections, 1000, 'a thousand streams open')
      const intervalsByHandler = setIntervalSpy.mock.calls.length
      assert.equal(intervalsByHandler, 1, 'one interval for 1000 streams')
      assert.equal(setIntervalSpy.mock.calls[0]?.result?.hasRef(), false, 'unref\'d: an idle stream never keeps the process alive')

      await until(() => clients.every((c) => c.comments > 0), 5000, 'every stream to get a heartbeat')
      assert.equal(setIntervalSpy.mock.calls.length, 1, 'still one interval after the heartbeats went out')
      // The helpers poll with setTimeout (5 ms); the handler itself added none.
      const handlerTimeouts = setTimeoutSpy.mock.calls.filter((call) => call.arguments[1] !== 5)
      assert.equal(handlerTimeouts.length, 0, 'no per-stream timeouts')

      for (const client of clients) client.destroy()
      await until(() => handler.stats().connections === 0, 5000, 'all streams to close')
      assert.equal(clearIntervalSpy.mock.calls.length, 1, 'the tick stops with the last stream')
    })

    it('skips streams that got a frame during the interval', async (t) => {
      mock.timers.enable({ apis: ['setInterval'] })
      t.after(() => mock.timers.reset())
      const broker = createBroker()
      const { port } = await startServer(t, { broker, heartbeatMs: 1000 })
      const busy = await openStream(t, port, 'busy')
      const idle = await openStream(t, port, 'idle')
      await publish(broker, 'busy', [['replace', '/n', 1]])
      await busy.waitForEvents(2)

      mock.timers.tick(1000)
      await until(() => idle.comments === 1, 2000, 'the idle stream to get a heartbeat')
      // The idle stream's heartbeat went out in the same loop as the busy one's would have.
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(busy.comments, 0, 'a stream written to in this interval needs no heartbeat')

      mock.timers.tick(1000)
      await until(() => busy.comments === 1 && idle.comments === 2, 2000, 'both streams to get the next heartbeat')
    })

    it('sends the heartbeat as a comment line that clients ignore', async (t) => {
      const { port } = await startServer(t, { heartbeatMs: 20 })
      const client = await openStream(t, port, 'beat')
      await until(() => client.comments > 0, 2000, 'a heartbeat')
      assert.match(client.response?.body ?? '', /\n\n:\n\n/, `the heartbeat is a bare comment line: ${JSON.stringify(client.response?.body)}`)
      assert.equal(client.named('patch').length, 0, 'a heartbeat is no patch')
    })
  })

  describe('slow readers', () => {
    it('cuts a stalled reader while a healthy one gets every frame', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, maxBufferedBytes: 64 * 1024 })
      const healthy = await openStream(t, port, 'feed')
      const stalled = net.connect(port, '127.0.0.1')
      t.after(() => stalled.destroy())
      stalled.on('error', () => {})
      let stalledClosed = false
      stalled.on('close', () => (stalledClosed = true))
      stalled.write('GET /?topic=feed HTTP/1.1\r\nHost: x\r\n\r\n')
      await until(() => handler.stats().connections === 2, 2000, 'the stalled stream to open')
      // It never reads again: the kernel's buffers fill, then Node's.
      stalled.pause()

      const chunk = 'x'.repeat(16 * 1024)
      let published = 0
      const rssBefore = process.memoryUsage().rss
      while (handler.stats().dropped === 0 && published < 5000) {
        await publish(broker, 'feed', [['add', '/items/-', { n: published, chunk }]])
        published++
        // A new event-loop turn, so each frame is its own batch.
        await new Promise((resolve) => setImmediate(resolve))
      }
      assert.equal(handler.stats().dropped, 1, 'the stalled reader was cut')
      assert.equal(handler.stats().connections, 1, 'the healthy stream stays')
      // It reads what the kernel holds, then finds the connection closed.
      stalled.resume()
      await until(() => stalledClosed, 5000, 'the stalled socket to be closed by the server')
      assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024, 'server memory stayed bounded')

      await publish(broker, 'feed', [['add', '/items/-', { n: published, chunk: '' }]])
      published++
      const patches = await until(() => healthy.named('patch').length === published, 10_000, 'every frame at the healthy reader').then(() => healthy.named('patch'))
      assert.deepEqual(
        patches.map((p) => (JSON.parse(p.data) as [[string, string, { n: number }]])[0][2].n),
        Array.from({ length: published }, (_, i) => i),
        'the healthy reader got every frame once, in order',
      )
    })

    it('never cuts a healthy reader for one large frame, nor for frames written in one turn', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, maxBufferedBytes: 1024 })
      const client = await openStream(t, port, 'big')
      const big = 'y'.repeat(4 * 1024 * 1024)
      await publish(broker, 'big', [['replace', '/blob', big]])
      // More frames in the same turn: they ride in the same batch.
      for (let i = 0; i < 50; i++) await publish(broker, 'big', [['replace', '/n', i]])
      await new Promise((resolve) => setImmediate(resolve))
      await publish(broker, 'big', [['replace', '/n', 50]])
      await client.waitForEvents(1 + 52, 10_000)
      assert.equal(handler.stats().dropped, 0, 'no stream cut for one large frame')
      assert.equal(client.closed, false, 'the reader of the large frame stays connected')
      assert.equal((JSON.parse(client.named('patch')[0]?.data ?? '[]') as [[string, string, string]])[0][2].length, big.length, 'the large frame arrived whole')
    })

    it('does not cut a reader for a large frame that small frames follow before it has drained, but still cuts it when it stalls', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, maxBufferedBytes: 64 * 1024 })
      const client = await openStream(t, port, 'big-then-small')
      client.socket.pause()
      await publish(broker, 'big-then-small', [['replace', '/blob', 'b'.repeat(16 * 1024 * 1024)]])
      // Small frames, each in its own turn, while the big one is still on its way.
      for (let n = 0; n < 5; n++) {
        await new Promise((resolve) => setImmediate(resolve))
        await publish(broker, 'big-then-small', [['replace', '/n', n]])
      }
      assert.equal(handler.stats().dropped, 0, 'the big frame and one turn of small ones are exempt')
      // Everything else counts: a reader that still does not read is cut.
      let published = 0
      while (handler.stats().dropped === 0 && published < 100) {
        await new Promise((resolve) => setImmediate(resolve))
        await publish(broker, 'big-then-small', [['replace', '/chunk', 'c'.repeat(16 * 1024)]])
        published++
      }
      assert.equal(handler.stats().dropped, 1, 'the stalled reader was cut once past the large frame')
      assert.ok(published >= 4, `cut after ${published} more frames of 16 KiB, past the 64 KiB limit`)
    })
  })

  describe('disconnects', () => {
    it('keeps the heap flat over thousands of connect/disconnect cycles', { timeout: 60_000 }, async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, lingerMs: 0 })
      const cycle = async (rounds: number) => {
        for (let round = 0; round < rounds; round++) {
          const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => openQuiet(port, `cycle-${i % 5}`)))
          await publish(broker, 'cycle-0', [['replace', '/round', round]])
          for (const client of clients) client.destroy()
          await until(() => handler.stats().connections === 0, 5000, 'streams to be forgotten')
        }
      }
      await cycle(10)
      const before = heapAfterGc()
      await cycle(60)
      const after = heapAfterGc()
      assert.equal(handler.stats().topics, 0, 'no topic left behind')
      // 3000 streams came and went; a leak of even 1 KB each would show as 3 MB.
      assert.ok(after - before < 1.5 * 1024 * 1024, `heap grew by ${after - before} bytes over 3000 streams`)
    })

    it('forgets a closed stream at once, without waiting for a write', async (t) => {
      const subscriptions: string[] = []
      const inner = createBroker()
      const broker: Broker = {
        publish: (topic, payload) => inner.publish(topic, payload),
        subscribe(topic, listener) {
          subscriptions.push(`+${topic}`)
          const off = inner.subscribe(topic, listener)
          return () => {
            subscriptions.push(`-${topic}`)
            off()
          }
        },
      }
      const { port, handler } = await startServer(t, { broker, lingerMs: 0, heartbeatMs: 60_000 })
      const client = await openStream(t, port, 'gone')
      assert.deepEqual(subscriptions, ['+gone'], 'subscribed once for the stream')
      client.destroy()
      await until(() => handler.stats().connections === 0, 2000, 'the close event')
      assert.deepEqual(subscriptions, ['+gone', '-gone'], 'unsubscribed once the stream closed, without a write')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'nothing left of the closed stream')
    })
  })
})

/**
 * Soak: many clients come and go, resume, stall and get cut, while patches
 * keep flowing; nothing may be lost, doubled or leaked.
 *
 * Run with `npm run soak` (SOAK_SECONDS, default 60). Not part of `npm test`.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, it } from 'node:test'
import { createParser } from 'eventsource-parser'
import { createBroker, publish } from '../../src/index.ts'
import { startServer, until } from '../helpers/server.ts'

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 60)
const CLIENTS = 200
const TOPICS = 5

/** A client that keeps only what it needs to check order: its last counter and id. */
class Follower {
  readonly topic: string
  lastId: string | undefined
  lastCounter: number | undefined
  received = 0
  resets = 0
  reconnects = 0
  stalled = false
  socket: net.Socket | undefined
  readonly #port: number

  constructor(port: number, topic: string) {
    this.#port = port
    this.topic = topic
  }

  connect(): void {
    const socket = net.connect(this.#port, '127.0.0.1')
    this.socket = socket
    this.reconnects++
    let head = true
    const parser = createParser({
      onEvent: (event) => {
        if (event.id !== undefined) this.lastId = event.id
        if (event.event === 'reset') {
          // The page would reload its state: the next patch starts a new run.
          this.resets++
          this.lastCounter = undefined
        } else if (event.event === 'patch') {
          const counter = (JSON.parse(event.data) as [[string, string, number]])[0][2]
          if (this.lastCounter !== undefined) assert.equal(counter, this.lastCounter + 1, `${this.topic}: after ${this.lastCounter} came ${counter}`)
          this.lastCounter = counter
          this.received++
        }
      },
    })
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      if (head) {
        const end = chunk.indexOf('\r\n\r\n')
        if (end === -1) return
        head = false
        chunk = chunk.slice(end + 4)
      }
      parser.feed(chunk)
    })
    socket.on('error', () => {})
    const resume = this.lastId === undefined ? '' : `Last-Event-ID: ${this.lastId}\r\n`
    socket.write(`GET /?topic=${this.topic} HTTP/1.1\r\nHost: x\r\n${resume}\r\n`)
  }
}

describe('soak', () => {
  it(`churns ${CLIENTS} clients for ${SECONDS} s without loss or leak`, { timeout: (SECONDS + 60) * 1000 }, async (t) => {
    // A small history: it fills within the warm-up, so what grows after it is a leak.
    const broker = createBroker({ historyBytes: 4 * 1024 * 1024 })
    const { port, handler } = await startServer(t, { broker, maxBufferedBytes: 16 * 1024, lingerMs: 2000, heartbeatMs: 500 })
    const followers = Array.from({ length: CLIENTS }, (_, i) => new Follower(port, `soak-${i % TOPICS}`))
    for (const follower of followers) follower.connect()

    const counters = new Array<number>(TOPICS).fill(0)
    const deadline = Date.now() + SECONDS * 1000
    let churning = true
    let nextSample = Date.now() + (SECONDS * 1000) / 6
    const heap: number[] = []
    let round = 0
    while (Date.now() < deadline) {
      round++
      for (let topic = 0; topic < TOPICS; topic++) {
        await publish(broker, `soak-${topic}`, [['replace', '/n', counters[topic]!++], ['replace', '/pad', 'x'.repeat(200 + (round % 7) * 1000)]] as never)
      }
      // Churn: some drop and resume, some stall until the server cuts them.
      const follower = followers[round % CLIENTS]!
      if (follower.stalled) {
        // Left alone until its stall ends.
      } else if (round % 499 === 0) {
        follower.stalled = true
        follower.socket?.pause()
        setTimeout(() => {
          follower.stalled = false
          if (!churning) return
          follower.socket?.destroy()
          follower.connect()
        }, 20_000).unref()
      } else if (round % 3 === 0) {
        follower.socket?.destroy()
        follower.connect()
      }
      if (Date.now() >= nextSample) {
        nextSample += (SECONDS * 1000) / 6
        globalThis.gc?.()
        heap.push(process.memoryUsage().heapUsed)
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }

    churning = false
    for (const follower of followers) follower.socket?.destroy()
    await until(() => handler.stats().connections === 0, 10_000, 'every stream to be forgotten')
    await until(() => handler.stats().topics === 0, 10_000, 'every topic to be let go')

    const received = followers.reduce((sum, f) => sum + f.received, 0)
    const resets = followers.reduce((sum, f) => sum + f.resets, 0)
    console.log(`soak: ${round} rounds, ${received} patches checked in order, ${resets} resets, ${handler.stats().dropped} slow readers cut, heap samples ${heap.map((h) => (h / 1048576).toFixed(1)).join(' ')} MiB`)
    assert.ok(received > 0, 'the followers received patches')
    if (heap.length >= 3) {
      // After warm-up, the heap must not keep growing.
      const [, second, ...rest] = heap
      assert.ok(Math.max(...rest) < second! * 1.5 + 8 * 1048576, 'the heap kept growing')
    }
  })
})

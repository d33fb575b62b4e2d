/**
 * A raw-socket SSE client for tests: it sends exactly the request bytes it is
 * given, keeps the exact response bytes, and parses the body with
 * eventsource-parser (a spec-conformant parser), so line-splitting bugs show.
 */
import net from 'node:net'
import type { TestContext } from 'node:test'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { until } from './server.ts'

export interface RawResponse {
  /** Status code of the response. */
  status: number
  /** Response headers, lower-cased names. */
  headers: Record<string, string>
  /** Everything after the header block, as received. */
  body: string
}

export class SseClient {
  readonly socket: net.Socket
  /** Every byte received, as text. */
  raw = ''
  /** Parsed events, in order. */
  readonly events: EventSourceMessage[] = []
  /** `retry:` values seen. */
  readonly retries: number[] = []
  /** Comment lines seen (heartbeats). */
  comments = 0
  closed = false
  #headerDone = false
  readonly #parser = createParser({
    onEvent: (event) => this.events.push(event),
    onRetry: (ms) => this.retries.push(ms),
    onComment: () => this.comments++,
  })

  constructor(socket: net.Socket) {
    this.socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => this.#onData(chunk))
    socket.on('close', () => (this.closed = true))
    socket.on('error', () => {})
  }

  get response(): RawResponse | undefined {
    const end = this.raw.indexOf('\r\n\r\n')
    if (end === -1) return undefined
    const [statusLine = '', ...lines] = this.raw.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    return { status: Number(statusLine.split(' ')[1]), headers, body: this.raw.slice(end + 4) }
  }

  /** Events of one type. */
  named(type: string): EventSourceMessage[] {
    return this.events.filter((event) => (event.event ?? 'message') === type)
  }

  /** Waits until at least `count` events have arrived. */
  async waitForEvents(count: number, ms = 5000): Promise<EventSourceMessage[]> {
    await until(() => this.events.length >= count, ms, `${count} events (have ${this.events.length}: ${JSON.stringify(this.raw.slice(-300))})`)
    return this.events
  }

  async waitForClose(ms = 5000): Promise<void> {
    await until(() => this.closed, ms, 'the connection to close')
  }

  destroy(): void {
    this.socket.destroy()
  }

  #onData(chunk: string): void {
    this.raw += chunk
    if (!this.#headerDone) {
      const end = this.raw.indexOf('\r\n\r\n')
      if (end === -1) return
      this.#headerDone = true
      this.#parser.feed(this.raw.slice(end + 4))
      return
    }
    this.#parser.feed(chunk)
  }
}

/** Opens a raw connection and sends `GET <path>` with the given extra header lines. */
export async function openRaw(t: TestContext, port: number, path: string, headers: string[] = []): Promise<SseClient> {
  return sendRaw(t, port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`)
}

/** Opens a raw connection and sends `request` byte for byte. */
export async function sendRaw(t: TestContext, port: number, request: string | Buffer): Promise<SseClient> {
  const socket = net.connect(port, '127.0.0.1')
  const client = new SseClient(socket)
  t.after(() => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write(request)
  return client
}

/**
 * Opens a stream on `topic` and waits until it is ready (its `ready` frame
 * arrived) or refused. `path` may carry a query of its own.
 */
export async function openStream(t: TestContext, port: number, topic: string, headers: string[] = [], path = '/'): Promise<SseClient> {
  const client = await openRaw(t, port, `${path}${path.includes('?') ? '&' : '?'}topic=${encodeURIComponent(topic)}`, headers)
  await until(() => client.named('ready').length > 0 || client.closed || (client.response?.status ?? 200) !== 200, 5000, `stream on ${topic} to be ready: ${JSON.stringify(client.raw)}`)
  return client
}

/**
 * Opens a stream and resolves with its socket once it is ready, keeping
 * nothing else: for tests that measure the server's memory.
 */
export async function openQuiet(port: number, topic: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`GET /?topic=${encodeURIComponent(topic)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      if (chunk.includes('event: ready')) resolve()
    })
    socket.once('close', () => reject(new Error(`stream on ${topic} closed before it was ready`)))
  })
  return socket
}

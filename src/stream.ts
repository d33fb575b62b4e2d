import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Topic } from './fanout.js'

/** What a stream writes to: the connection's socket (HTTP/1) or its `Http2Stream`. */
interface Sink {
  write(chunk: Buffer | string): boolean
  readonly writableLength: number
  readonly destroyed: boolean
  end(): void
  destroy(): void
}

/** Requests the handler answers: `node:http`, `node:https` and `node:http2`'s compatibility API. */
export type Request = IncomingMessage | Http2ServerRequest
/** Responses the handler writes to. */
export type Response = ServerResponse | Http2ServerResponse

/**
 * One open SSE stream and its slow-reader bookkeeping. Deliberately small:
 * thousands of idle streams are the common case.
 *
 * Positions below are byte offsets in everything written to the sink, so
 * that `written - sink.writableLength` is what the kernel has taken.
 * @internal
 */
export class Stream {
  readonly sink: Sink
  readonly topic: Topic
  /** This stream's slot in its topic's stream list (swap-remove). */
  index = -1
  /** The heartbeat interval in which the stream last got a frame; it then needs no heartbeat. */
  wroteInBeat = -1
  #written: number
  #batchTick: number
  /** Where the latest batch (the writes of one event-loop turn) starts. */
  #batchStart = 0
  /** The earlier batch that is exempt while it is unsent, as [start, end). */
  #bigStart = 0
  #bigEnd = 0

  /**
   * @param openedWith - the bytes written on open (head, `retry:`, replay,
   * `ready`): the stream's first batch
   */
  constructor(sink: Sink, topic: Topic, openedWith: number) {
    this.sink = sink
    this.topic = topic
    this.#written = openedWith
    this.#batchTick = currentTick()
  }

  /**
   * Writes `frame` unless the reader has fallen behind.
   *
   * The backlog is what Node still holds because the kernel has not taken it.
   * Two batches are left out of it while unsent: the latest one (a healthy
   * reader always has that in flight) and the larger-remaining of the earlier
   * ones, so that one large frame, or a large replay, never cuts a stream,
   * not even when small frames follow it before it has drained. Everything
   * else counts, so a stalled reader is still cut, whatever it was sent.
   *
   * @param tick - the current event-loop turn, from {@link currentTick}
   * @returns false when the stream is too far behind: the caller cuts it
   */
  send(frame: Buffer, size: number, tick: number, maxBufferedBytes: number): boolean {
    const backlog = this.sink.writableLength
    const sent = this.#written - backlog
    if (this.#batchTick !== tick) {
      if (unsent(this.#batchStart, this.#written, sent) >= unsent(this.#bigStart, this.#bigEnd, sent)) {
        this.#bigStart = this.#batchStart
        this.#bigEnd = this.#written
      }
      this.#batchTick = tick
      this.#batchStart = this.#written
    }
    const exempt = unsent(this.#bigStart, this.#bigEnd, sent) + unsent(this.#batchStart, this.#written, sent)
    if (backlog - exempt > maxBufferedBytes) return false
    this.#written += size
    this.sink.write(frame)
    return true
  }
}

/** How much of the byte range [start, end) is not sent yet, once `sent` bytes are. */
function unsent(start: number, end: number, sent: number): number {
  return Math.max(0, end - Math.max(start, sent))
}

/** The headers of every stream; on HTTP/2 without `Connection`, which HTTP/2 forbids. */
const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
}
const HTTP1_HEAD = `${Object.entries(STREAM_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')}Connection: close\r\n`

/**
 * Header names a stream sets itself, or that would break its framing,
 * so a value set earlier by a middleware is left out.
 */
const OWN_HEADERS = new Set(['content-type', 'cache-control', 'x-accel-buffering', 'connection', 'content-length', 'transfer-encoding', 'content-encoding', 'keep-alive'])

/**
 * Starts the SSE response and returns the stream writing to it.
 *
 * HTTP/1: the response head is written straight to the socket, followed by a
 * close-delimited body (no chunked framing), so every frame is the same bytes
 * for every stream and nothing of the head stays in memory: `ServerResponse`
 * would keep its serialised head for the life of the connection, most of an
 * idle stream's cost. Headers set earlier with `res.setHeader` (CORS, say)
 * are kept. HTTP/2: the compatibility API sends the headers, and frames go to
 * the `Http2Stream`, which does its own framing.
 * @internal
 */
export function openStream(req: Request, res: Response, firstChunk: Buffer | string, topic: Topic): Stream {
  if (req.httpVersionMajor === 2) {
    const h2 = res as Http2ServerResponse
    // The compatibility API merges headers set earlier; drop those that would break the stream.
    for (const name of OWN_HEADERS) h2.removeHeader(name)
    h2.writeHead(200, STREAM_HEADERS)
    h2.write(firstChunk)
    return new Stream(h2.stream, topic, Buffer.byteLength(firstChunk))
  }
  const h1 = res as ServerResponse
  // The handler refuses pipelined requests, so the socket is this response's alone.
  const socket = h1.socket as Socket
  const head = `HTTP/1.1 200 OK\r\n${keptHeaders(h1)}${HTTP1_HEAD}Date: ${new Date().toUTCString()}\r\n\r\n`
  socket.cork()
  socket.write(head)
  socket.write(firstChunk)
  socket.uncork()
  return new Stream(socket, topic, Buffer.byteLength(head) + Buffer.byteLength(firstChunk))
}

/** Headers that earlier middleware set on the response, as header lines. `setHeader` has already refused CR and LF in them. */
function keptHeaders(res: ServerResponse): string {
  let lines = ''
  for (const name of res.getHeaderNames()) {
    if (OWN_HEADERS.has(name)) continue
    const value = res.getHeader(name) as OutgoingHttpHeader
    for (const line of Array.isArray(value) ? value : [value]) lines += `${name}: ${line}\r\n`
  }
  return lines
}

let tick = 0
let tickScheduled = false

function advanceTick(): void {
  tick++
  tickScheduled = false
}

/**
 * A number that changes once per event-loop turn in which it was asked for:
 * what "written in the same turn" means for {@link Stream.send}.
 * @internal
 */
export function currentTick(): number {
  if (!tickScheduled) {
    tickScheduled = true
    setImmediate(advanceTick)
  }
  return tick
}

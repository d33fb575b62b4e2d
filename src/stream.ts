import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Topic } from './fanout.js'

/** What a stream writes to: a socket, an HTTP/2 stream, or (when a middleware encodes the body) the response. */
interface Sink {
  write(chunk: Buffer | string): boolean
  readonly writableLength: number
}

/** Requests the handler answers: `node:http`, `node:https` and `node:http2`'s compatibility API. */
export type Request = IncomingMessage | Http2ServerRequest
/** Responses the handler writes to. */
export type Response = ServerResponse | Http2ServerResponse

/**
 * One open SSE response and its slow-reader bookkeeping. Deliberately small:
 * thousands of idle streams are the common case.
 * @internal
 */
export class Stream {
  readonly res: Response
  readonly sink: Sink
  readonly topic: Topic
  /** This stream's slot in its topic's stream list (swap-remove). */
  index = -1
  /** The heartbeat interval in which the stream last got a frame; it then needs no heartbeat. */
  wroteInBeat = -1
  #batchTick = -1
  #batchBytes = 0

  constructor(res: Response, sink: Sink, topic: Topic) {
    this.res = res
    this.sink = sink
    this.topic = topic
  }

  /**
   * Writes `frame` unless the reader has fallen behind.
   *
   * The backlog is what Node still holds because the kernel has not taken it.
   * The latest batch of writes (everything written in the most recent event
   * loop turn that wrote to this stream) is left out of it: a healthy reader
   * always has that in flight, and one large frame alone must never cut it.
   *
   * @param tick - the current event-loop turn, from {@link currentTick}
   * @returns false when the stream is too far behind: the caller cuts it
   */
  send(frame: Buffer | string, size: number, tick: number, maxBufferedBytes: number): boolean {
    if (this.sink.writableLength - this.#batchBytes > maxBufferedBytes) return false
    if (this.#batchTick !== tick) {
      this.#batchTick = tick
      this.#batchBytes = 0
    }
    this.#batchBytes += size
    this.sink.write(frame)
    return true
  }
}

/**
 * Opens the SSE response and picks the cheapest sink that keeps it correct.
 *
 * HTTP/1: the body is close-delimited (no chunked framing), so once the
 * headers are out every frame is the same bytes for every stream, written
 * straight to the socket without `ServerResponse` bookkeeping. HTTP/2: the
 * frames go to the `Http2Stream`, which does its own framing.
 * @internal
 */
export function openStream(req: Request, res: Response, firstChunk: Buffer | string, topic: Topic): Stream {
  const headers: Record<string, string> = {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  }
  if (req.httpVersionMajor === 2) {
    const h2 = res as Http2ServerResponse
    h2.writeHead(200, headers)
    h2.write(firstChunk)
    return new Stream(res, h2.stream, topic)
  }
  const h1 = res as ServerResponse
  // Without Content-Length and Transfer-Encoding the body ends when the
  // connection does, which is exactly an SSE stream's life.
  h1.removeHeader('Transfer-Encoding')
  h1.writeHead(200, { ...headers, Connection: 'close' })
  // The first write carries the headers with it: one packet per connect.
  h1.write(firstChunk)
  // A middleware that encodes the body despite `no-transform` must see every
  // frame, so only an untouched body goes straight to the socket (which the
  // handler's refusal of pipelined requests makes this response's alone).
  return new Stream(res, h1.getHeader('Content-Encoding') === undefined ? (h1.socket as Socket) : h1, topic)
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

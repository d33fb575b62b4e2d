import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Socket } from 'node:net'
import type { RevokeFilter } from '../broker/revoke.js'
import { Fanout } from '../core/fanout.js'
import type { HandlerStats } from '../core/stats.js'
import type { Refusal, Sink, StreamHandle, StreamOpening } from '../core/transport.js'
import { PatchwireError } from '../errors.js'
import { detachLater } from './detach.js'
import { answerClientScript, isClientScriptPath } from './client-script.js'
import { KernelQueues } from './kernel-queue.js'
import { resolveCloseOptions, resolveOptions, type CloseOptions, type StreamHandlerOptions } from './options.js'
import { pathOf, readStreamQuery } from './request.js'
import { NOT_FOUND, NOT_GET, refusalHeaders, STREAM_HEADERS } from './response.js'

/** Requests {@link createHandler} answers: `node:http`, `node:https` and `node:http2`'s compatibility API. */
export type NodeRequest = IncomingMessage | Http2ServerRequest
/** Responses {@link createHandler} writes to. */
export type NodeResponse = ServerResponse | Http2ServerResponse

/** Options of {@link createHandler}: `authorize` and `snapshot` receive the node request. */
export type HandlerOptions = StreamHandlerOptions<NodeRequest>

/**
 * A request handler for `node:http`, `node:https` and `node:http2`'s
 * compatibility API, as returned by {@link createHandler}.
 */
export interface Handler {
  /**
   * Answers one request: opens an SSE stream, or refuses it, or (with the
   * `path` option, for another path) calls `next()`.
   * @param next - called for requests outside `path`; without it they get 404
   */
  (req: NodeRequest, res: NodeResponse, next?: (error?: unknown) => void): void
  /**
   * Answers every waiting request with 503 at once, ends every open stream
   * (with a spread `retry:`, see {@link CloseOptions}; a stream whose reader
   * has not taken what it was sent is destroyed), stops the heartbeat and
   * lets go of every topic; later requests get 503. Resolves once every
   * stream has closed, or after a one-second grace that destroys the rest,
   * so nothing holds `server.close()` open.
   */
  close(options?: CloseOptions): Promise<void>
  /** Current counters; see {@link HandlerStats}. */
  stats(): HandlerStats
  /**
   * Ends this handler's streams that `filter` matches, each with an
   * `event: revoked` frame per matching topic (see `revoke` for every process).
   * @returns how many streams it ended
   * @throws TypeError for an empty filter, an unknown key, or a value that is not a non-empty string
   */
  revoke(filter: RevokeFilter): number
}

/**
 * Creates the SSE endpoint for `node:http`: each accepted request becomes
 * one stream carrying the patches of one or more topics.
 *
 * @param options - see {@link StreamHandlerOptions}; all optional
 * @returns the {@link Handler}
 * @throws TypeError for an unknown option or one of the wrong type; RangeError for a number out of range
 * @example
 * const events = createHandler({ path: '/dashboard/__events', topicPrefix: 'dashboard:', snapshot: () => state })
 * http.createServer((req, res) => events(req, res, () => app(req, res))).listen(3000)
 */
export function createHandler(options: HandlerOptions = {}): Handler {
  const resolved = resolveOptions(options, 'createHandler')
  const fanout = new Fanout<NodeRequest>(resolved, { inFlight: socketInFlight, kernelHeld: socketKernelHeld, cut: cutSink })

  const handler = ((req, res, next) => {
    if (resolved.serveClient && (req.method === 'GET' || req.method === 'HEAD') && isClientScriptPath(pathOf(req.url ?? ''), resolved.path)) {
      serveClientScript(req, res)
      return
    }
    if (resolved.path !== undefined && pathOf(req.url ?? '') !== resolved.path) {
      if (next !== undefined) next()
      else refuse(fanout, res, NOT_FOUND)
      return
    }
    if (res.headersSent) {
      // Whatever sent it owns the response; a second head would corrupt the connection.
      resolved.onError(new PatchwireError('ERR_PATCHWIRE_RESPONSE', 'the response head was already sent (by a middleware?), so no event stream could be opened; give the handler the request before anything writes to the response'))
      res.end()
      return
    }
    if (req.method !== 'GET') {
      refuse(fanout, res, NOT_GET)
      return
    }
    if (res.socket === null) {
      // A pipelined request waits behind the response before it, which for a
      // stream never ends: it could neither stream nor be told it closed. A
      // client that pipelines behind one of our streams is cut off, so that
      // its queued requests cannot pile up on the connection.
      if (isStreamSocket(req.socket)) req.socket.destroy()
      else refuse(fanout, res, PIPELINED)
      return
    }
    const query = readStreamQuery(req.url ?? '', resolved)
    if ('status' in query) {
      refuse(fanout, res, query)
      return
    }
    // The header, which a reconnecting EventSource sends by itself, wins over the query.
    const header = req.headers['last-event-id']
    if (typeof header === 'string' && header !== '') query.lastEventId = header
    fanout.open(new NodeOpening(req, res, query.topics, query.lastEventId))
  }) as Handler

  handler.close = (closeOptions = {}) => fanout.close(resolveCloseOptions(closeOptions))
  handler.stats = () => fanout.stats()
  handler.revoke = (filter) => fanout.revoke(filter)
  return handler
}

const PIPELINED: Refusal = { status: 400, message: 'Bad Request: an event stream cannot be pipelined behind another request; open it on its own connection' }

const kStream = Symbol('patchwire.stream')
type TaggedResponse = NodeResponse & { [kStream]?: StreamHandle }

/** One node request on its way to becoming a stream. */
class NodeOpening implements StreamOpening<NodeRequest> {
  readonly req: NodeRequest
  readonly #res: NodeResponse
  readonly topics: readonly string[]
  readonly lastEventId: string | undefined

  constructor(req: NodeRequest, res: NodeResponse, topics: readonly string[], lastEventId: string | undefined) {
    this.req = req
    this.#res = res
    this.topics = topics
    this.lastEventId = lastEventId
  }

  isGone(): boolean {
    const res = this.#res
    // An Http2ServerResponse has no `destroyed` of its own: its stream has.
    return res.writableEnded || ('stream' in res ? res.stream.destroyed : res.destroyed)
  }

  refuse(refusal: Refusal): void {
    writeRefusal(this.#res, refusal)
  }

  accept(first: Uint8Array, stream: StreamHandle): Sink {
    const res = this.#res as TaggedResponse
    const sink = this.req.httpVersionMajor === 2 ? startHttp2(res as Http2ServerResponse, first) : startHttp1(res as ServerResponse, first)
    // One shared listener, not a closure per stream: the stream rides on the
    // response, which (unlike the socket) has no other 'close' listener to
    // turn its listener slot into an array.
    res[kStream] = stream
    res.on('close', onResponseClose)
    // A connection that went while the request waited has already emitted 'close'.
    if (this.isGone()) queueMicrotask(() => stream.detach())
    else if (sink instanceof Socket) detachLater(this.req as IncomingMessage, res as ServerResponse, stream)
    return sink
  }
}

function onResponseClose(this: TaggedResponse): void {
  this[kStream]?.detach()
}

const HTTP1_HEAD = `${Object.entries(STREAM_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')}Connection: close\r\n`

/**
 * Header names a stream sets itself, or that would break its framing,
 * so a value set earlier by a middleware is left out.
 */
const OWN_HEADERS = new Set(['content-type', 'cache-control', 'x-accel-buffering', 'connection', 'content-length', 'transfer-encoding', 'content-encoding', 'keep-alive'])

/**
 * HTTP/1: the response head is written straight to the socket, followed by a
 * close-delimited body (no chunked framing), so every frame is the same bytes
 * for every stream and nothing of the head stays in memory: `ServerResponse`
 * would keep its serialised head for the life of the connection, most of an
 * idle stream's cost. Headers set earlier with `res.setHeader` (CORS, say)
 * are kept. The socket itself is the sink.
 */
function startHttp1(res: ServerResponse, first: Uint8Array): Sink {
  // The handler refuses pipelined requests, so the socket is this response's alone.
  const socket = res.socket as Socket
  const head = `HTTP/1.1 200 OK\r\n${keptHeaders(res)}${HTTP1_HEAD}Date: ${new Date().toUTCString()}\r\n\r\n`
  // Node's HTTP parser answers a client's later bytes it cannot parse (a
  // garbage line, an oversized header) by writing `HTTP/1.1 400` to the
  // socket unless the in-flight response has sent its head: say it has, so
  // that such text never lands inside the event stream. The connection is
  // still closed on such an error, which ends the stream.
  ;(res as ServerResponse & { _headerSent: boolean })._headerSent = true
  socket.cork()
  socket.write(head)
  socket.write(first)
  socket.uncork()
  return socket
}

/** HTTP/2: the compatibility API sends the headers; frames go to the `Http2Stream`, which does its own framing. */
function startHttp2(res: Http2ServerResponse, first: Uint8Array): Sink {
  // The compatibility API merges headers set earlier; drop those that would break the stream.
  for (const name of OWN_HEADERS) res.removeHeader(name)
  res.writeHead(200, STREAM_HEADERS)
  res.write(first)
  return res.stream
}

/**
 * Bytes of a socket's writes under way that libuv has not handed to the
 * kernel yet (an HTTP/2 stream has no handle of its own: 0).
 */
function socketInFlight(sink: Sink): number {
  return (sink as Partial<Socket> & { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0
}

/**
 * Bytes the kernel holds for a socket unacknowledged, where Linux tells (see
 * {@link KernelQueues}). An HTTP/2 stream shares its session's socket, whose
 * count is not the stream's own: 0 (HTTP/2's flow control keeps what a
 * reader does not take, beyond the window it grants, in the process).
 */
function socketKernelHeld(sink: Sink): number {
  return sink instanceof Socket ? kernelQueues.unacked(sink) : 0
}

/** One for the process: the kernel's tables list every socket at once. */
const kernelQueues = new KernelQueues()

/**
 * Cuts a slow reader. An HTTP/1 socket is destroyed with one shared error:
 * without one, Node builds an error for each write the reader left queued,
 * and a reader of tiny frames leaves thousands (measured: 50 such cuts held
 * the event loop 2.7 s, against 24 ms with the shared error). The HTTP
 * server listens for a socket's errors already; an HTTP/2 stream may not,
 * so it is destroyed plainly.
 *
 * A TCP socket is reset, as `socket.resetAndDestroy()` does (which has no
 * room for the shared error): closed plainly, the kernel would keep what the
 * reader never took (megabytes over loopback) and retry it for minutes
 * before giving up, and the client would not see the close until it read
 * all that. Node's `resetAndClosing` flag is what `resetAndDestroy()` sets;
 * where the handle cannot reset (TLS, a pipe) the socket is destroyed plainly.
 */
function cutSink(sink: Sink): void {
  if (!(sink instanceof Socket)) {
    sink.destroy()
    return
  }
  const socket = sink as Socket & { _handle?: { reset?: unknown } | null; resetAndClosing?: boolean }
  if (typeof socket._handle?.reset === 'function') socket.resetAndClosing = true
  socket.destroy(SLOW_READER)
}

const SLOW_READER = new Error('patchwire: the stream was cut off as a slow reader (option maxBufferedBytes, or no progress for two heartbeats)')

/** Whether the response in flight on the connection is one of our streams (Node keeps it as `_httpMessage`). */
function isStreamSocket(socket: NodeRequest['socket']): boolean {
  return (socket as Socket & { _httpMessage?: TaggedResponse | null })._httpMessage?.[kStream] !== undefined
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

/** Answers `GET <path>/client.js`; nothing here can throw into the server. */
function serveClientScript(req: NodeRequest, res: NodeResponse): void {
  void answerClientScript(req.method as string, req.headers['if-none-match']).then(({ status, headers, body }) => {
    try {
      res.writeHead(status, headers)
      if (body === undefined) res.end()
      else res.end(body)
    } catch {
      res.destroy()
    }
  })
}

/** Answers a refused request at once, in plain text; nothing here can throw into the server. */
function refuse(fanout: Fanout<NodeRequest>, res: NodeResponse, refusal: Refusal): void {
  fanout.countRefusal(refusal.status)
  writeRefusal(res, refusal)
}

function writeRefusal(res: NodeResponse, refusal: Refusal): void {
  try {
    if (res.headersSent) {
      res.end()
      return
    }
    res.writeHead(refusal.status, refusalHeaders(refusal))
    res.end(refusal.message)
  } catch {
    res.destroy()
  }
}

import type { RevokeFilter } from '../broker/revoke.js'
import { Fanout } from '../core/fanout.js'
import type { HandlerStats } from '../core/stats.js'
import { currentTick } from '../core/tick.js'
import type { Refusal, Sink, StreamHandle, StreamOpening } from '../core/transport.js'
import { answerClientScript, isClientScriptPath } from './client-script.js'
import { resolveCloseOptions, resolveOptions, type CloseOptions, type StreamHandlerOptions } from './options.js'
import { pathOf, readStreamQuery } from './request.js'
import { NOT_FOUND, NOT_GET, refusalHeaders, STREAM_HEADERS } from './response.js'

/** Options of {@link createFetchHandler}: `authorize` and `snapshot` receive the Fetch `Request`. */
export type FetchHandlerOptions = StreamHandlerOptions<Request>

/**
 * A Fetch-API handler, as returned by {@link createFetchHandler}: for Bun
 * (`Bun.serve`), Deno (`Deno.serve`), Hono, Next.js route handlers and any
 * server that answers a `Request` with a `Response`.
 */
export interface FetchHandler {
  /** Answers one request: a `Response` whose body is the event stream, or a refusal. */
  (request: Request): Promise<Response>
  /** As `Handler.close()` of {@link createHandler}. */
  close(options?: CloseOptions): Promise<void>
  /** Current counters; see {@link HandlerStats}. */
  stats(): HandlerStats
  /** As `Handler.revoke()` of {@link createHandler}: ends this handler's matching streams, and returns how many. */
  revoke(filter: RevokeFilter): number
}

/**
 * Creates the SSE endpoint for Fetch-API servers, with the same options and
 * wire behaviour as {@link createHandler}. A stream's body is a
 * `ReadableStream` whose unread queue is the stream's backlog, so a stalled
 * reader is cut like a stalled socket; a client that leaves (the server
 * cancels the body, or, while the stream waits to open, the request's
 * `signal` aborts) is forgotten at once.
 *
 * @param options - see {@link StreamHandlerOptions}; all optional
 * @returns the {@link FetchHandler}
 * @throws TypeError for an unknown option or one of the wrong type; RangeError for a number out of range
 * @example
 * const events = createFetchHandler({ path: '/events', snapshot: () => state })
 * Deno.serve((request) => events(request))
 */
export function createFetchHandler(options: FetchHandlerOptions = {}): FetchHandler {
  const resolved = resolveOptions(options, 'createFetchHandler')
  const fanout = new Fanout<Request>(resolved)
  const refuse = (refusal: Refusal): Promise<Response> => {
    fanout.countRefusal(refusal.status)
    return Promise.resolve(refusalResponse(refusal))
  }

  const handler = ((request: Request) => {
    if (resolved.serveClient && (request.method === 'GET' || request.method === 'HEAD') && isClientScriptPath(pathOf(request.url), resolved.path)) {
      return answerClientScript(request.method, request.headers.get('if-none-match')).then(({ status, headers, body }) => new Response(body ?? null, { status, headers }))
    }
    if (resolved.path !== undefined && pathOf(request.url) !== resolved.path) return refuse(NOT_FOUND)
    if (request.method !== 'GET') return refuse(NOT_GET)
    const query = readStreamQuery(request.url, resolved)
    if ('status' in query) return refuse(query)
    // The header, which a reconnecting EventSource sends by itself, wins over the query.
    const header = request.headers.get('last-event-id')
    if (header !== null && header !== '') query.lastEventId = header
    return new Promise<Response>((resolve) => fanout.open(new FetchOpening(request, query.topics, query.lastEventId, resolve)))
  }) as FetchHandler

  handler.close = (closeOptions = {}) => fanout.close(resolveCloseOptions(closeOptions))
  handler.stats = () => fanout.stats()
  handler.revoke = (filter) => fanout.revoke(filter)
  return handler
}

function refusalResponse(refusal: Refusal): Response {
  return new Response(refusal.message, { status: refusal.status, headers: refusalHeaders(refusal) })
}

/**
 * The reason a stream's body is errored with when the server cuts it (a
 * slow reader, or `close()` with a backlog), which is how a Fetch server is
 * told to drop the connection and what it had queued. A string, not an
 * Error: Bun and Deno log the reason of every errored body, and a stack
 * trace per cut reader would flood the log.
 */
const CUT_REASON = 'patchwire: event stream cut by the server (a reader too slow for maxBufferedBytes, or handler.close()); the client reconnects and resumes'

/** One Fetch request on its way to becoming a stream. */
class FetchOpening implements StreamOpening<Request> {
  readonly req: Request
  readonly topics: readonly string[]
  readonly lastEventId: string | undefined
  readonly #resolve: (response: Response) => void
  /** The event-loop turn the request arrived in. */
  readonly #tick = currentTick()

  constructor(req: Request, topics: readonly string[], lastEventId: string | undefined, resolve: (response: Response) => void) {
    this.req = req
    this.topics = topics
    this.lastEventId = lastEventId
    this.#resolve = resolve
  }

  isGone(): boolean {
    // A server sees a client leave in a later turn than its request. Not
    // reading `signal` before then (so never, for an opening that waits for
    // nothing) also spares the warning Deno prints once a request whose
    // signal was read ends well: that it aborts such signals too.
    if (currentTick() === this.#tick || !this.req.signal.aborted) return false
    // The core answers nothing to a client that left, but the server still
    // awaits a Response: settle it, with the status servers log for this.
    this.#resolve(new Response(null, { status: 499 }))
    return true
  }

  refuse(refusal: Refusal): void {
    this.#resolve(refusalResponse(refusal))
  }

  accept(first: Uint8Array, stream: StreamHandle): Sink {
    const sink = new QueueSink(stream)
    // A high-water mark of 0: the queue's size is exactly what the server
    // has not taken yet, which `desiredSize` tells (as minus that).
    const body = new ReadableStream<Uint8Array>(sink, new ByteLengthQueuingStrategy({ highWaterMark: 0 }))
    sink.write(first)
    this.#resolve(new Response(body, { status: 200, headers: STREAM_HEADERS }))
    return sink
  }
}

/**
 * A stream's end of its `ReadableStream` body, and that body's source. The
 * backlog is the stream's queue: the server takes a chunk only as its
 * connection accepts it (Bun, Deno and `@hono/node-server` all wait for the
 * socket), so a stalled reader shows as a growing queue and is cut like a
 * stalled socket. A client that leaves is seen as the body's cancellation,
 * which every Fetch server does when the connection closes: the request's
 * `signal` is not used for it, as Deno aborts it on success too.
 */
class QueueSink implements Sink, UnderlyingDefaultSource<Uint8Array> {
  readonly #stream: StreamHandle
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined
  #closed = false

  constructor(stream: StreamHandle) {
    this.#stream = stream
  }

  get writableLength(): number {
    // An errored stream's desiredSize is null; a closed one's is 0.
    const size = this.#closed ? 0 : (this.#controller?.desiredSize ?? 0)
    return size < 0 ? -size : 0
  }

  /** Called by the `ReadableStream` constructor. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller
  }

  /** The server will read no more: the client left. */
  cancel(): void {
    this.#closed = true
    this.#stream.detach()
  }

  write(chunk: Uint8Array): void {
    if (!this.#closed) this.#controller?.enqueue(chunk)
  }

  end(): void {
    if (this.#finish()) this.#controller?.close()
  }

  destroy(): void {
    if (this.#finish()) this.#controller?.error(CUT_REASON)
  }

  #finish(): boolean {
    if (this.#closed) return false
    this.#closed = true
    // Nothing more is written, so the stream is forgotten now; after the
    // core's current loop, which may be walking the stream's topics.
    queueMicrotask(() => this.#stream.detach())
    return true
  }
}

import { Fanout, type HandlerStats } from '../core/fanout.js'
import type { Stream } from '../core/stream.js'
import type { Refusal, Sink, StreamOpening } from '../core/transport.js'
import type { CloseOptions } from './node.js'
import { resolveOptions, type StreamHandlerOptions } from './options.js'
import { pathOf, readStreamQuery } from './request.js'

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
}

/**
 * Creates the SSE endpoint for Fetch-API servers, with the same options and
 * wire behaviour as {@link createHandler}. A stream's body is a
 * `ReadableStream` whose unread queue is the stream's backlog, so a stalled
 * reader is cut like a stalled socket; a client that leaves (the request's
 * `signal` aborts, or the body is cancelled) is forgotten at once.
 *
 * @param options - see {@link StreamHandlerOptions}; all optional
 * @returns the {@link FetchHandler}
 * @throws TypeError for an unknown option or one of the wrong type; RangeError for a number out of range
 * @example
 * const events = createFetchHandler({ path: '/events', snapshot: () => state })
 * Bun.serve({ fetch: (request) => events(request) })
 */
export function createFetchHandler(options: FetchHandlerOptions = {}): FetchHandler {
  const resolved = resolveOptions(options, 'createFetchHandler')
  const fanout = new Fanout<Request>(resolved)
  const refuse = (refusal: Refusal): Promise<Response> => {
    fanout.countRefusal(refusal.status)
    return Promise.resolve(refusalResponse(refusal))
  }

  const handler = ((request: Request) => {
    if (resolved.path !== undefined && pathOf(request.url) !== resolved.path) return refuse(NOT_FOUND)
    if (request.method !== 'GET') return refuse(NOT_GET)
    const query = readStreamQuery(request.url, resolved)
    if ('status' in query) return refuse(query)
    const header = request.headers.get('last-event-id')
    if (header !== null && header !== '') query.lastEventId = header
    return new Promise<Response>((resolve) => fanout.open(new FetchOpening(request, query.topics, query.lastEventId, resolve)))
  }) as FetchHandler

  handler.close = (closeOptions = {}) => {
    const spreadMs = closeOptions.reconnectSpreadMs ?? DEFAULT_RECONNECT_SPREAD_MS
    if (typeof spreadMs !== 'number' || !(spreadMs >= 0 && spreadMs <= 2 ** 31 - 1)) {
      throw new RangeError(`handler.close: option "reconnectSpreadMs" must be a number of milliseconds from 0 to ${2 ** 31 - 1}, got ${String(spreadMs)}`)
    }
    return fanout.close(spreadMs)
  }
  handler.stats = () => fanout.stats()
  return handler
}

const DEFAULT_RECONNECT_SPREAD_MS = 10_000
const NOT_FOUND: Refusal = { status: 404, message: 'Not Found' }
const NOT_GET: Refusal = { status: 405, message: 'Method Not Allowed: event streams are opened with GET' }
const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
}

function refusalResponse({ status, message }: Refusal): Response {
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }
  if (status === 405) headers['Allow'] = 'GET'
  return new Response(message, { status, headers })
}

/** One Fetch request on its way to becoming a stream. */
class FetchOpening implements StreamOpening<Request> {
  readonly req: Request
  readonly topics: readonly string[]
  readonly lastEventId: string | undefined
  readonly #resolve: (response: Response) => void

  constructor(req: Request, topics: readonly string[], lastEventId: string | undefined, resolve: (response: Response) => void) {
    this.req = req
    this.topics = topics
    this.lastEventId = lastEventId
    this.#resolve = resolve
  }

  isGone(): boolean {
    return this.req.signal.aborted
  }

  refuse(refusal: Refusal): void {
    this.#resolve(refusalResponse(refusal))
  }

  accept(first: Uint8Array, stream: Stream): Sink {
    const sink = new QueueSink(stream)
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        sink.controller = controller
        controller.enqueue(first)
      },
      cancel() {
        sink.closed = true
        stream.detach()
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }))
    this.req.signal.addEventListener('abort', () => sink.destroy(), { once: true })
    this.#resolve(new Response(body, { status: 200, headers: STREAM_HEADERS }))
    return sink
  }
}

/**
 * A stream's end of a `ReadableStream`: what the reader has not taken yet
 * is its queue, read from `desiredSize` (a high-water mark of 0 makes it
 * minus the queued bytes).
 */
class QueueSink implements Sink {
  readonly #stream: Stream
  controller: ReadableStreamDefaultController<Uint8Array> | undefined
  closed = false

  constructor(stream: Stream) {
    this.#stream = stream
  }

  get writableLength(): number {
    const size = this.closed ? 0 : this.controller?.desiredSize ?? 0
    return size < 0 ? -size : 0
  }

  write(chunk: Uint8Array): void {
    if (this.closed) return
    this.controller?.enqueue(chunk)
  }

  end(): void {
    if (this.#finish()) this.controller?.close()
  }

  destroy(): void {
    if (this.#finish()) this.controller?.error(new Error('patchwire: the stream was closed by the server'))
  }

  #finish(): boolean {
    if (this.closed) return false
    this.closed = true
    // The body will not be read any further: the stream is forgotten now.
    queueMicrotask(() => this.#stream.detach())
    return true
  }
}

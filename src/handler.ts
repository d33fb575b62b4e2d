import { PatchwireError } from './errors.js'
import { Fanout } from './fanout.js'
import { resolveOptions, type HandlerOptions, type ResolvedOptions } from './options.js'
import { pathOf, readStreamRequest, type Refusal, type StreamRequest } from './request.js'
import type { Request, Response } from './stream.js'

/** Counters of a handler, from {@link Handler.stats}. */
export interface HandlerStats {
  /** Open streams. */
  connections: number
  /** Topics the handler holds a broker subscription for, lingering ones included. */
  topics: number
  /** Streams cut off as slow readers since the handler was created (see `maxBufferedBytes`). */
  dropped: number
}

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
  (req: Request, res: Response, next?: (error?: unknown) => void): void
  /**
   * Ends every open stream (cutting any whose reader has not taken what it
   * was sent, so that nothing holds `server.close()` open), stops the
   * heartbeat, lets go of every topic; later requests get 503.
   */
  close(): Promise<void>
  /** Current counters; see {@link HandlerStats}. */
  stats(): HandlerStats
}

/**
 * Creates the SSE endpoint: each accepted request becomes one stream of a
 * topic's patches.
 *
 * @param options - see {@link HandlerOptions}; all optional
 * @returns the {@link Handler}
 * @throws TypeError for an unknown option or one of the wrong type; RangeError for a number out of range
 * @example
 * const events = createHandler({ path: '/dashboard/__events', topicPrefix: 'dashboard:' })
 * http.createServer((req, res) => events(req, res, () => app(req, res))).listen(3000)
 */
export function createHandler(options: HandlerOptions = {}): Handler {
  const resolved = resolveOptions(options)
  const fanout = new Fanout(resolved)
  let closed = false

  const handler = ((req, res, next) => {
    if (resolved.path !== undefined && pathOf(req.url ?? '') !== resolved.path) {
      if (next !== undefined) next()
      else refuse(res, { status: 404, message: 'Not Found' })
      return
    }
    if (res.headersSent) {
      // Whatever sent it owns the response; a second head would corrupt the connection.
      resolved.onError(new PatchwireError('ERR_PATCHWIRE_RESPONSE', 'the response head was already sent (by a middleware?), so no event stream could be opened; give the handler the request before anything writes to the response'))
      res.end()
      return
    }
    const accepted = accept(req, res, resolved, closed)
    if ('status' in accepted) {
      refuse(res, accepted)
      return
    }
    const { topic, lastEventId } = accepted
    if (resolved.authorize === undefined) {
      start(req, res, topic, lastEventId)
      return
    }
    let verdict: boolean | Promise<boolean>
    try {
      verdict = resolved.authorize(req, topic)
      // Promise.resolve adopts any thenable without letting a throwing `then` escape.
      if (typeof verdict !== 'boolean') verdict = Promise.resolve(verdict)
    } catch (error) {
      failAuthorize(res, topic, error)
      return
    }
    if (typeof verdict === 'boolean') {
      if (verdict) start(req, res, topic, lastEventId)
      else refuse(res, FORBIDDEN)
      return
    }
    verdict.then(
      (allowed) => {
        // The client may have gone, or the handler closed, while we waited.
        if (isGone(res)) return
        if (closed) refuse(res, CLOSED)
        else if (allowed === true) start(req, res, topic, lastEventId)
        else refuse(res, FORBIDDEN)
      },
      (error: unknown) => failAuthorize(res, topic, error),
    )
  }) as Handler

  function start(req: Request, res: Response, topic: string, lastEventId: string | undefined): void {
    try {
      const pending = fanout.prepare(topic)
      if (pending === undefined) {
        fanout.open(req, res, topic, lastEventId)
        return
      }
      pending.then(
        () => {
          if (isGone(res)) return
          if (closed) refuse(res, CLOSED)
          else start(req, res, topic, lastEventId)
        },
        // The fan-out reported the failure once for every waiting request.
        () => refuse(res, closed ? CLOSED : FAILED),
      )
    } catch (error) {
      resolved.onError(error instanceof PatchwireError ? error : new PatchwireError('ERR_PATCHWIRE_BROKER', `could not open a stream on topic "${topic}"`, { cause: error }))
      refuse(res, FAILED)
    }
  }

  function failAuthorize(res: Response, topic: string, error: unknown): void {
    resolved.onError(new PatchwireError('ERR_PATCHWIRE_AUTHORIZE', `authorize threw for topic "${topic}"; the request was answered 500`, { cause: error }))
    if (!isGone(res)) refuse(res, FAILED)
  }

  handler.close = async () => {
    closed = true
    fanout.close()
  }
  handler.stats = () => fanout.stats()
  return handler
}

const FORBIDDEN: Refusal = { status: 403, message: 'Forbidden' }
const FAILED: Refusal = { status: 500, message: 'Internal Server Error' }
const CLOSED: Refusal = { status: 503, message: 'Service Unavailable: the event stream is shutting down' }

/** Reads what the request asks for, or why it is refused before any `authorize`. */
function accept(req: Request, res: Response, options: ResolvedOptions, closed: boolean): StreamRequest | Refusal {
  if (closed) return CLOSED
  if (req.method !== 'GET') return { status: 405, message: 'Method Not Allowed: event streams are opened with GET' }
  // A pipelined request waits behind the response before it, which for
  // another stream never ends: it could neither stream nor be told it closed.
  if (res.socket === null) return { status: 400, message: 'Bad Request: an event stream cannot be pipelined behind another request; open it on its own connection' }
  const parsed = readStreamRequest(req.url ?? '', options.maxTopicLength)
  if ('status' in parsed) return parsed
  if (!parsed.topic.startsWith(options.topicPrefix)) return FORBIDDEN
  // The header, which a reconnecting EventSource sends by itself, wins over the query.
  const header = req.headers['last-event-id']
  if (typeof header === 'string' && header !== '') parsed.lastEventId = header
  return parsed
}

/** Answers a refused request at once, in plain text; nothing here can throw into the server. */
function refuse(res: Response, { status, message }: Refusal): void {
  try {
    if (res.headersSent) {
      res.end()
      return
    }
    const headers: Record<string, string | number> = {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(message),
      'Cache-Control': 'no-store',
    }
    if (status === 405) headers['Allow'] = 'GET'
    res.writeHead(status, headers)
    res.end(message)
  } catch {
    res.destroy()
  }
}

/** Whether the client went, or the response ended, while the request waited. */
function isGone(res: Response): boolean {
  // An Http2ServerResponse has no `destroyed` of its own: its stream has.
  return res.writableEnded || ('stream' in res ? res.stream.destroyed : res.destroyed)
}

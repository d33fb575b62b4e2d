import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { StreamHandle } from '../core/transport.js'

/**
 * Detaching an HTTP/1 stream's socket from `node:http` once its head is
 * out, so that an idle stream costs its socket and little else.
 *
 * After the head, a stream never needs `node:http` again: its frames go
 * straight to the socket, and the response never ends. Yet `node:http`
 * keeps, for the life of every connection, its HTTP parser (a native object
 * with its own async resource), the request and the response, and a state
 * object with a handful of closures bound to them: measured at 15 000 idle
 * streams, that is most of the 4.6 KB of heap each cost. Detached, the
 * socket is a plain `net.Socket`: the response and the request (unless the
 * stream keeps it, for `snapshot`) and the parser are garbage.
 *
 * This is what Node itself does to a socket it hands over on `upgrade` (see
 * `onParserExecuteCommon` in Node's `lib/_http_server.js`): the response lets
 * go of the socket (`res.detachSocket`), the server's listeners come off it,
 * and the parser stops consuming it and is freed. It relies on Node's
 * internals: each one is looked for first (the listeners by the names
 * Node 20 gives them, the parser's methods, the socket's `_httpMessage`),
 * and where anything is not as expected the stream stays
 * on `node:http` as it was before, which is always correct, only heavier.
 * Both paths are tested (`test/detach.test.ts` forces the fallback with
 * {@link setDetaching}).
 *
 * What `node:http` did for the socket that a stream still needs is done
 * here, with shared listeners (no closure per stream): the stream is told
 * when the socket closes; a client that half-closes is answered with
 * `end()`, as the server did; any byte the client sends after its request
 * (another request pipelined behind the stream, or garbage) cuts the
 * connection, as the parser's error or the pipelining refusal did; and
 * `server.closeAllConnections()`, which finds connections through their
 * parsers, still ends detached streams. The server's `'error'` and
 * `'timeout'` listeners, shared functions, stay: a slow reader's cut still
 * reaches a `'clientError'` listener.
 * @internal
 */

/**
 * Detaches `res`'s socket from `node:http` a turn later, once the parser
 * is no longer on the stack (closing a parser inside its own callback
 * crashes the process) and whatever the client sent with the request has
 * been parsed. Nothing happens when the socket closes first, or when
 * anything is not as expected: the stream then stays on `node:http`, whose
 * response's `'close'` it listens to. The caller's listener for that is
 * expected to be the response's only `'close'` listener: another one means
 * someone else waits for it, and the stream stays.
 * @param stream - told when the detached socket closes
 * @internal
 */
export function detachLater(req: IncomingMessage, res: ServerResponse, stream: StreamHandle): void {
  if (!enabled) return
  // One immediate for every stream accepted in a turn, not one per stream.
  if (pending.length === 0) setImmediate(detachPending)
  pending.push({ req, res, stream })
}

/**
 * Turns detaching on or off, for tests of both paths; on by default.
 * @internal
 */
export function setDetaching(on: boolean): void {
  enabled = on
}

let enabled = true

interface Pending {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly stream: StreamHandle
}

let pending: Pending[] = []

function detachPending(): void {
  const batch = pending
  pending = []
  for (const { req, res, stream } of batch) {
    const shape = detachable(req, res)
    if (shape !== undefined) detach(shape, stream)
  }
}

/** The sockets, parsers and servers as `node:http` leaves them (Node 20's shape; every part is optional to the checks). */
type HttpSocket = Socket & {
  _httpMessage?: unknown
  _paused?: boolean
  parser?: HttpParser | null
  server?: TrackedServer | null
  [kStream]?: StreamHandle
}

interface HttpParser {
  incoming?: unknown
  _consumed?: boolean
  unconsume?: () => void
  remove?: () => void
  close?: () => void
  socket?: unknown
}

type TrackedServer = Server & { [kDetached]?: Set<Socket>; httpAllowHalfOpen?: boolean }

type Listener = Parameters<Socket['removeListener']>[1]

/** The HTTP server's per-connection listeners, by event, as Node names them. */
const SERVER_LISTENERS: Readonly<Record<string, string>> = {
  data: 'bound socketOnData',
  end: 'bound socketOnEnd',
  close: 'bound socketOnClose',
  drain: 'bound socketOnDrain',
  resume: 'onSocketResume',
  pause: 'onSocketPause',
}

/** The methods `node:http` overrides on each socket (to unconsume the parser on a `'data'` listener). */
const OVERRIDDEN = ['on', 'addListener', 'prependListener', 'setEncoding'] as const

interface Shape {
  readonly res: ServerResponse & { detachSocket: (socket: Socket) => void }
  readonly socket: HttpSocket
  readonly parser: HttpParser & { close: () => void }
  readonly listeners: ReadonlyArray<readonly [string, Listener]>
}

/**
 * Everything detaching touches, when it is all there and as expected;
 * undefined otherwise (nothing has been changed yet).
 */
function detachable(req: IncomingMessage, res: ServerResponse): Shape | undefined {
  const socket = res.socket as HttpSocket | null
  if (!(socket instanceof Socket) || socket.destroyed || socket._httpMessage !== res || socket._paused === true) return undefined
  if (typeof (res as Partial<Shape['res']>).detachSocket !== 'function') return undefined
  const parser = socket.parser
  // The request was read whole, and nothing behind it: a pipelined request would be the parser's `incoming`.
  if (parser == null || parser.incoming !== req || !req.complete || typeof parser.close !== 'function') return undefined
  if (parser._consumed === true && typeof parser.unconsume !== 'function') return undefined
  // Someone else waits for the response's or the request's end: only `node:http` would tell them.
  if (res.listenerCount('close') !== 1 || req.listenerCount('close') !== 0 || req.listenerCount('aborted') !== 0) return undefined
  const listeners: [string, Listener][] = []
  for (const [event, name] of Object.entries(SERVER_LISTENERS)) {
    const found = socket.listeners(event).filter((listener) => listener.name === name)
    if (found.length !== 1) return undefined
    listeners.push([event, found[0] as Listener])
  }
  return { res: res as Shape['res'], socket, parser: parser as Shape['parser'], listeners }
}

function detach({ res, socket, parser, listeners }: Shape, stream: StreamHandle): void {
  res.detachSocket(socket)
  for (const [event, listener] of listeners) socket.removeListener(event, listener)
  if (parser._consumed === true) (parser.unconsume as () => void)()
  parser._consumed = false
  // Out of the server's list of connections (the header and request timeouts), then freed.
  parser.remove?.()
  // Its callbacks are bound to the connection's state, which holds the
  // request: let go of them as Node's `cleanParser` does, in case something
  // still holds the parser (parsers come from a pool, so an earlier, closed
  // connection's listeners may).
  const fields = parser as unknown as Record<PropertyKey, unknown>
  for (const key of Reflect.ownKeys(parser)) if (typeof fields[key] === 'function') fields[key] = null
  parser.socket = null
  parser.incoming = null
  parser.close()
  socket.parser = null
  // Back to the prototype's methods, and the closures go. Assigned, not
  // deleted: deleting a property turns the socket's properties into a
  // dictionary, measured at 1.6 KB more per socket.
  const prototype = Object.getPrototypeOf(socket) as Record<string, unknown>
  for (const method of OVERRIDDEN) if (Object.hasOwn(socket, method)) (socket as unknown as Record<string, unknown>)[method] = prototype[method]

  socket[kStream] = stream
  socket.on('close', onDetachedClose)
  socket.on('end', onDetachedEnd)
  // Also keeps the socket flowing, as the parser did, so that the client's FIN is seen.
  socket.on('data', onDetachedData)
  socket.resume()
  track(socket)
}

const kStream = Symbol('patchwire.detachedStream')
const kDetached = Symbol('patchwire.detached')

function onDetachedClose(this: HttpSocket): void {
  this.server?.[kDetached]?.delete(this)
  this[kStream]?.detach()
}

/** The client half-closed: end our side too, as `node:http` does unless the server allows half-open connections. */
function onDetachedEnd(this: HttpSocket): void {
  if (this.server?.httpAllowHalfOpen !== true) this.end()
}

/**
 * The client sent more after its request: another request, which would
 * wait for ever behind the stream, or garbage. Blank lines alone are
 * tolerated between requests (RFC 9112 section 2.2), so they are here too.
 */
function onDetachedData(this: HttpSocket, chunk: Buffer): void {
  for (const byte of chunk) {
    if (byte !== 0x0d && byte !== 0x0a) {
      this.destroy()
      return
    }
  }
}

/**
 * `server.closeAllConnections()` finds connections through their parsers,
 * which detached sockets no longer have: the server's method is wrapped,
 * once, to end those too.
 */
function track(socket: HttpSocket): void {
  const server = socket.server
  if (server == null || typeof server.closeAllConnections !== 'function') return
  let detached = server[kDetached]
  if (detached === undefined) {
    detached = new Set()
    server[kDetached] = detached
    const closeAll = server.closeAllConnections
    server.closeAllConnections = function closeAllConnections(this: TrackedServer): void {
      closeAll.call(this)
      for (const s of [...(this[kDetached] ?? [])]) s.destroy()
    }
  }
  detached.add(socket)
}

/**
 * What the fan-out core needs from a transport (node:http, the Fetch API):
 * the core knows nothing of requests and responses, only of these.
 */

/** Where a stream's bytes go: a socket, an HTTP/2 stream, a `ReadableStream`'s queue. */
export interface Sink {
  /** Queues bytes for the client. */
  write(chunk: Uint8Array): void
  /**
   * The backlog: bytes written and not yet taken by the client's side (the
   * kernel's send buffer, or a `ReadableStream`'s reader). The slow-reader
   * cut-off is decided on it. Named as Node names it, so that a socket or an
   * `Http2Stream` is a sink as it is, with no wrapper per stream.
   */
  readonly writableLength: number
  /** Ends the stream once what was written is sent. */
  end(): void
  /** Closes the connection at once, dropping what is unsent. */
  destroy(): void
}

/**
 * How much of a sink's backlog the runtime holds in writes already under
 * way, for the stall check: a runtime counts a write as pending until all of
 * it is sent, so a reader draining one large write shows no progress in
 * `writableLength` until the end. Node: libuv's write queue. One function
 * per transport, not per stream; `0` where the transport cannot tell.
 */
export type InFlightProbe = (sink: Sink) => number

/** What a transport adds for its sinks, one function each per transport (not per stream). */
export interface SinkHooks {
  /** See {@link InFlightProbe}; 0 when absent. */
  readonly inFlight?: InFlightProbe
  /**
   * Closes a slow reader's sink at once. Its cost must not grow with what
   * the reader left queued; `sink.destroy()` when absent.
   */
  readonly cut?: (sink: Sink) => void
}

/**
 * What a transport holds of an open stream: the one call it makes on it,
 * when the connection closes.
 */
export interface StreamHandle {
  /** Forgets the stream: its topics, its place in the heartbeat; safe to call twice. */
  detach(): void
}

/** A request the handler refuses, with its status and plain-text reason. */
export interface Refusal {
  readonly status: 400 | 403 | 404 | 405 | 414 | 500 | 503
  readonly message: string
}

/**
 * One request for a stream, as a transport hands it to the core once it
 * has read the topics from the URL.
 * @typeParam Req - the transport's request type, passed to `authorize` and `snapshot`
 */
export interface StreamOpening<Req> {
  readonly req: Req
  /** The topics, already checked for form, length and prefix. */
  readonly topics: readonly string[]
  /** The position to resume from: the `Last-Event-ID` header, else `?lastEventId=`. */
  readonly lastEventId: string | undefined
  /** Whether the client left, or the response ended, while the request waited. */
  isGone(): boolean
  /** Answers with an error status; nothing of a stream was sent. */
  refuse(refusal: Refusal): void
  /**
   * Sends the `200 text/event-stream` head followed by `first`, and returns
   * the sink the stream writes to from then on. The transport calls
   * `stream.detach()` as soon as the connection closes.
   */
  accept(first: Uint8Array, stream: StreamHandle): Sink
}

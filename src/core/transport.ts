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

/**
 * Bytes the kernel holds for a sink that its client has not acknowledged,
 * for the stall check, where the platform tells (Node on Linux, see
 * `src/http/kernel-queue.ts`): the kernel's send buffer takes a whole
 * replay over loopback (it grows to megabytes there), so a reader that
 * takes none of it leaves no backlog for `writableLength` to show. Telling
 * costs a read of the kernel's tables now and then, so the core asks only
 * about streams that got no frame in the last heartbeat interval: one that
 * keeps getting frames fills the kernel's buffer, and then its backlog
 * shows its stall. One function per transport; `0` where it cannot tell.
 */
export type KernelProbe = (sink: Sink) => number

/** What a transport adds for its sinks, one function each per transport (not per stream). */
export interface SinkHooks {
  /** See {@link InFlightProbe}; 0 when absent. */
  readonly inFlight?: InFlightProbe
  /** See {@link KernelProbe}; 0 when absent. */
  readonly kernelHeld?: KernelProbe
  /**
   * Closes a slow reader's sink at once. Its cost must not grow with what
   * the reader left queued; `sink.destroy()` when absent.
   */
  readonly cut?: (sink: Sink) => void
}

/**
 * The stream a sink feeds, as its transport sees it: all a transport does
 * with it is say that the connection closed. An interface of its own, so
 * that transports, and these declarations as published, do not depend on
 * the core's stream class.
 */
export interface StreamHandle {
  /** The connection closed: the core forgets the stream. Safe to call twice. */
  detach(): void
}

/** A request the handler refuses, with its status and plain-text reason. */
export interface Refusal {
  readonly status: 400 | 403 | 404 | 405 | 414 | 429 | 500 | 503
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

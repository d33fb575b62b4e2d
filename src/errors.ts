/**
 * Stable codes of {@link PatchwireError}. They are API: match on `err.code`,
 * never on the message.
 *
 * - `ERR_PATCHWIRE_AUTHORIZE`: the handler's `authorize` or `identify`
 *   threw or rejected, or answered something of the wrong shape (an object
 *   that is not `{ until }` with a valid time, an identity that is not a
 *   non-empty string); the request was answered 500.
 * - `ERR_PATCHWIRE_LISTENER`: a broker listener threw while a message was
 *   delivered; the other listeners still got it.
 * - `ERR_PATCHWIRE_PAYLOAD`: a broker delivered a payload that cannot be
 *   framed (it contains CR or LF); it was dropped and the topic's streams were reset.
 * - `ERR_PATCHWIRE_BROKER`: the broker could not take or deliver a message
 *   (for example Redis is unreachable).
 * - `ERR_PATCHWIRE_SNAPSHOT`: the handler's `snapshot` threw, rejected or
 *   returned something that is not JSON; an opening stream was answered 500,
 *   an open one (after a reset) was ended so that it reconnects.
 * - `ERR_PATCHWIRE_RESPONSE`: the handler was given a response whose head
 *   was already sent, so it could not open a stream; it ended the response.
 * - `ERR_PATCHWIRE_PATCH` (client): `applyPatch` could not apply an op (bad
 *   path or index, missing member, failed `test`, unknown op); thrown as a
 *   `PatchError`, and the target is left exactly as it was.
 * - `ERR_PATCHWIRE_FRAME` (client): a `patch` frame was not a JSON array of op
 *   tuples; it was skipped and the subscription goes on.
 * - `ERR_PATCHWIRE_CALLBACK` (client): an `onPatch`, `onReset` or
 *   `onStateChange` callback threw; the other subscribers still got the event.
 * - `ERR_PATCHWIRE_DISCONNECTED` (client): the stream dropped; the
 *   `EventSource` reconnects by itself and resumes (state `connecting`).
 * - `ERR_PATCHWIRE_REFUSED` (client): the server refused the stream (an HTTP
 *   error status such as 400 or 403) and the `EventSource` gave up (state
 *   `closed`); subscribe again to retry.
 * - `ERR_PATCHWIRE_RESET` (client): the server reset the stream outside a
 *   browser and no `onReset` was given, so nothing reloaded the state.
 */
export type PatchwireErrorCode =
  | 'ERR_PATCHWIRE_AUTHORIZE'
  | 'ERR_PATCHWIRE_LISTENER'
  | 'ERR_PATCHWIRE_PAYLOAD'
  | 'ERR_PATCHWIRE_BROKER'
  | 'ERR_PATCHWIRE_SNAPSHOT'
  | 'ERR_PATCHWIRE_RESPONSE'
  | 'ERR_PATCHWIRE_PATCH'
  | 'ERR_PATCHWIRE_FRAME'
  | 'ERR_PATCHWIRE_CALLBACK'
  | 'ERR_PATCHWIRE_DISCONNECTED'
  | 'ERR_PATCHWIRE_REFUSED'
  | 'ERR_PATCHWIRE_RESET'

/**
 * A runtime failure reported by patchwire. Programmer errors (bad options,
 * bad arguments) are thrown as `TypeError` or `RangeError` instead.
 */
export class PatchwireError extends Error {
  override name = 'PatchwireError'
  /** Stable code; see {@link PatchwireErrorCode}. */
  readonly code: PatchwireErrorCode

  /**
   * @param code - the stable error code
   * @param message - what happened and what to do about it
   * @param options - `cause`: the original error
   */
  constructor(code: PatchwireErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/**
 * Where patchwire reports runtime failures when no `onError` is given:
 * on stderr, because a failure that nobody sees is a failure twice.
 * @internal
 */
export function reportToConsole(error: PatchwireError): void {
  console.error(`patchwire: ${error.code}: ${error.message}`, error.cause ?? '')
}

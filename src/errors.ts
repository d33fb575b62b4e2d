/**
 * Stable codes of {@link PatchwireError}. They are API: match on `err.code`,
 * never on the message.
 *
 * - `ERR_PATCHWIRE_AUTHORIZE`: the handler's `authorize` threw or rejected;
 *   the request was answered 500.
 * - `ERR_PATCHWIRE_LISTENER`: a broker listener threw while a message was
 *   delivered; the other listeners still got it.
 * - `ERR_PATCHWIRE_PAYLOAD`: a broker delivered a payload that cannot be
 *   framed (it contains CR or LF); it was dropped and the topic's streams were reset.
 * - `ERR_PATCHWIRE_BROKER`: the broker could not take or deliver a message
 *   (for example Redis is unreachable).
 */
export type PatchwireErrorCode =
  | 'ERR_PATCHWIRE_AUTHORIZE'
  | 'ERR_PATCHWIRE_LISTENER'
  | 'ERR_PATCHWIRE_PAYLOAD'
  | 'ERR_PATCHWIRE_BROKER'

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

import { retryFrame } from '../protocol/frame.js'

/**
 * The `retry:` frame of one stream, on open and when its access expires:
 * `retryMs` spread over 0.75 to 1.25 ×, so that clients dropped together
 * (or whose access ends at the same instant) do not all come back at once.
 * @internal
 */
export function spreadRetryFrame(retryMs: number): string {
  return retryFrame(Math.round(retryMs * (0.75 + Math.random() * 0.5)))
}

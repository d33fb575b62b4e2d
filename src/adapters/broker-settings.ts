import { reportToConsole, type PatchwireError } from '../errors.js'

/** The options every broker adapter with a history takes alike. @internal */
export interface HistoryOptions {
  history?: number
  historyMs?: number
  publishTimeoutMs?: number
  onError?: (error: PatchwireError) => void
}

/** {@link HistoryOptions}, checked, with their defaults. @internal */
export interface HistorySettings {
  readonly history: number
  readonly historyMs: number
  readonly publishTimeoutMs: number
  readonly onError: (error: PatchwireError) => void
}

const DEFAULT_HISTORY = 1000
const DEFAULT_HISTORY_MS = 300_000
const DEFAULT_PUBLISH_TIMEOUT_MS = 5000
// setTimeout fires at once (after 1 ms) for any delay above this.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Checks the history, timeout and error options of a broker adapter, so
 * that `createRedisBroker` and `createPostgresBroker` refuse the same
 * mistakes with the same words.
 * @param broker - the function the options were given to, for the messages
 * @throws RangeError when `history` is not a whole number from 0,
 * `historyMs` not a whole number of milliseconds from 1, or
 * `publishTimeoutMs` not a positive number up to 2147483647
 * @throws TypeError when `onError` is not a function
 * @internal
 */
export function resolveHistorySettings(broker: string, options: HistoryOptions): HistorySettings {
  const history = options.history ?? DEFAULT_HISTORY
  if (!Number.isSafeInteger(history) || history < 0) {
    throw new RangeError(`${broker}: history must be a whole number of messages per topic, 0 or more, got ${String(history)}`)
  }
  const historyMs = options.historyMs ?? DEFAULT_HISTORY_MS
  if (!Number.isSafeInteger(historyMs) || historyMs < 1) {
    throw new RangeError(`${broker}: historyMs must be a whole number of milliseconds, 1 or more, got ${String(historyMs)}`)
  }
  const publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS
  if (typeof publishTimeoutMs !== 'number' || !(publishTimeoutMs > 0 && publishTimeoutMs <= MAX_TIMER_MS)) {
    throw new RangeError(`${broker}: publishTimeoutMs must be a positive number of milliseconds, at most ${MAX_TIMER_MS} (the longest setTimeout delay), got ${String(publishTimeoutMs)}`)
  }
  const onError = options.onError ?? reportToConsole
  if (typeof onError !== 'function') {
    throw new TypeError(`${broker}: onError must be a function, got ${typeof onError}`)
  }
  return { history, historyMs, publishTimeoutMs, onError }
}

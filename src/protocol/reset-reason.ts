/**
 * Why a stream got `event: reset` instead of an exact resume, as sent in its
 * `data: {"reason": …}`; the client's `onReset` receives it.
 *
 * - `malformed-id`: the `Last-Event-ID` is not an id this library writes.
 * - `foreign-id`: the id was issued by a history that is gone (a restarted
 *   in-process broker, a flushed Redis).
 * - `history-exceeded`: messages after the id are no longer kept (the
 *   broker's `history`, `historyBytes` or `historyMs`), or the broker keeps
 *   no history at all.
 * - `broker-gap`: live messages may have been lost (for example Redis was
 *   unreachable) and could not be recovered from the history.
 */
export type ResetReason = 'malformed-id' | 'foreign-id' | 'history-exceeded' | 'broker-gap'

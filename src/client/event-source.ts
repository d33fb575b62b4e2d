/**
 * What the client needs of an `EventSource` (the browser's, or a polyfill's),
 * and the states a stream goes through, as its `readyState` names them.
 */

/**
 * Where a subscription stands: `connecting` (opening, or reconnecting after a
 * drop), `open` (the stream is live), `closed` (stopped, or refused by the
 * server for good), `revoked` (the server revoked the topic: the
 * subscription has ended for good, see `onRevoked`).
 */
export type SubscriptionState = 'connecting' | 'open' | 'closed' | 'revoked'

/** The part of an `EventSource` that `subscribe` uses. */
export interface EventSourceLike {
  /** `0` connecting, `1` open, `2` closed. */
  readonly readyState: number
  /** Adds a listener for `open`, `error` or a named event. */
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void
  /** Closes the stream for good. */
  close(): void
}

/** A constructor of {@link EventSourceLike}: the browser's `EventSource`, or a polyfill. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike

import type { PatchwireError } from '../errors.js'

/**
 * Receives a topic's messages, exactly once per publish: the ops already
 * serialised as JSON, and the message's event id when the broker issues ids
 * (see {@link Broker.replay}).
 */
export type BrokerListener = (payload: string, id?: string) => void

/**
 * Stops a subscription. Calling it again does nothing. `ready`, when present,
 * settles once the subscription is live (see {@link Broker.subscribe}).
 */
export type Unsubscribe = (() => void) & { readonly ready?: PromiseLike<unknown> }

/** One kept message, as {@link Broker.replay} returns it. */
export interface HistoryFrame {
  /** The message's event id. */
  readonly id: string
  /** The serialised ops, as published. */
  readonly payload: string
}

/**
 * Why a broker cannot replay from an id: `malformed-id` (not an id this
 * library writes), `foreign-id` (issued by a history that is gone: a
 * restarted in-process broker, a flushed Redis), `history-exceeded` (some
 * messages after it are no longer kept).
 */
export type ReplayRefusal = 'malformed-id' | 'foreign-id' | 'history-exceeded'

/** What {@link Broker.replay} answers: the messages after the id, or why it cannot. */
export type ReplayResult = { readonly frames: readonly HistoryFrame[] } | { readonly reset: ReplayRefusal }

/** A revocation as it crosses a broker: at least one of the two is set. */
export interface Revocation {
  /**
   * Whose streams: the value `identify` gave them.
   * @defaultValue none: every identity's streams of `topic`
   */
  readonly identity?: string
  /**
   * Which topic.
   * @defaultValue none: every topic of the identity's streams
   */
  readonly topic?: string
  /**
   * Set by a broker that delivers the revocation late, after its connection
   * for hearing revocations was lost and came back: when it was lost
   * (`Date.now()` of this process). A matching stream that opened before
   * then gets its `revoked` frames; one that opened since may have opened
   * after the revocation, so it ends as an expired stream does (a spread
   * `retry:`) and is judged by `authorize` again. Never set on a revocation
   * that is sent: `revoke()` refuses the key.
   * @defaultValue none: delivered as it was made; every matching stream gets its `revoked` frames
   */
  readonly lostAt?: number
}

/**
 * The interface every broker implements: the in-process one from
 * {@link createBroker}, and adapters such as `patchwire/redis`.
 *
 * Two methods are required: `publish` and `subscribe`. Payloads cross the
 * broker already serialised (ops encoded once per publish, never per
 * connection), and never contain CR or LF. With only these two, streams get
 * patches and the handler numbers them itself; a reconnect that missed a
 * message gets a reset.
 *
 * Keeping history is an optional capability: a broker that has `position`
 * and `replay` issues the event ids (`<epoch>-<seq>`, `seq` one increasing
 * order across all of its topics), passes each message's id to its
 * listeners, and delivers one subscriber's messages of all topics in id
 * order. Resume is then exact on every process that shares the broker.
 */
export interface Broker {
  /**
   * Delivers `payload` to every listener of `topic`, in publish order.
   * @returns a Promise that settles when the broker has taken the message,
   * with its event id when the broker issues ids; it rejects when the broker
   * cannot take it (for example it is disconnected).
   */
  publish(topic: string, payload: string): Promise<string | void>
  /**
   * Subscribes `listener` to `topic`.
   * @param onGap - called when messages on this topic may have been lost and
   * could not be recovered (for example a connection to Redis dropped and
   * the history no longer holds what was missed). Subscribers that promise
   * ordered delivery must then tell their readers to resync.
   * @returns a function that unsubscribes; it is idempotent. A broker whose
   * subscription takes effect later (a network round trip) gives that
   * function a `ready` Promise that settles once messages flow, or rejects if
   * subscribing failed: the handler holds a topic's first streams until then,
   * so that none of them can miss a message published in between.
   */
  subscribe(topic: string, listener: BrokerListener, onGap?: () => void): Unsubscribe
  /**
   * History capability: the current position of `topic`, an id `P` such
   * that every message of `topic` published after the call has an id above
   * `P`, and `replay(topic, P)` answers exactly those. It settles only once
   * every message with an id up to `P` that this broker delivers to this
   * process's listeners has been delivered (Redis: a `PING` on the
   * subscriber connection after reading the counter), so that a stream
   * started at `P` can neither miss nor repeat one.
   */
  position?(topic: string): string | PromiseLike<string>
  /**
   * History capability: the kept messages of `topic` after the id `after`,
   * oldest first, all of them (none missing up to the broker's position when
   * it answers), or why they cannot be had.
   */
  replay?(topic: string, after: string): ReplayResult | PromiseLike<ReplayResult>
  /**
   * Revocation capability: carries `revocation` to the `onRevoke` listeners of
   * every process that shares this broker, this one included.
   * @returns a Promise that settles once the broker has taken it.
   */
  revoke?(revocation: Revocation): Promise<void>
  /**
   * Revocation capability: calls `listener` with every revocation that any
   * process sends through {@link Broker.revoke}.
   * @returns a function that stops listening; it is idempotent.
   */
  onRevoke?(listener: (revocation: Revocation) => void): () => void
}

/** Options of {@link createBroker}. */
export interface BrokerOptions {
  /**
   * Messages kept per topic for resume; `0` keeps none.
   * @defaultValue 1000
   */
  history?: number
  /**
   * Bytes of kept messages over all topics together; the oldest messages go
   * first, whatever their topic. A message counts as its payload's length
   * plus 136 bytes of bookkeeping, so this bounds the heap the history holds.
   * @defaultValue 67108864 (64 MiB)
   */
  historyBytes?: number
  /**
   * How long a message is kept, in milliseconds.
   * @defaultValue 300000 (5 minutes)
   */
  historyMs?: number
  /**
   * Called when a listener throws (the other listeners still get the
   * message), and with publishes that failed while nobody awaited them.
   * @defaultValue logs to `console.error`
   */
  onError?: (error: PatchwireError) => void
}

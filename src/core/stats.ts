import type { ResetReason } from '../protocol/reset-reason.js'

/** Counters of a handler, from `handler.stats()`. */
export interface HandlerStats {
  /** Open streams (however many topics each carries). */
  connections: number
  /** Topics the handler holds a broker subscription for, lingering ones included. */
  topics: number
  /** Streams cut off as slow readers since the handler was created (see `maxBufferedBytes`). */
  dropped: number
  /** Requests waiting for `authorize`, the broker or `snapshot` before their stream opens. */
  pending: number
  /** Messages received from the broker. */
  messages: number
  /** Patch frames written, counted once per stream that got them. */
  frames: number
  /** Bytes written to streams, heartbeats and openings included. */
  bytes: number
  /** Streams that resumed exactly from a `Last-Event-ID` (counted per topic). */
  replays: number
  /** `reset` frames sent, by reason. */
  resets: Record<ResetReason, number>
  /** `snapshot` frames sent. */
  snapshots: number
  /** Requests answered with an error status, by status (`429`: over `maxStreamsPerIdentity`). */
  refused: Record<string, number>
  /** Streams ended because their access expired (the earliest `until` of their topics passed). */
  expired: number
  /** Streams ended by a revocation (`revoke`, `handler.revoke`). */
  revoked: number
}

/**
 * The running totals of a handler, which every part of the core adds to;
 * the gauges (connections, topics, pending) are read from the parts themselves.
 * @internal
 */
export type Counters = Omit<HandlerStats, 'connections' | 'topics' | 'pending'>

/** @internal */
export function createCounters(): Counters {
  return {
    dropped: 0, messages: 0, frames: 0, bytes: 0, replays: 0, snapshots: 0, expired: 0, revoked: 0,
    resets: { 'malformed-id': 0, 'foreign-id': 0, 'history-exceeded': 0, 'broker-gap': 0 },
    refused: {},
  }
}

/** The counters and gauges as `stats()` hands them out: a copy the caller may keep. @internal */
export function statsOf(counters: Counters, gauges: Pick<HandlerStats, 'connections' | 'topics' | 'pending'>): HandlerStats {
  return { ...gauges, ...counters, resets: { ...counters.resets }, refused: { ...counters.refused } }
}

/** Counts one request answered with an error `status`. @internal */
export function countRefusal(counters: Counters, status: number): void {
  counters.refused[status] = (counters.refused[status] ?? 0) + 1
}

import type { Unsubscribe } from '../broker/broker.js'
import { topicLine } from '../protocol/frame.js'
import type { ResetReason } from '../protocol/reset-reason.js'
import type { Stream } from './stream.js'
import { noop } from './thenable.js'

/** A topic a handler holds a broker subscription for, with or without streams. @internal */
export class Topic {
  readonly name: string
  /** Every stream on the topic, waiting ones included. */
  readonly streams: TopicStream[] = []
  /** How many of {@link streams} are multi-topic (their frames name the topic). */
  multi = 0
  #line: string | undefined
  unsubscribe: Unsubscribe = noop
  /** Set until the subscription is live and the topic's position known. */
  pending: Promise<void> | undefined
  /** Gives up waiting for the subscription, so that `close()` leaves no request waiting. */
  abandon: ((reason: unknown) => void) | undefined
  /** The topic's position: its latest message, or where the subscription started (-1 until known). */
  seq = -1
  id = ''
  /**
   * Without broker history (the handler numbers messages itself): the
   * position from which every message of the topic reached the handler, and
   * why earlier ones cannot be replayed.
   */
  coveredFrom = 0
  uncoveredBecause: ResetReason = 'history-exceeded'
  /** Requests waiting to open a stream on the topic: it is not let go meanwhile. */
  waiters = 0
  /** When a topic without streams is let go, on `performance.now()`'s clock. */
  lingerUntil = 0

  constructor(name: string) {
    this.name = name
  }

  /** The topic as a multi-topic frame's first data line, encoded once. */
  get line(): string {
    return (this.#line ??= topicLine(this.name))
  }

  /** Moves the topic's position forward (never back). */
  advance(seq: number, id: string): void {
    if (seq <= this.seq) return
    this.seq = seq
    this.id = id
  }
}

/** A stream, as the topics it is on know it. @internal */
export type TopicStream = Stream<Topic>

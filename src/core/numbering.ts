import type { Broker, ReplayResult } from '../broker/broker.js'
import { PatchwireError } from '../errors.js'
import { formatEventId, parseEventId } from '../protocol/event-id.js'
import type { ResetReason } from '../protocol/reset-reason.js'
import { isThenable } from './thenable.js'
import type { Topic } from './topic.js'

/** Where a topic resumes after an id: the frames it missed, or why it cannot (the core adds `broker-gap`). @internal */
export type ResumeAnswer = ReplayResult | { readonly reset: ResetReason }

/** What became of a message the broker delivered. @internal */
export type Taken = 'new' | 'seen' | 'invalid'

/**
 * Where a handler's event ids come from, and so how exact a resume can be.
 * A broker with the history capability (`position` and `replay`) issues
 * them: one order over all its topics, valid on every process, and resume
 * replays from its history. A broker without it leaves the handler to
 * number messages itself, with an epoch of its own: a reconnect can then
 * tell only whether it missed something, and is reset if it did.
 * @internal
 */
export interface Numbering {
  /** What a new subscription of `name` starts from: passed to {@link start} once settled. */
  startPosition(name: string): unknown
  /**
   * Positions a topic whose subscription is live: nothing at or before
   * `position` is written to its streams.
   * @throws TypeError when the broker's position is not an event id
   */
  start(topic: Topic, position: unknown): void
  /**
   * Numbers a message of `topic` the broker delivered with `brokerId`. A
   * `new` message is the topic's position afterwards (`topic.seq`,
   * `topic.id`); a `seen` one is at or before it (a redelivery, or older
   * than the subscription's start); an `invalid` one carried no usable id.
   */
  take(topic: Topic, brokerId: string | undefined): Taken
  /** Where `topic` resumes after `lastEventId`. */
  replay(topic: Topic, lastEventId: string): ResumeAnswer | PromiseLike<ResumeAnswer>
  /**
   * Messages of `topic` may have been lost: whatever the topic's position
   * must now say. Returns the id a single-topic stream's `reset` frame carries.
   */
  gap(topic: Topic): string | undefined
  /** The position up to which a stream resuming from `lastEventId` has everything already, if the ids say so. */
  resumedTo(lastEventId: string): number | undefined
  /** The position a stream on `topics` has reached once it has every frame up to `seq` (its id `id`). */
  ready(topics: readonly Topic[], seq: number, id: string): { seq: number; id: string }
}

/** The numbering a handler uses over `broker`. @internal */
export function numberingOf(broker: Broker, onError: (error: PatchwireError) => void): Numbering {
  return typeof broker.position === 'function' && typeof broker.replay === 'function'
    ? new BrokerNumbering(broker as Required<Broker>, onError)
    : new LocalNumbering()
}

/** Ids from a broker that keeps history. */
class BrokerNumbering implements Numbering {
  readonly #broker: Required<Broker>
  readonly #onError: (error: PatchwireError) => void

  constructor(broker: Required<Broker>, onError: (error: PatchwireError) => void) {
    this.#broker = broker
    this.#onError = onError
  }

  startPosition(name: string): unknown {
    return this.#broker.position(name)
  }

  start(topic: Topic, position: unknown): void {
    const parsed = typeof position === 'string' ? parseEventId(position) : undefined
    if (parsed === undefined) throw new TypeError(`the broker's position for topic "${topic.name}" is not an event id: ${String(position)}`)
    topic.advance(parsed.seq, position as string)
  }

  take(topic: Topic, brokerId: string | undefined): Taken {
    const parsed = brokerId === undefined ? undefined : parseEventId(brokerId)
    if (parsed === undefined) return 'invalid'
    if (parsed.seq <= topic.seq) return 'seen'
    topic.advance(parsed.seq, brokerId as string)
    return 'new'
  }

  replay(topic: Topic, lastEventId: string): ResumeAnswer | PromiseLike<ResumeAnswer> {
    try {
      const answer = this.#broker.replay(topic.name, lastEventId)
      if (!isThenable(answer)) return answer
      return Promise.resolve(answer).then(undefined, (error: unknown) => this.#failed(topic, error))
    } catch (error) {
      return this.#failed(topic, error)
    }
  }

  /** A broker that cannot read its history: the stream resets instead of failing. */
  #failed(topic: Topic, error: unknown): ResumeAnswer {
    this.#onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker could not replay topic "${topic.name}"; the stream gets a reset instead`, { cause: error }))
    return BROKER_GAP
  }

  gap(): undefined {
    return undefined
  }

  resumedTo(lastEventId: string): number | undefined {
    return parseEventId(lastEventId)?.seq
  }

  ready(topics: readonly Topic[], seq: number, id: string): { seq: number; id: string } {
    for (const topic of topics) {
      if (topic.seq > seq) {
        seq = topic.seq
        id = topic.id
      }
    }
    return { seq, id }
  }
}

/** Ids the handler makes itself, for a broker without history. */
class LocalNumbering implements Numbering {
  readonly #epoch = Math.floor(Math.random() * 36 ** 10).toString(36)
  #seq = 0

  startPosition(): undefined {
    return undefined
  }

  /** The topic is complete from a position no earlier id has. */
  start(topic: Topic): void {
    const start = ++this.#seq
    topic.coveredFrom = start
    topic.advance(start, formatEventId(this.#epoch, start))
  }

  take(topic: Topic): Taken {
    const seq = ++this.#seq
    topic.advance(seq, formatEventId(this.#epoch, seq))
    return 'new'
  }

  replay(topic: Topic, lastEventId: string): ResumeAnswer {
    const parsed = parseEventId(lastEventId)
    if (parsed === undefined) return MALFORMED
    // A position this handler has not reached was not issued by it.
    if (parsed.epoch !== this.#epoch || parsed.seq > this.#seq) return FOREIGN
    if (parsed.seq < topic.coveredFrom) return { reset: topic.uncoveredBecause }
    // Without history, a reconnect is exact only when it missed nothing.
    return topic.seq > parsed.seq ? EXCEEDED : NOTHING_MISSED
  }

  gap(topic: Topic): string {
    this.start(topic)
    topic.uncoveredBecause = 'broker-gap'
    return topic.id
  }

  resumedTo(): undefined {
    return undefined
  }

  ready(): { seq: number; id: string } {
    return { seq: this.#seq, id: formatEventId(this.#epoch, this.#seq) }
  }
}

const NOTHING_MISSED: ResumeAnswer = { frames: [] }
const MALFORMED: ResumeAnswer = { reset: 'malformed-id' }
const FOREIGN: ResumeAnswer = { reset: 'foreign-id' }
const EXCEEDED: ResumeAnswer = { reset: 'history-exceeded' }
const BROKER_GAP: ResumeAnswer = { reset: 'broker-gap' }

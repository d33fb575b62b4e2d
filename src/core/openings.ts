import type { Revocation } from '../broker/broker.js'
import { PatchwireError, type PatchwireErrorCode } from '../errors.js'
import { Admission, type AdmissionRequest } from './admission.js'
import type { Delivery } from './delivery.js'
import type { Identities } from './identities.js'
import type { ResumeAnswer } from './numbering.js'
import type { Resume, Resumed } from './resume.js'
import { countRefusal, type Counters } from './stats.js'
import { Stream, type StreamOwner } from './stream.js'
import type { Subscriptions } from './subscriptions.js'
import { isThenable } from './thenable.js'
import { currentTick } from './tick.js'
import type { Topic, TopicStream } from './topic.js'
import type { Refusal, StreamOpening } from './transport.js'

/** What openings need of the handler's options. @internal */
export interface OpeningOptions<Req> {
  readonly authorize: ((req: Req, topic: string) => unknown) | undefined
  readonly identify: ((req: Req) => unknown) | undefined
  readonly maxPending: number
  readonly pendingTimeoutMs: number
  readonly onError: (error: PatchwireError) => void
  /** A stream's opening is written: it is open, with its identity and the end of its access (epoch ms, `Infinity`: none). */
  readonly opened: (stream: TopicStream, identity: string | undefined, until: number) => void
  /** A stream whose access was revoked while it opened is open: it is given its `revoked` frames and ended. */
  readonly revoked: (stream: TopicStream, topics: readonly string[]) => void
}

/**
 * Requests on their way to becoming streams: each topic authorized, held
 * and subscribed, then resumed or given its snapshot, then accepted with
 * its opening. Whatever can be synchronous is: with the in-process broker,
 * a synchronous `authorize` and `snapshot`, the stream opens before
 * {@link open} returns. Every step that waits is bounded by
 * `pendingTimeoutMs`, at most `maxPending` requests wait at once, and a
 * waiting stream holds the live messages of its topics, so that none falls
 * between its replay and its live frames.
 * @internal
 */
export class Openings<Req> {
  readonly #owner: StreamOwner<Topic>
  readonly #o: OpeningOptions<Req>
  readonly #subscriptions: Subscriptions
  readonly #resume: Resume<Req>
  readonly #delivery: Delivery
  readonly #counters: Counters
  readonly #identities: Identities
  readonly #admission: Admission<Req, Waiting<Req>>
  readonly #waiting = new Set<Waiting<Req>>()
  #closed = false

  constructor(owner: StreamOwner<Topic>, options: OpeningOptions<Req>, subscriptions: Subscriptions, resume: Resume<Req>, delivery: Delivery, counters: Counters, identities: Identities) {
    this.#owner = owner
    this.#identities = identities
    this.#admission = new Admission(options, identities, {
      until: (w, promise) => this.#until(w, promise),
      gone: (w) => this.#gone(w),
      fail: (w, message, error) => this.#fail(w, 'ERR_PATCHWIRE_AUTHORIZE', message, error),
      refuse: (w, refusal) => this.#finish(w, refusal),
    })
    this.#o = options
    this.#subscriptions = subscriptions
    this.#resume = resume
    this.#delivery = delivery
    this.#counters = counters
  }

  /** Requests waiting to open. */
  get size(): number {
    return this.#waiting.size
  }

  /** Starts opening a stream, or refuses it at once (closed, or too many waiting). */
  open(o: StreamOpening<Req>): void {
    if (this.#closed) {
      this.#refuse(o, CLOSED)
      return
    }
    if (this.#waiting.size >= this.#o.maxPending) {
      this.#refuse(o, BUSY)
      return
    }
    const w: Waiting<Req> = { o, topics: [], stream: undefined, timer: undefined, cancel: undefined, done: false, identity: undefined, until: Infinity, revoked: undefined, unidentified: this.#o.identify === undefined ? null : undefined }
    this.#waiting.add(w)
    this.#open(w).catch((error: unknown) => this.#fail(w, 'ERR_PATCHWIRE_BROKER', 'could not open a stream', error))
  }

  /** Refuses the waiting request of `stream`: more arrived for it while it waited than it could catch up with. */
  overflowed(stream: TopicStream): void {
    this.#finishStream(stream, BUSY)
  }

  /** Refuses the waiting request of `stream`, to retry: its broker lost messages while it opened. */
  lostMessages(stream: TopicStream): void {
    this.#finishStream(stream, RETRY)
  }

  /**
   * Marks the waiting requests that `revocation` matches: one that opens
   * all the same (its `authorize` may have answered before the revocation)
   * gets its `revoked` frames right after its opening, and ends.
   */
  revoke(revocation: Revocation): void {
    const { identity, topic } = revocation
    for (const w of this.#waiting) {
      if (identity !== undefined && w.identity !== identity) {
        // Its `identify` has not answered yet: the revocation is judged once it has.
        if (w.identity === undefined && w.unidentified !== null) (w.unidentified ??= []).push(revocation)
        continue
      }
      mark(w, topic)
    }
  }

  /** Refuses every waiting request, and every later one, with 503. */
  close(): void {
    this.#closed = true
    for (const w of [...this.#waiting]) this.#finish(w, CLOSED)
  }

  async #open(w: Waiting<Req>): Promise<void> {
    const { o } = w
    let admitted = this.#admission.admit(w)
    if (isThenable(admitted)) admitted = await admitted
    if (!admitted) return
    // Whose request it is is known now: the revocations of that identity made while `identify` ran apply.
    const unidentified = w.unidentified
    w.unidentified = null
    for (const revocation of unidentified ?? []) if (revocation.identity === w.identity) mark(w, revocation.topic)
    try {
      for (const name of o.topics) w.topics.push(this.#subscriptions.hold(name))
    } catch (error) {
      this.#fail(w, 'ERR_PATCHWIRE_BROKER', `the broker could not subscribe to a topic of [${o.topics.join(', ')}]`, error)
      return
    }
    const subscribing = w.topics.flatMap((topic) => (topic.pending === undefined ? [] : [topic.pending]))
    if (subscribing.length > 0) {
      try {
        await this.#until(w, Promise.all(subscribing))
      } catch {
        // The topic reported its failure once for every waiting request.
        this.#finish(w, this.#closed ? CLOSED : FAILED)
        return
      }
      if (this.#gone(w)) return
    }

    // From here until accept, the stream holds every message of its topics.
    this.#delivery.flush()
    const stream = new Stream<Topic>(this.#owner, o.req, w.topics)
    stream.held = []
    this.#subscriptions.join(stream)
    w.stream = stream
    const resume = this.#resume
    const { lastEventId } = o
    const replays = w.topics.map((topic) => (lastEventId === undefined ? undefined : resume.replay(topic, lastEventId)))
    const fresh = w.topics.map((topic) => (lastEventId === undefined ? resume.snapshot(stream, topic) : undefined))
    let answers = this.#settle(w, replays)
    if (isThenable(answers)) {
      try {
        answers = await answers
      } catch {
        return
      }
      if (this.#gone(w)) return
    }
    const settled: readonly (ResumeAnswer | undefined)[] = answers
    // The snapshot of a topic that resets is taken now, so that it covers what was held of it.
    const states = w.topics.map((topic, k) => {
      const answer = settled[k]
      return answer !== undefined && 'reset' in answer ? resume.snapshot(stream, topic) : fresh[k]
    })
    let texts = this.#settle(w, states)
    if (isThenable(texts)) {
      try {
        texts = await texts
      } catch (error) {
        if (!w.done) this.#fail(w, 'ERR_PATCHWIRE_SNAPSHOT', `snapshot threw or rejected for a topic of [${o.topics.join(', ')}]; the request was answered 500`, error)
        return
      }
      if (this.#gone(w)) return
    }
    const written: readonly (string | undefined)[] = texts
    const resumed = w.topics.map((topic, k): Resumed => {
      const answer = settled[k]
      return {
        topic,
        frames: answer !== undefined && 'frames' in answer ? answer.frames : [],
        reset: answer !== undefined && 'reset' in answer ? answer.reset : undefined,
        snapshot: written[k],
      }
    })
    this.#accept(w, stream, resumed)
  }

  /** Writes the opening of a stream that waits for nothing more, and starts it. */
  #accept(w: Waiting<Req>, stream: TopicStream, resumed: Resumed[]): void {
    // Messages of this turn not yet written are the stream's to hold first:
    // its position is taken from its topics, which have counted them.
    this.#delivery.flush()
    // Holding them may have been too much for the stream.
    if (w.done) return
    const first = Buffer.from(this.#resume.opening(stream, w.o.lastEventId, resumed))
    let sink
    try {
      sink = w.o.accept(first.subarray(0, OPENING_PIECE_BYTES), stream)
    } catch (error) {
      this.#fail(w, 'ERR_PATCHWIRE_RESPONSE', 'the transport could not start the stream', error)
      return
    }
    // A runtime counts a write as pending until all of it is sent: a large
    // replay in pieces lets a slow but steady reader show its progress to
    // the stall check, instead of looking stalled until the end.
    let pieces = 1
    for (let at = OPENING_PIECE_BYTES; at < first.length; at += OPENING_PIECE_BYTES, pieces++) sink.write(first.subarray(at, at + OPENING_PIECE_BYTES))
    stream.start(sink, first.length, pieces, currentTick())
    this.#counters.bytes += first.length
    // The request's place under the cap is the stream's from now on.
    const { identity } = w
    w.identity = undefined
    this.#o.opened(stream, identity, w.until)
    const revoked = w.revoked
    this.#finish(w, undefined)
    if (revoked !== undefined) this.#o.revoked(stream, revoked)
  }

  /**
   * The values of `items`, awaiting only if one of them is a promise, so
   * that an opening with nothing to wait for stays synchronous.
   */
  #settle<T>(w: Waiting<Req>, items: readonly (T | PromiseLike<T>)[]): T[] | Promise<T[]> {
    if (!items.some(isThenable)) return items as T[]
    return this.#until(w, Promise.all(items))
  }

  /** Waits for `promise`, unless the request times out or is answered first (then it rejects). */
  #until<T>(w: Waiting<Req>, promise: PromiseLike<T>): Promise<T> {
    if (w.timer === undefined) {
      w.timer = setTimeout(() => this.#finish(w, TIMED_OUT), this.#o.pendingTimeoutMs)
      w.timer.unref()
    }
    return new Promise<T>((resolve, reject) => {
      w.cancel = reject
      Promise.resolve(promise).then(resolve, reject)
    })
  }

  /** After a wait: whether the request is over (answered, timed out, or its client left). */
  #gone(w: Waiting<Req>): boolean {
    if (w.done) return true
    if (!w.o.isGone()) return false
    this.#finish(w, undefined)
    return true
  }

  #fail(w: Waiting<Req>, code: PatchwireErrorCode, message: string, error: unknown): void {
    if (w.done) return
    this.#o.onError(error instanceof PatchwireError && code === 'ERR_PATCHWIRE_BROKER' ? error : new PatchwireError(code, message, { cause: error }))
    this.#finish(w, FAILED)
  }

  #finishStream(stream: TopicStream, refusal: Refusal): void {
    for (const w of this.#waiting) if (w.stream === stream) this.#finish(w, refusal)
  }

  /** Ends a waiting request: refused (unless its client left), or accepted (refusal undefined after accept). */
  #finish(w: Waiting<Req>, refusal: Refusal | undefined): void {
    if (w.done) return
    w.done = true
    clearTimeout(w.timer)
    w.cancel?.(CANCELLED)
    this.#waiting.delete(w)
    if (w.identity !== undefined) this.#identities.give(w.identity)
    const stream = w.stream
    if (stream !== undefined && stream.sink === undefined) stream.detach()
    for (const topic of w.topics) this.#subscriptions.unhold(topic)
    if (refusal !== undefined && !w.o.isGone()) this.#refuse(w.o, refusal)
  }

  #refuse(o: StreamOpening<Req>, refusal: Refusal): void {
    countRefusal(this.#counters, refusal.status)
    o.refuse(refusal)
  }
}

/** A request waiting for its stream to open. */
interface Waiting<Req> extends AdmissionRequest<Req> {
  readonly o: StreamOpening<Req>
  /** The topics it holds (they are not let go while it waits). */
  topics: Topic[]
  stream: TopicStream | undefined
  timer: NodeJS.Timeout | undefined
  cancel: ((reason: unknown) => void) | undefined
  done: boolean
  /** Its topics that a revocation matched while it waited. */
  revoked: string[] | undefined
  /**
   * The revocations by identity made before its identity was known (while
   * `identify` ran); null once admission is over, and from the start when
   * the handler has no `identify` (no revocation by identity can match it).
   */
  unidentified: Revocation[] | null | undefined
}

/** Marks `w`'s topics that a revocation of `topic` (undefined: all of them) matches. */
function mark(w: Waiting<unknown>, topic: string | undefined): void {
  const topics = topic === undefined ? w.o.topics : w.o.topics.filter((name) => name === topic)
  if (topics.length > 0) w.revoked = [...new Set([...(w.revoked ?? []), ...topics])]
}

const FAILED: Refusal = { status: 500, message: 'Internal Server Error' }
const CLOSED: Refusal = { status: 503, message: 'Service Unavailable: the event stream is shutting down' }
const BUSY: Refusal = { status: 503, message: 'Service Unavailable: too many event streams are waiting to open (option maxPending); retry later' }
const TIMED_OUT: Refusal = { status: 503, message: 'Service Unavailable: the event stream could not open in time (option pendingTimeoutMs); retry later' }
const RETRY: Refusal = { status: 503, message: 'Service Unavailable: the broker lost messages while the event stream opened; retry' }
const CANCELLED = new Error('the request was answered')
/** The size of the pieces a stream's opening (retry, replay, ready) is written in. */
const OPENING_PIECE_BYTES = 64 * 1024

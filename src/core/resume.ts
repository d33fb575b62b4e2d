import type { HistoryFrame } from '../broker/broker.js'
import { PatchwireError } from '../errors.js'
import { parseEventId } from '../protocol/event-id.js'
import { readyFrame, resetFrame, snapshotFrame } from '../protocol/frame.js'
import type { ResetReason } from '../protocol/reset-reason.js'
import { frameFor, type Delivery } from './delivery.js'
import type { Numbering, ResumeAnswer } from './numbering.js'
import { spreadRetryFrame } from './spread.js'
import type { HeldMessage } from './stream.js'
import type { Counters } from './stats.js'
import { isThenable } from './thenable.js'
import type { Topic, TopicStream } from './topic.js'

/** How one topic of an opening stream starts. @internal */
export interface Resumed {
  readonly topic: Topic
  /** The frames it missed since the stream's `Last-Event-ID`, oldest first. */
  readonly frames: readonly HistoryFrame[]
  /** Why it cannot resume exactly, if it cannot. */
  readonly reset: ResetReason | undefined
  /** Its state, serialised, when it starts fresh or resets and there is a `snapshot` option. */
  readonly snapshot: string | undefined
}

/** What resuming needs of the handler's options. @internal */
export interface ResumeOptions<Req> {
  readonly snapshot: ((req: Req, topic: string) => unknown) | undefined
  readonly retryMs: number
  readonly pendingTimeoutMs: number
  readonly onError: (error: PatchwireError) => void
  /** A stream still opening whose topic lost messages: its request is refused, to retry. */
  readonly retryOpening: (stream: TopicStream) => void
}

/**
 * How a stream starts and how it recovers: its opening (`retry:`, the
 * frames each topic missed or its reset, each topic's snapshot, what was
 * held while it waited, and its `ready` position), and the resync of an
 * open stream after its broker lost messages (a reset, then a new
 * snapshot, with the messages that arrive meanwhile held behind it).
 * @internal
 */
export class Resume<Req> {
  readonly #numbering: Numbering
  readonly #delivery: Delivery
  readonly #counters: Counters
  readonly #o: ResumeOptions<Req>

  constructor(numbering: Numbering, delivery: Delivery, counters: Counters, options: ResumeOptions<Req>) {
    this.#numbering = numbering
    this.#delivery = delivery
    this.#counters = counters
    this.#o = options
  }

  /** Where `topic` resumes after `lastEventId`. */
  replay(topic: Topic, lastEventId: string): ResumeAnswer | PromiseLike<ResumeAnswer> {
    return this.#numbering.replay(topic, lastEventId)
  }

  /**
   * Calls `snapshot` for one topic of a stream, serialising its result once.
   * What the stream held of the topic so far is dropped: the snapshot is
   * taken after it, so it covers it (exactly, for a synchronous snapshot).
   */
  snapshot(stream: TopicStream, topic: Topic): string | undefined | Promise<string> {
    const { snapshot } = this.#o
    if (snapshot === undefined) return undefined
    // This turn's messages of the topic are held first, then dropped with the rest.
    this.#delivery.flush()
    if (stream.held !== undefined && stream.held.length > 0) stream.held = stream.held.filter((message) => message.topic !== topic)
    try {
      const state = snapshot(stream.req as Req, topic.name)
      return isThenable(state) ? Promise.resolve(state).then(serialiseState) : serialiseState(state)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * The opening of a stream that waits for nothing more: `retry:`, the
   * replay (or resets and snapshots), what was held meanwhile, and the
   * `ready` position. The stream stops holding and is positioned after it.
   */
  opening(stream: TopicStream, lastEventId: string | undefined, resumed: readonly Resumed[]): string {
    let text = spreadRetryFrame(this.#o.retryMs)
    let last = -1
    let lastId = ''
    const covered = new Map<Topic, number>()
    // A topic resumed from an id already has everything up to it: nothing
    // at or before it is written again, and the position never goes back
    // behind it (this process may not have seen that far yet).
    const from = lastEventId === undefined ? undefined : this.#numbering.resumedTo(lastEventId)
    if (from !== undefined && resumed.some((entry) => entry.reset === undefined)) {
      for (const entry of resumed) if (entry.reset === undefined) covered.set(entry.topic, from)
      last = from
      lastId = lastEventId as string
    }
    const counters = this.#counters
    for (const entry of resumed) {
      if (entry.reset !== undefined) {
        counters.resets[entry.reset]++
        text += resetFrame(entry.reset, stream.multi ? entry.topic.name : undefined, undefined)
      } else if (lastEventId !== undefined) {
        counters.replays++
      }
      if (entry.snapshot !== undefined) {
        counters.snapshots++
        text += snapshotFrame(entry.snapshot, stream.multi ? entry.topic.line : undefined)
      }
    }
    for (const message of openingMessages(resumed, stream.held as HeldMessage<Topic>[])) {
      if (message.seq <= (covered.get(message.topic) ?? -1)) continue
      text += frameFor(stream, message.topic, message.id, message.payload)
      covered.set(message.topic, message.seq)
      if (message.seq > last) {
        last = message.seq
        lastId = message.id
      }
    }
    const ready = this.#numbering.ready(stream.topics, last, lastId)
    stream.cursor = ready.seq
    stream.held = undefined
    stream.heldBytes = 0
    // Only a later snapshot (after a reset) needs the request: an idle
    // stream without one should not keep its headers and the rest alive.
    if (this.#o.snapshot === undefined) stream.req = undefined
    return text + readyFrame(ready.id)
  }

  /**
   * Messages of `topic` may have been lost: every open stream of the topic
   * gets a reset (and a new snapshot); streams still opening are refused, to retry.
   */
  gap(topic: Topic): void {
    this.#delivery.flush()
    const id = this.#numbering.gap(topic)
    for (const stream of [...topic.streams]) {
      if (stream.sink === undefined) {
        this.#o.retryOpening(stream)
        continue
      }
      this.#counters.resets['broker-gap']++
      const reset = resetFrame('broker-gap', stream.multi ? topic.name : undefined, stream.multi ? undefined : id)
      this.#resync(stream, topic, reset)
    }
  }

  /** Writes a reset of one topic to an open stream, then the topic's snapshot. */
  #resync(stream: TopicStream, topic: Topic, reset: string): void {
    const state = this.snapshot(stream, topic)
    const delivery = this.#delivery
    if (!isThenable(state)) {
      if (state !== undefined) this.#counters.snapshots++
      delivery.send(stream, reset + (state === undefined ? '' : snapshotFrame(state, stream.multi ? topic.line : undefined)))
      return
    }
    // Everything the stream gets meanwhile waits behind the snapshot, in order.
    delivery.send(stream, reset)
    stream.held ??= []
    const { pendingTimeoutMs } = this.#o
    const timer = setTimeout(() => this.#snapshotFailed(stream, topic, new Error(`snapshot took longer than ${pendingTimeoutMs} ms (option pendingTimeoutMs)`)), pendingTimeoutMs)
    timer.unref()
    state.then(
      (text) => {
        clearTimeout(timer)
        if (!stream.attached) return
        delivery.flush()
        this.#counters.snapshots++
        let out = snapshotFrame(text, stream.multi ? topic.line : undefined)
        for (const message of stream.held ?? []) {
          // Held before the cursor check: what the stream already has stays out.
          if (message.seq <= stream.cursor) continue
          stream.cursor = message.seq
          out += frameFor(stream, message.topic, message.id, message.payload)
        }
        stream.held = undefined
        stream.heldBytes = 0
        delivery.send(stream, out)
      },
      (error: unknown) => {
        clearTimeout(timer)
        this.#snapshotFailed(stream, topic, error)
      },
    )
  }

  /** A stream left without state is ended: it reconnects and tries again. */
  #snapshotFailed(stream: TopicStream, topic: Topic, error: unknown): void {
    if (!stream.attached) return
    this.#o.onError(new PatchwireError('ERR_PATCHWIRE_SNAPSHOT', `snapshot threw or rejected for topic "${topic.name}" after a reset; the stream was ended so that it reconnects`, { cause: error }))
    const sink = stream.sink
    stream.detach()
    sink?.end()
  }
}

function serialiseState(state: unknown): string {
  const text = JSON.stringify(state)
  if (text === undefined) throw new TypeError(`snapshot must return a JSON value, got ${typeof state}`)
  return text
}

/**
 * A stream's replayed frames and the messages it held while it opened, in
 * one position order: each topic's replay is read on its own, so one can be
 * older than messages of another topic that arrived meanwhile, and ids must
 * never go back on a stream. Of a message both replayed and held, the
 * replayed one comes first (the sort is stable) and the other is skipped.
 */
function openingMessages(resumed: readonly Resumed[], held: readonly HeldMessage<Topic>[]): readonly HeldMessage<Topic>[] {
  const replayed: HeldMessage<Topic>[] = []
  let sources = held.length > 0 ? 1 : 0
  for (const { topic, frames } of resumed) {
    if (frames.length > 0) sources++
    for (const frame of frames) replayed.push({ topic, seq: parseEventId(frame.id)?.seq ?? 0, id: frame.id, payload: frame.payload })
  }
  if (replayed.length === 0) return held
  const all = replayed.concat(held)
  if (sources > 1) all.sort((a, b) => a.seq - b.seq)
  return all
}

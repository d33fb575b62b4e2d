import type { InFlightProbe, KernelProbe, Sink, StreamHandle } from './transport.js'

const CLOCK_BASE = Date.now()

/**
 * A time (`Date.now()` ms) as tenths of a second since this module loaded:
 * a small integer, which V8 keeps in the field itself for about three years
 * of uptime, where a `Date.now()` would be a 16-byte heap number per stream.
 * Two times in the same tenth compare equal: callers treat that as "not
 * before".
 * @internal
 */
export function openingTime(ms: number): number {
  return Math.floor((ms - CLOCK_BASE) / 100)
}

/** Who a stream reports its closing to. @internal */
export interface StreamOwner<T> {
  detach(stream: Stream<T>): void
}

/** A message that reached a stream while it waited (on open, or for a snapshot). @internal */
export interface HeldMessage<T> {
  readonly topic: T
  readonly seq: number
  readonly id: string
  readonly payload: string
}

/**
 * One open SSE stream: its topics, its position, and its slow-reader
 * bookkeeping. Deliberately small: thousands of idle streams are the common case.
 *
 * Positions below are byte offsets in everything written to the sink, so
 * that `written - sink.writableLength` is what the client's side has taken.
 * @typeParam T - the topics it is on (generic, so that this file needs no
 * knowledge of topics: a topic holds its streams, a stream its topics)
 * @internal
 */
export class Stream<T> implements StreamHandle {
  readonly owner: StreamOwner<T>
  /** The transport's request, for `snapshot` after a reset; let go of once open when there is no `snapshot`. */
  req: unknown
  readonly topics: readonly T[]
  /** This stream's slot in each topic's stream list (swap-remove), by topic order. */
  readonly slots: number[]
  /** Whether frames must name their topic (more than one topic). */
  readonly multi: boolean
  /** When its request came, as {@link openingTime}: a revocation delivered late spares the streams opened since its broker lost the connection (see `Revocation.lostAt`). */
  readonly openedAt = openingTime(Date.now())
  /** Undefined until the response is accepted. */
  sink: Sink | undefined
  /** Messages at or below this position are already covered: never written again. */
  cursor = 0
  /** Set while the stream waits (for its opening, or a snapshot): messages are held, in order. */
  held: HeldMessage<T>[] | undefined
  heldBytes = 0
  /** The heartbeat interval in which the stream last got a frame; it then needs no heartbeat. */
  wroteInBeat = -1
  /** The heartbeat interval in which the stream was last looked at (a multi-topic stream is met once per topic). */
  seenInBeat = -1
  #stalledBeats = 0
  #sentAtBeat = 0
  #written = 0
  /** Writes since the backlog was last seen empty: each costs the runtime a queue entry. */
  #queued = 0
  #batchTick = -1
  /** Where the latest batch (the writes of one event-loop turn) starts, and how many writes it has. */
  #batchStart = 0
  #batchWrites = 0
  /** The earlier batch that is exempt while it is unsent, as [start, end), and its writes. */
  #bigStart = 0
  #bigEnd = 0
  #bigWrites = 0

  constructor(owner: StreamOwner<T>, req: unknown, topics: readonly T[]) {
    this.owner = owner
    this.req = req
    this.topics = topics
    this.slots = topics.map(() => -1)
    this.multi = topics.length > 1
  }

  /** Whether the stream is registered with its topics. */
  get attached(): boolean {
    return this.slots[0] !== -1
  }

  /** The transport calls this when the connection closes; safe to call twice. */
  detach(): void {
    this.owner.detach(this)
  }

  /**
   * Starts writing to `sink`: `openedWith` bytes (`retry:`, replay, `ready`)
   * in `writes` writes are already written and count as the stream's first batch.
   */
  start(sink: Sink, openedWith: number, writes: number, tick: number): void {
    this.sink = sink
    this.#written = openedWith
    this.#queued = writes
    this.#batchWrites = writes
    this.#batchTick = tick
  }

  /**
   * Writes `chunk` unless the reader has fallen behind.
   *
   * What a stream costs while its reader does not keep up is its backlog
   * (bytes the client's side has not taken) plus one runtime queue entry per
   * write still queued, which for tiny frames costs more than the bytes. Two
   * batches are left out of the bytes while unsent: the latest one (a healthy
   * reader always has that in flight) and the larger-remaining of the earlier
   * ones, so that one large frame, or a large replay, never cuts a stream, not
   * even when small frames follow it before it has drained. Everything else
   * counts, so a stalled reader is still cut, whatever it was sent.
   *
   * @param tick - the current event-loop turn, from `currentTick()`
   * @returns false when the stream is too far behind: the caller cuts it
   */
  send(chunk: Uint8Array, tick: number, maxBufferedBytes: number): boolean {
    const sink = this.sink as Sink
    const backlog = sink.writableLength
    if (backlog === 0) this.#queued = 0
    const sent = this.#written - backlog
    if (this.#batchTick !== tick) {
      if (unsent(this.#batchStart, this.#written, sent) >= unsent(this.#bigStart, this.#bigEnd, sent)) {
        this.#bigStart = this.#batchStart
        this.#bigEnd = this.#written
        this.#bigWrites = this.#batchWrites
      }
      this.#batchTick = tick
      this.#batchStart = this.#written
      this.#batchWrites = 0
    }
    const bigUnsent = unsent(this.#bigStart, this.#bigEnd, sent)
    const exempt = bigUnsent + unsent(this.#batchStart, this.#written, sent)
    const exemptWrites = this.#batchWrites + (bigUnsent > 0 ? this.#bigWrites : 0)
    const entries = Math.max(0, this.#queued - exemptWrites)
    if (backlog - exempt + entries * WRITE_ENTRY_BYTES > maxBufferedBytes) return false
    this.#written += chunk.length
    this.#queued++
    this.#batchWrites++
    sink.write(chunk)
    return true
  }

  /**
   * Called once per heartbeat interval: whether the reader has taken nothing
   * (not one whole write: a runtime counts a write as pending until all of
   * it is sent) for `stallBeats` intervals while bytes waited for it (see
   * {@link stallBeats}), in the stream's backlog or, when `kernelHeld` is
   * given, in the kernel.
   * Such a stream is cut even on a quiet topic, where no write would ever
   * find it over `maxBufferedBytes`.
   */
  isStalled(inFlight: InFlightProbe, stallBeats: number, kernelHeld: KernelProbe | undefined): boolean {
    const sink = this.sink as Sink
    const untaken = sink.writableLength + inFlight(sink) + (kernelHeld === undefined ? 0 : kernelHeld(sink))
    // What the reader has taken, as far as can be seen: new writes do not
    // move it. Progress is judged against the previous interval, not the
    // highest value seen, because it drops when the kernel's share starts to
    // be counted (a reader that took a replay into the kernel's send buffer
    // and no further).
    const sent = this.#written - untaken
    const progressed = sent > this.#sentAtBeat
    this.#sentAtBeat = sent
    if (untaken === 0 || progressed) {
      this.#stalledBeats = 0
      return false
    }
    return ++this.#stalledBeats >= stallBeats
  }
}

/**
 * What one queued write costs the runtime besides its bytes (Node keeps an
 * entry object per pending write): counted so that a stalled reader of tiny
 * frames is cut before its queue of entries, not its bytes, fills the heap.
 * @internal
 */
export const WRITE_ENTRY_BYTES = 128

/**
 * Heartbeat intervals without progress after which a stream with a backlog
 * is cut: two, and never less than {@link MIN_STALL_MS}, because the kernel
 * buffers megabytes and hands a steady reader's progress to the runtime
 * only in bursts.
 * @internal
 */
export function stallBeats(heartbeatMs: number): number {
  return Math.max(2, Math.ceil(MIN_STALL_MS / heartbeatMs))
}

/** @internal */
export const MIN_STALL_MS = 10_000

/** How much of the byte range [start, end) is not sent yet, once `sent` bytes are. */
function unsent(start: number, end: number, sent: number): number {
  return Math.max(0, end - Math.max(start, sent))
}

import type { TopicStream } from './topic.js'

/**
 * When streams' access ends: each stream whose `authorize` gave an `until`
 * waits in one min-heap ordered by it, and one unref'd timer, set for the
 * earliest, ends every stream whose time has come. A stream that closes
 * first leaves the heap at once (each knows its slot), so that nothing of
 * it is kept until its time.
 * @internal
 */
export class Expiry {
  readonly #heap: TopicStream[] = []
  readonly #onExpired: (streams: readonly TopicStream[]) => void
  #timer: NodeJS.Timeout | undefined
  /** The `until` the timer is set for. */
  #timerAt = Infinity
  readonly #fire = (): void => this.#expire()

  /** @param onExpired - ends the streams whose time has come (they have left the heap already) */
  constructor(onExpired: (streams: readonly TopicStream[]) => void) {
    this.#onExpired = onExpired
  }

  /** Streams waiting for their time. */
  get size(): number {
    return this.#heap.length
  }

  /** Adds an open stream with a finite `until`. */
  add(stream: TopicStream): void {
    if (stream.until === Infinity || stream.expirySlot !== -1) return
    stream.expirySlot = this.#heap.push(stream) - 1
    this.#up(stream.expirySlot)
    this.#arm()
  }

  /** Takes a stream out (it closed); safe to call for one that is not in. */
  remove(stream: TopicStream): void {
    const slot = stream.expirySlot
    if (slot === -1) return
    this.#take(slot)
    this.#arm()
  }

  /** Forgets every stream and stops the timer (the handler closes). */
  stop(): void {
    for (const stream of this.#heap) stream.expirySlot = -1
    this.#heap.length = 0
    this.#arm()
  }

  #expire(): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = Date.now()
    const expired: TopicStream[] = []
    while (this.#heap.length > 0 && (this.#heap[0] as TopicStream).until <= now) expired.push(this.#take(0))
    if (expired.length > 0) this.#onExpired(expired)
    this.#arm()
  }

  /** Sets the timer for the earliest `until`, unless it is set for it already. */
  #arm(): void {
    const first = this.#heap[0]
    if (first !== undefined && this.#timer !== undefined && first.until === this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
    if (first === undefined) return
    // Beyond setTimeout's longest delay the timer fires early and is set again.
    const delay = Math.min(Math.max(0, first.until - Date.now()), MAX_TIMER_MS)
    // unref: a stream waiting for its time must never keep the process alive.
    this.#timer = setTimeout(this.#fire, delay).unref()
    this.#timerAt = first.until
  }

  /** Removes the stream at `slot`, keeping the heap ordered. */
  #take(slot: number): TopicStream {
    const heap = this.#heap
    const stream = heap[slot] as TopicStream
    const last = heap.pop() as TopicStream
    stream.expirySlot = -1
    if (last !== stream) {
      heap[slot] = last
      last.expirySlot = slot
      this.#up(slot)
      this.#down(last.expirySlot)
    }
    return stream
  }

  #up(slot: number): void {
    const heap = this.#heap
    const stream = heap[slot] as TopicStream
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      const above = heap[parent] as TopicStream
      if (above.until <= stream.until) break
      heap[slot] = above
      above.expirySlot = slot
      slot = parent
    }
    heap[slot] = stream
    stream.expirySlot = slot
  }

  #down(slot: number): void {
    const heap = this.#heap
    const stream = heap[slot] as TopicStream
    for (;;) {
      let child = 2 * slot + 1
      if (child >= heap.length) break
      const right = heap[child + 1]
      if (right !== undefined && right.until < (heap[child] as TopicStream).until) child++
      const below = heap[child] as TopicStream
      if (stream.until <= below.until) break
      heap[slot] = below
      below.expirySlot = slot
      slot = child
    }
    heap[slot] = stream
    stream.expirySlot = slot
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1

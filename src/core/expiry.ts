import type { TopicStream } from './topic.js'

/** A stream waiting for its access to end, in the heap. */
interface Entry {
  readonly stream: TopicStream
  /** When, in epoch milliseconds. */
  readonly until: number
  /** Its index in the heap. */
  slot: number
}

/**
 * When streams' access ends: each stream whose `authorize` gave an `until`
 * waits in one min-heap ordered by it, and one unref'd timer, set for the
 * earliest, ends every stream whose time has come. A stream that closes
 * first leaves the heap at once, so that nothing of it is kept until its
 * time. Kept beside the streams, not on them: a stream without an `until`
 * costs nothing here.
 * @internal
 */
export class Expiry {
  readonly #heap: Entry[] = []
  readonly #entries = new Map<TopicStream, Entry>()
  readonly #onExpired: (streams: readonly TopicStream[]) => void
  #timer: NodeJS.Timeout | undefined
  /** The `until` the timer is set for. */
  #timerAt = Infinity
  readonly #fire = (): void => this.#expire()

  /** @param onExpired - ends the streams whose time has come (they have left the heap already) */
  constructor(onExpired: (streams: readonly TopicStream[]) => void) {
    this.#onExpired = onExpired
  }

  /** Adds an open stream whose access ends at `until` (epoch ms); nothing for `Infinity`. */
  add(stream: TopicStream, until: number): void {
    if (until === Infinity || this.#entries.has(stream)) return
    const entry: Entry = { stream, until, slot: this.#heap.length }
    this.#entries.set(stream, entry)
    this.#heap.push(entry)
    this.#up(entry)
    this.#arm()
  }

  /** Takes a stream out (it closed); safe to call for one that is not in. */
  remove(stream: TopicStream): void {
    if (this.#entries.size === 0) return
    const entry = this.#entries.get(stream)
    if (entry === undefined) return
    this.#take(entry.slot)
    this.#arm()
  }

  /** Forgets every stream and stops the timer (the handler closes). */
  stop(): void {
    this.#heap.length = 0
    this.#entries.clear()
    this.#arm()
  }

  #expire(): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = Date.now()
    const expired: TopicStream[] = []
    while (this.#heap.length > 0 && (this.#heap[0] as Entry).until <= now) expired.push(this.#take(0).stream)
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

  /** Removes the entry at `slot`, keeping the heap ordered. */
  #take(slot: number): Entry {
    const heap = this.#heap
    const entry = heap[slot] as Entry
    const last = heap.pop() as Entry
    this.#entries.delete(entry.stream)
    if (last !== entry) {
      heap[slot] = last
      last.slot = slot
      this.#up(last)
      this.#down(last)
    }
    return entry
  }

  #up(entry: Entry): void {
    const heap = this.#heap
    let slot = entry.slot
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      const above = heap[parent] as Entry
      if (above.until <= entry.until) break
      heap[slot] = above
      above.slot = slot
      slot = parent
    }
    heap[slot] = entry
    entry.slot = slot
  }

  #down(entry: Entry): void {
    const heap = this.#heap
    let slot = entry.slot
    for (;;) {
      let child = 2 * slot + 1
      if (child >= heap.length) break
      const right = heap[child + 1]
      if (right !== undefined && right.until < (heap[child] as Entry).until) child++
      const below = heap[child] as Entry
      if (entry.until <= below.until) break
      heap[slot] = below
      below.slot = slot
      slot = child
    }
    heap[slot] = entry
    entry.slot = slot
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1

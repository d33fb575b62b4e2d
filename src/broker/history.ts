/**
 * The messages an in-process broker keeps for resume, bounded three ways:
 * per topic by count, over all topics together by bytes (the oldest message
 * goes first, whatever its topic), and by age.
 *
 * Payloads are kept as the strings `publish` made: they own exactly their
 * memory, unlike small Buffers carved from Node's shared pool, where one kept
 * frame pins a whole 8 KiB slab.
 *
 * Every topic knows from which position its messages are complete, so a
 * quiet topic resumes exactly however busy the others are. A topic whose
 * messages are all gone is remembered (its last position) for `maxAgeMs`,
 * then forgotten into one shared watermark, unless it is watched (it has
 * listeners: a quiet topic with open streams must stay exact). The history's
 * memory is bounded by what it keeps plus the watched topics and those
 * published within `maxAgeMs`.
 * @internal
 */
export class History {
  readonly #maxPerTopic: number
  readonly #maxBytes: number
  readonly #maxAgeMs: number
  readonly #now: () => number
  readonly #topics = new Map<string, TopicLog>()
  /** Every kept entry, oldest first; entries dropped by the per-topic bound stay as dead slots until they reach the head. */
  #queue: Entry[] = []
  #queueHead = 0
  #dead = 0
  /**
   * Topics that had no entry left, by the time of their last publish then
   * (topics empty out in that order): each is forgotten once that is older
   * than maxAgeMs, unless it was published again since.
   */
  #empty: EmptySlot[] = []
  #emptyHead = 0
  /** The highest position of any forgotten topic: an unknown topic is complete only after it. */
  #forgottenUpTo = 0
  #bytes = 0

  /**
   * @param maxPerTopic - messages kept per topic; 0 keeps none
   * @param maxBytes - bytes kept over all topics (see {@link entryBytes})
   * @param maxAgeMs - how long a message is kept
   * @param now - the clock, in milliseconds
   */
  constructor(maxPerTopic: number, maxBytes: number, maxAgeMs: number, now: () => number = performance.now.bind(performance)) {
    this.#maxPerTopic = maxPerTopic
    this.#maxBytes = maxBytes
    this.#maxAgeMs = maxAgeMs
    this.#now = now
  }

  /** Bytes counted for what is kept now. */
  get bytes(): number {
    return this.#bytes
  }

  /** Keeps `topic` known while it has listeners, however long it stays quiet. */
  watch(topic: string): void {
    this.#log(topic, this.#now()).watchers++
  }

  /** Undoes one {@link watch}. */
  unwatch(topic: string): void {
    const log = this.#topics.get(topic)
    if (log === undefined || --log.watchers > 0) return
    if (log.entries.length === 0) this.#noteEmpty(log)
  }

  /** Records message `seq` of `topic`; positions must come in increasing order. */
  push(topic: string, seq: number, payload: string): void {
    const now = this.#now()
    this.#expire(now)
    const log = this.#log(topic, now)
    log.lastSeq = seq
    log.lastAt = now
    const bytes = entryBytes(payload)
    if (this.#maxPerTopic === 0 || bytes > this.#maxBytes) {
      // Nothing of it can be kept: the topic is complete only from here on.
      this.#dropAll(log, seq)
      return
    }
    if (log.entries.length - log.head === this.#maxPerTopic) this.#dropOldestOf(log)
    while (this.#bytes + bytes > this.#maxBytes) this.#dropOldest()
    const entry: Entry = { log, seq, payload, at: now, bytes, alive: true }
    log.entries.push(entry)
    this.#queue.push(entry)
    this.#bytes += bytes
  }

  /**
   * The kept messages of `topic` after position `seq`, oldest first, or
   * `undefined` when some of them are gone.
   */
  after(topic: string, seq: number): Entry[] | undefined {
    this.#expire(this.#now())
    const log = this.#topics.get(topic)
    if (log === undefined) return seq >= this.#forgottenUpTo ? [] : undefined
    if (seq < log.completeFrom) return undefined
    const { entries } = log
    let i = entries.length
    while (i > log.head && (entries[i - 1] as Entry).seq > seq) i--
    return entries.slice(i)
  }

  #log(topic: string, now: number): TopicLog {
    let log = this.#topics.get(topic)
    if (log === undefined) {
      // Whatever of it was forgotten, it is complete from the watermark on.
      log = { name: topic, entries: [], head: 0, completeFrom: this.#forgottenUpTo, lastSeq: this.#forgottenUpTo, lastAt: now, waiting: false, watchers: 0 }
      this.#topics.set(topic, log)
    }
    return log
  }

  #expire(now: number): void {
    const cutoff = now - this.#maxAgeMs
    while (this.#queueHead < this.#queue.length && (this.#queue[this.#queueHead] as Entry).at <= cutoff) this.#dropOldest()
    while (this.#emptyHead < this.#empty.length) {
      const { log, at } = this.#empty[this.#emptyHead] as EmptySlot
      if (log.entries.length > 0 || log.watchers > 0) {
        // Kept: published again, or watched (unwatch queues it again).
        log.waiting = false
      } else if (log.lastAt <= cutoff) {
        log.waiting = false
        if (this.#topics.get(log.name) === log) this.#topics.delete(log.name)
        if (log.lastSeq > this.#forgottenUpTo) this.#forgottenUpTo = log.lastSeq
      } else if (log.lastAt !== at) {
        // Published again since, and still empty: it waits again from then.
        this.#empty.push({ log, at: log.lastAt })
      } else {
        break
      }
      this.#emptyHead++
    }
    if (this.#emptyHead > COMPACT_AT && this.#emptyHead * 2 > this.#empty.length) {
      this.#empty = this.#empty.slice(this.#emptyHead)
      this.#emptyHead = 0
    }
  }

  /** Drops the oldest kept message of all topics. */
  #dropOldest(): void {
    const entry = this.#queue[this.#queueHead] as Entry
    this.#queueHead++
    if (entry.alive) {
      // The oldest entry overall is also the oldest of its topic.
      entry.alive = false
      this.#release(entry)
    } else {
      this.#dead--
    }
    this.#compactQueue()
  }

  /** Drops a topic's oldest message for the per-topic bound; its queue slot dies in place. */
  #dropOldestOf(log: TopicLog): void {
    const entry = log.entries[log.head] as Entry
    entry.alive = false
    this.#dead++
    this.#release(entry)
    this.#compactQueue()
  }

  #dropAll(log: TopicLog, seq: number): void {
    while (log.entries.length > log.head) this.#dropOldestOf(log)
    log.completeFrom = seq
    this.#noteEmpty(log)
  }

  /** Takes a topic's oldest entry out of its log and out of the byte count. */
  #release(entry: Entry): void {
    this.#bytes -= entry.bytes
    const log = entry.log
    log.head++
    if (entry.seq > log.completeFrom) log.completeFrom = entry.seq
    this.#compactLog(log)
    if (log.entries.length === 0) this.#noteEmpty(log)
  }

  /** Queues a topic with no entry left to be forgotten later; once per topic. */
  #noteEmpty(log: TopicLog): void {
    if (log.waiting) return
    log.waiting = true
    this.#empty.push({ log, at: log.lastAt })
  }

  #compactLog(log: TopicLog): void {
    if (log.head === log.entries.length) {
      log.entries = []
      log.head = 0
    } else if (log.head > COMPACT_AT && log.head * 2 > log.entries.length) {
      log.entries = log.entries.slice(log.head)
      log.head = 0
    }
  }

  /**
   * Keeps the queue's dead and consumed slots below half of it, so that its
   * size stays proportional to what is kept, whatever the per-topic bound drops.
   */
  #compactQueue(): void {
    const consumed = this.#queueHead
    if (consumed + this.#dead <= COMPACT_AT || (consumed + this.#dead) * 2 <= this.#queue.length) return
    const live: Entry[] = []
    for (let i = consumed; i < this.#queue.length; i++) {
      const entry = this.#queue[i] as Entry
      if (entry.alive) live.push(entry)
    }
    this.#queue = live
    this.#queueHead = 0
    this.#dead = 0
  }
}

/** A kept message. @internal */
export interface Entry {
  readonly log: TopicLog
  readonly seq: number
  readonly payload: string
  readonly at: number
  readonly bytes: number
  alive: boolean
}

/** @internal */
interface TopicLog {
  readonly name: string
  /** Kept entries from `head` on, oldest first. */
  entries: Entry[]
  head: number
  /** The topic's messages after this position are all kept (or none was published). */
  completeFrom: number
  lastSeq: number
  lastAt: number
  /** Whether it has a slot in the list of topics with no entry left. */
  waiting: boolean
  /** Listeners of the topic: a watched topic is never forgotten. */
  watchers: number
}

interface EmptySlot {
  readonly log: TopicLog
  /** The topic's `lastAt` when the slot was queued. */
  readonly at: number
}

/**
 * What a kept message counts against `historyBytes`: its payload at one
 * byte per UTF-16 code unit (V8 stores ASCII JSON so) plus the bookkeeping
 * around it.
 * @internal
 */
export function entryBytes(payload: string): number {
  return payload.length + ENTRY_OVERHEAD
}

const ENTRY_OVERHEAD = 96
const COMPACT_AT = 1024

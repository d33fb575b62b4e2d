/**
 * The messages an in-process broker keeps for resume, bounded three ways:
 * per topic by count, over all topics together by bytes (the oldest message
 * goes first, whatever its topic), and by age.
 *
 * Payloads are kept as strings, flattened (see {@link flat}): they own
 * exactly their memory, unlike small Buffers carved from Node's shared pool,
 * where one kept frame pins a whole 8 KiB slab.
 *
 * Every kept entry is linked into the age order of all topics (doubly, so
 * that the per-topic bound can take an entry out of the middle of it) and
 * sits in its topic's array, which replay reads. A dropped entry is unlinked
 * and its slot cleared at once, so nothing the history holds refers to it;
 * a topic's array is compacted once its cleared slots are as many as its
 * kept ones, so it stays proportional to what it keeps. (An array rather
 * than a second linked list, because replay walks it: its loads are
 * independent, where a list's each wait for the one before, which made a
 * 1000-message replay several times slower.)
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
  /** The ends of the age order of every kept entry, linked through `older`/`newer`. */
  #oldest: LinkedEntry | undefined
  #newest: LinkedEntry | undefined
  /**
   * The ends of the queue of topics that had no entry left, linked through
   * `nextWaiting`, in the order they emptied out: each is forgotten once its
   * last publish is older than maxAgeMs, unless it was published again or
   * watched since. Only known topics wait in it, each once.
   */
  #firstWaiting: TopicLog | undefined
  #lastWaiting: TopicLog | undefined
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
    if (log.head === log.entries.length) this.#noteEmpty(log)
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
      while (log.head < log.entries.length) this.#drop(log.entries[log.head] as LinkedEntry)
      log.completeFrom = seq
      this.#noteEmpty(log)
      return
    }
    if (log.entries.length - log.head === this.#maxPerTopic) this.#drop(log.entries[log.head] as LinkedEntry)
    while (this.#oldest !== undefined && this.#bytes + bytes > this.#maxBytes) this.#drop(this.#oldest)
    const node: LinkedEntry = { log, seq, payload: flat(payload), at: now, older: this.#newest, newer: undefined }
    if (this.#newest === undefined) this.#oldest = node
    else this.#newest.newer = node
    this.#newest = node
    log.entries.push(node)
    this.#bytes += bytes
  }

  /**
   * The kept messages of `topic` after position `seq`, oldest first, or
   * `undefined` when some of them are gone. It reads back from the topic's
   * newest message, so a resume pays for what it gets, not for what is kept.
   */
  after(topic: string, seq: number): Entry[] | undefined {
    this.#expire(this.#now())
    const log = this.#topics.get(topic)
    if (log === undefined) return seq >= this.#forgottenUpTo ? [] : undefined
    if (seq < log.completeFrom) return undefined
    const { entries } = log
    let i = entries.length
    while (i > log.head && (entries[i - 1] as LinkedEntry).seq > seq) i--
    return entries.slice(i) as LinkedEntry[]
  }

  #log(topic: string, now: number): TopicLog {
    let log = this.#topics.get(topic)
    if (log === undefined) {
      // Whatever of it was forgotten, it is complete from the watermark on.
      const watermark = this.#forgottenUpTo
      log = { name: topic, entries: [], head: 0, completeFrom: watermark, lastSeq: watermark, lastAt: now, watchers: 0, waiting: false, waitingSince: 0, nextWaiting: undefined }
      this.#topics.set(topic, log)
    }
    return log
  }

  #expire(now: number): void {
    const cutoff = now - this.#maxAgeMs
    while (this.#oldest !== undefined && this.#oldest.at <= cutoff) this.#drop(this.#oldest)
    for (let log = this.#firstWaiting; log !== undefined; log = this.#firstWaiting) {
      const empty = log.head === log.entries.length && log.watchers === 0
      if (empty && log.lastAt > cutoff && log.lastAt === log.waitingSince) break
      this.#firstWaiting = log.nextWaiting
      if (this.#firstWaiting === undefined) this.#lastWaiting = undefined
      log.nextWaiting = undefined
      log.waiting = false
      if (!empty) continue // Kept: published again, or watched (unwatch queues it again).
      if (log.lastAt <= cutoff) {
        this.#topics.delete(log.name)
        if (log.lastSeq > this.#forgottenUpTo) this.#forgottenUpTo = log.lastSeq
      } else {
        // Published again since, and still empty: it waits again from then.
        this.#noteEmpty(log)
      }
    }
  }

  /**
   * Drops `node`, the oldest kept message of its topic (and, when dropped
   * for the byte or age bound, of all topics): unlinked from the age order
   * and cleared from its topic's array, nothing kept refers to it any more,
   * and it refers to nothing kept, so a caller that still holds it pins no
   * other entry.
   */
  #drop(node: LinkedEntry): void {
    const { log, older, newer } = node
    if (older === undefined) this.#oldest = newer
    else older.newer = newer
    if (newer === undefined) this.#newest = older
    else newer.older = older
    node.older = node.newer = undefined
    log.entries[log.head++] = undefined
    this.#bytes -= entryBytes(node.payload)
    if (node.seq > log.completeFrom) log.completeFrom = node.seq
    const kept = log.entries.length - log.head
    if (kept === 0) {
      log.entries = []
      log.head = 0
      this.#noteEmpty(log)
    } else if (log.head >= kept) {
      // As many cleared slots as kept ones: moving the kept ones down costs
      // no more than the drops that cleared them, and V8 trims the store.
      log.entries.copyWithin(0, log.head)
      log.entries.length = kept
      log.head = 0
    }
  }

  /** Queues a topic with no entry left and no watcher to be forgotten later; once per topic. */
  #noteEmpty(log: TopicLog): void {
    if (log.waiting || log.watchers > 0) return
    log.waiting = true
    log.waitingSince = log.lastAt
    if (this.#lastWaiting === undefined) this.#firstWaiting = log
    else this.#lastWaiting.nextWaiting = log
    this.#lastWaiting = log
  }
}

/** A kept message, as {@link History.after} gives it. @internal */
export interface Entry {
  readonly seq: number
  readonly payload: string
}

/** A kept message and its place in the age order of all topics. */
interface LinkedEntry extends Entry {
  readonly log: TopicLog
  /** When it was pushed, for the age bound. */
  readonly at: number
  /** Its neighbours in the age order of all topics. */
  older: LinkedEntry | undefined
  newer: LinkedEntry | undefined
}

interface TopicLog {
  readonly name: string
  /** The topic's kept entries from `head` on, oldest first; the slots before it are cleared. */
  entries: (LinkedEntry | undefined)[]
  head: number
  /** The topic's messages after this position are all kept (or none was published). */
  completeFrom: number
  lastSeq: number
  lastAt: number
  /** Listeners of the topic: a watched topic is never forgotten. */
  watchers: number
  /** Whether it is in the queue of topics with no entry left. */
  waiting: boolean
  /** Its `lastAt` when it was queued. */
  waitingSince: number
  nextWaiting: TopicLog | undefined
}

/**
 * What a kept message counts against `historyBytes`: its payload at one
 * byte per UTF-16 code unit (V8 stores ASCII JSON so) plus the bookkeeping
 * around it. That is measured on Node 20 (64-bit, no pointer compression)
 * at 109 to 123 bytes for payloads of 250 B to 4 KB: the entry with its
 * two links (72), its clock reading (a boxed double, 16), the string's
 * header and padding (16 to 23), its slot in its topic's array (8, and
 * the array's spare slots); rounded up, so that `historyBytes` bounds what
 * the history holds.
 * @internal
 */
export function entryBytes(payload: string): number {
  return payload.length + ENTRY_OVERHEAD
}

const ENTRY_OVERHEAD = 136

/**
 * `payload` as one flat string. `publish` builds a payload by concatenation
 * and `JSON.stringify`, which V8 (and JavaScriptCore) keep as a rope: a tree
 * of the pieces, which costs from a quarter more than its characters (one
 * op of 1 KB) to three times as much (twenty small ops), so that
 * `historyBytes` would bound a fraction of what is held. Reading a character
 * of a rope makes both engines flatten it in place into one string, which is
 * what a kept payload should be. An engine that does not flatten keeps the
 * rope: the payload is the same, only larger than counted.
 */
function flat(payload: string): string {
  payload.charCodeAt(0)
  return payload
}

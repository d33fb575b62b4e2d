import type { HistoryFrame } from '../../broker/broker.js'

/**
 * What one kept frame is counted as, on top of its strings: the frame
 * object with its two links, its slot in its topic's array. An estimate on
 * the high side.
 */
const FRAME_OVERHEAD_BYTES = 96

interface Frame {
  readonly seq: number
  readonly id: string
  readonly payload: string
  readonly bytes: number
  readonly record: TopicRecord
  /** Its neighbours in the order of every kept frame, across topics. */
  older: Frame | undefined
  newer: Frame | undefined
}

interface TopicRecord {
  /** Every message of the topic after this position is kept (or was evicted, which moves it up). */
  from: number
  /** The topic's kept frames from `head` on, oldest first; the slots before it are cleared. */
  frames: (Frame | undefined)[]
  head: number
}

/**
 * The recent messages this process delivered, per subscribed topic, so that
 * a reconnect storm (thousands of streams resuming at once on one process)
 * is answered from memory instead of one Redis round trip per stream.
 *
 * A topic's record says from which position it is complete: every message
 * of the topic after it has been delivered since, and is kept. Bounded by
 * `maxFrames` per topic and by `maxBytes` over all topics together (the
 * oldest frames go first, whatever their topic); evicting a frame moves
 * its topic's record up to it. Each frame is counted as twice the length
 * of its strings (the most a JavaScript string can take per character) plus
 * a fixed overhead, so the bound holds whatever the strings hold. The
 * strings are the ones the Redis client produced for each message (its own
 * allocation, not a view into a shared socket buffer), so nothing else is
 * retained through them.
 *
 * As in the in-process broker's history (src/broker/history.ts), every
 * kept frame is linked into the order of all topics (doubly, so that the
 * per-topic bound and a stopped topic can take frames out of the middle of
 * it) and sits in its topic's array, which replay reads. A frame that goes
 * is unlinked and its slot cleared at once, so nothing kept refers to it:
 * the byte bound frees memory even over many topics of a few messages each,
 * and a stopped topic holds nothing. A topic's array is compacted once its
 * cleared slots are as many as its kept ones.
 * @internal
 */
export class LocalHistory {
  readonly #maxFrames: number
  readonly #maxBytes: number
  readonly #records = new Map<string, TopicRecord>()
  /** The ends of the order of every kept frame, across topics. */
  #oldest: Frame | undefined
  #newest: Frame | undefined
  #bytes = 0

  /**
   * @param maxFrames - frames kept per topic; 0 keeps none
   * @param maxBytes - bytes over all topics together
   */
  constructor(maxFrames: number, maxBytes: number) {
    this.#maxFrames = maxFrames
    this.#maxBytes = maxBytes
  }

  /** The bytes counted for the frames kept now. */
  get bytes(): number {
    return this.#bytes
  }

  /**
   * (Re)starts the record of `key`: complete from `from`, nothing kept yet.
   * @param key - the topic's channel
   */
  start(key: string, from: number): void {
    this.stop(key)
    if (this.#maxFrames > 0) this.#records.set(key, { from, frames: [], head: 0 })
  }

  /** Whether `key` has a record. */
  has(key: string): boolean {
    return this.#records.has(key)
  }

  /** Forgets the record of `key`. */
  stop(key: string): void {
    const record = this.#records.get(key)
    if (record === undefined) return
    this.#records.delete(key)
    for (let i = record.head; i < record.frames.length; i++) this.#unlink(record.frames[i] as Frame)
    record.frames = []
    record.head = 0
  }

  /** Forgets every record. */
  clear(): void {
    for (const key of [...this.#records.keys()]) this.stop(key)
  }

  /**
   * Keeps a delivered message of `key`, which must follow the ones kept.
   * Nothing happens when `key` has no record.
   */
  append(key: string, seq: number, id: string, payload: string): void {
    const record = this.#records.get(key)
    if (record === undefined) return
    const frame: Frame = { seq, id, payload, bytes: 2 * (id.length + payload.length) + FRAME_OVERHEAD_BYTES, record, older: this.#newest, newer: undefined }
    if (this.#newest === undefined) this.#oldest = frame
    else this.#newest.newer = frame
    this.#newest = frame
    record.frames.push(frame)
    this.#bytes += frame.bytes
    if (record.frames.length - record.head > this.#maxFrames) this.#evictOldest(record)
    while (this.#bytes > this.#maxBytes && this.#oldest !== undefined) this.#evictOldest(this.#oldest.record)
  }

  /**
   * The kept messages of `key` after `seq`, when the record is complete
   * from `seq` or earlier.
   * @returns the frames, oldest first, or undefined when the record does not reach back to `seq`
   */
  after(key: string, seq: number): HistoryFrame[] | undefined {
    const record = this.#records.get(key)
    if (record === undefined || seq < record.from) return undefined
    const { frames } = record
    let low = record.head
    let high = frames.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((frames[middle] as Frame).seq > seq) high = middle
      else low = middle + 1
    }
    const result: HistoryFrame[] = []
    for (let i = low; i < frames.length; i++) {
      const frame = frames[i] as Frame
      result.push({ id: frame.id, payload: frame.payload })
    }
    return result
  }

  /** Drops the oldest kept frame of `record`: its slot cleared, unlinked, the record complete from it. */
  #evictOldest(record: TopicRecord): void {
    const frame = record.frames[record.head] as Frame
    record.frames[record.head++] = undefined
    record.from = frame.seq
    this.#unlink(frame)
    const kept = record.frames.length - record.head
    if (kept === 0) {
      record.frames = []
      record.head = 0
    } else if (record.head >= kept) {
      // As many cleared slots as kept ones: moving the kept ones down costs
      // no more than the evictions that cleared them.
      record.frames.copyWithin(0, record.head)
      record.frames.length = kept
      record.head = 0
    }
  }

  /** Takes `frame` out of the order of all frames, and its bytes out of the count. */
  #unlink(frame: Frame): void {
    const { older, newer } = frame
    if (older === undefined) this.#oldest = newer
    else older.newer = newer
    if (newer === undefined) this.#newest = older
    else newer.older = older
    frame.older = frame.newer = undefined
    this.#bytes -= frame.bytes
  }
}

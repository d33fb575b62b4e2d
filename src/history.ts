/**
 * A topic's recent frames, for `Last-Event-ID` replay: a ring bounded both by
 * frame count and by bytes, so a few huge patches cannot pin memory.
 * @internal
 */
export class History {
  readonly #maxFrames: number
  readonly #maxBytes: number
  // Parallel rings of one capacity, doubled as needed up to maxFrames, so a
  // quiet topic costs next to nothing and a ring that the byte cap keeps
  // short stays short however large maxFrames is.
  #seqs: number[] = []
  #frames: Buffer[] = []
  #head = 0
  #size = 0
  #bytes = 0
  /** The highest sequence number that is no longer (or never was) in the ring. */
  lastDroppedSeq: number

  /**
   * @param maxFrames - the most frames kept; 0 keeps none
   * @param maxBytes - the most bytes kept
   * @param startSeq - the position from which the ring is complete
   */
  constructor(maxFrames: number, maxBytes: number, startSeq: number) {
    this.#maxFrames = maxFrames
    this.#maxBytes = maxBytes
    this.lastDroppedSeq = startSeq
  }

  /** Records frame `seq`; frames must come in increasing `seq` order. */
  push(seq: number, frame: Buffer): void {
    if (frame.length > this.#maxBytes || this.#maxFrames === 0) {
      this.clear(seq)
      return
    }
    while (this.#size === this.#maxFrames || this.#bytes + frame.length > this.#maxBytes) this.#dropOldest()
    if (this.#size === this.#seqs.length) this.#grow()
    const at = (this.#head + this.#size) % this.#seqs.length
    this.#seqs[at] = seq
    this.#frames[at] = frame
    this.#size++
    this.#bytes += frame.length
  }

  /**
   * The frames after position `seq`, oldest first, or `undefined` when some
   * of them are gone.
   */
  after(seq: number): Buffer[] | undefined {
    if (seq < this.lastDroppedSeq) return undefined
    const frames: Buffer[] = []
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#head + i) % this.#seqs.length
      if ((this.#seqs[at] as number) > seq) frames.push(this.#frames[at] as Buffer)
    }
    return frames
  }

  /** Forgets every frame: the ring is complete again only from `seq` on. */
  clear(seq: number): void {
    this.#seqs = []
    this.#frames = []
    this.#head = 0
    this.#size = 0
    this.#bytes = 0
    this.lastDroppedSeq = seq
  }

  #dropOldest(): void {
    const at = this.#head
    this.lastDroppedSeq = this.#seqs[at] as number
    this.#bytes -= (this.#frames[at] as Buffer).length
    // Drop the reference so the frame can be collected before it is overwritten.
    this.#frames[at] = EMPTY
    this.#head = (at + 1) % this.#seqs.length
    this.#size--
  }

  /** Copies the ring, oldest first, into arrays of twice the capacity (at most maxFrames). */
  #grow(): void {
    const capacity = Math.min(this.#maxFrames, Math.max(MIN_CAPACITY, this.#seqs.length * 2))
    const seqs: number[] = []
    const frames: Buffer[] = []
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#head + i) % this.#seqs.length
      seqs.push(this.#seqs[at] as number)
      frames.push(this.#frames[at] as Buffer)
    }
    seqs.length = capacity
    frames.length = capacity
    this.#seqs = seqs
    this.#frames = frames
    this.#head = 0
  }
}

const EMPTY = Buffer.alloc(0)
const MIN_CAPACITY = 8

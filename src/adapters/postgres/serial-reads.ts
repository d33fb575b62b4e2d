/** How long after a failed read the next one is tried. */
const READ_RETRY_MS = 1000

/**
 * What one read did: `done` (run again only if asked meanwhile), `again`
 * (run again: what it read asks for another read), `stop` (nothing to do,
 * or the broker closed), `failed` (tried again after a second).
 * @internal
 */
export type ReadOutcome = 'done' | 'again' | 'stop' | 'failed'

/**
 * Reads of the table, one at a time and as many as asked for: a request
 * made while a read runs makes it run once more after it, so that what
 * was asked for meanwhile is in that read; a failed read is tried again
 * after a second, since what it was to read waits in the table. The
 * message feed and the revocations read this way.
 * @internal
 */
export class SerialReads {
  readonly #read: () => Promise<ReadOutcome>
  #reading = false
  #again = false
  #retry: ReturnType<typeof setTimeout> | undefined
  #closed = false

  /** @param read - one read; it reports its own failures */
  constructor(read: () => Promise<ReadOutcome>) {
    this.#read = read
  }

  /** Reads now, or once more after the read under way. */
  request(): void {
    if (this.#closed) return
    if (this.#reading) {
      this.#again = true
      return
    }
    clearTimeout(this.#retry)
    this.#retry = undefined
    void this.#run()
  }

  /** No read from now on. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#retry)
  }

  async #run(): Promise<void> {
    this.#reading = true
    let outcome: ReadOutcome
    do {
      this.#again = false
      outcome = await this.#read()
    } while ((outcome === 'again' || (outcome === 'done' && this.#again)) && !this.#closed)
    this.#reading = false
    if (outcome === 'failed' && !this.#closed) {
      this.#retry = setTimeout(() => this.request(), READ_RETRY_MS)
      this.#retry.unref()
    }
  }
}

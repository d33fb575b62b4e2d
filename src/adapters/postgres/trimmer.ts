import type { PatchwireError } from '../../errors.js'
import type { Database } from './database.js'
import { TRIM, TRIM_REVOCATIONS } from './schema.js'

/** How long after a publish its topic is trimmed: trims of a busy topic share one statement. */
const TRIM_DELAY_MS = 1000

/** What a {@link Trimmer} needs from the broker. @internal */
export interface TrimmerOptions {
  readonly database: Pick<Database, 'query'>
  readonly history: number
  readonly historyMs: number
  readonly onError: (error: PatchwireError) => void
}

/**
 * Keeps the history bounded: about a second after a publish, one statement
 * (off the publish path, on a connection of its own) deletes the topics'
 * messages beyond `history` and every message older than `historyMs`,
 * and notes per topic the highest id it deleted (see schema.ts). It locks
 * only the rows it deletes, which no publish waits for. After a revoke, the
 * same way, another statement keeps the newest revocations only.
 * @internal
 */
export class Trimmer {
  readonly #o: TrimmerOptions
  #topics = new Set<string>()
  #revocations = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #running = false
  #closed = false

  /** @param options - see {@link TrimmerOptions} */
  constructor(options: TrimmerOptions) {
    this.#o = options
  }

  /** A message of `topic` was published: trim it soon. */
  published(topic: string): void {
    if (this.#closed) return
    this.#topics.add(topic)
    this.#schedule()
  }

  /** A revocation was sent: trim the revocations soon. */
  revoked(): void {
    if (this.#closed) return
    this.#revocations = true
    this.#schedule()
  }

  /** Stops trimming. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#running) return
    this.#timer = setTimeout(() => void this.#trim(), TRIM_DELAY_MS)
    // The next publish (on any process) trims as well: nothing to keep the process alive for.
    this.#timer.unref()
  }

  async #trim(): Promise<void> {
    this.#timer = undefined
    const topics = [...this.#topics]
    const revocations = this.#revocations
    this.#topics = new Set()
    this.#revocations = false
    this.#running = true
    try {
      if (topics.length > 0) await this.#o.database.query(TRIM, [topics, this.#o.history, this.#o.historyMs], `trim the history of ${topics.length} topic(s)`)
      if (revocations) await this.#o.database.query(TRIM_REVOCATIONS, [], 'trim the revocations')
    } catch (error) {
      this.#o.onError(error as PatchwireError)
    }
    this.#running = false
    if ((this.#topics.size > 0 || this.#revocations) && !this.#closed) this.#schedule()
  }
}

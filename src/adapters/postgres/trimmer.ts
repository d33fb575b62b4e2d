import type { PatchwireError } from '../../errors.js'
import type { Database } from './database.js'
import { TRIM } from './schema.js'

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
 * only the rows it deletes, which no publish waits for.
 * @internal
 */
export class Trimmer {
  readonly #o: TrimmerOptions
  #topics = new Set<string>()
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
    this.#topics = new Set()
    this.#running = true
    try {
      await this.#o.database.query(TRIM, [topics, this.#o.history, this.#o.historyMs], `trim the history of ${topics.length} topic(s)`)
    } catch (error) {
      this.#o.onError(error as PatchwireError)
    }
    this.#running = false
    if (this.#topics.size > 0 && !this.#closed) this.#schedule()
  }
}

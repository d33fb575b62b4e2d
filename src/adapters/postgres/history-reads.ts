import type { HistoryFrame, ReplayResult } from '../../broker/broker.js'
import { formatEventId, parseEventId } from '../../protocol/event-id.js'
import type { Database } from './database.js'
import type { Feed } from './feed.js'
import { READ_HEAD, READ_REPLAY, parseRead } from './schema.js'

/** What {@link HistoryReads} needs from the broker. @internal */
export interface HistoryReadsOptions {
  readonly database: Pick<Database, 'query'>
  readonly feed: Pick<Feed, 'reached'>
  /** Messages a replay may hand out per topic (`history`). */
  readonly history: number
  /** How old a replayed message may be, in milliseconds (`historyMs`). */
  readonly historyMs: number
}

/**
 * The broker's history capability: `position(topic)` and
 * `replay(topic, after)`, each one statement. Both settle only once every
 * message up to their position that this process's listeners get has
 * reached them (see `Feed.reached`), so that a stream that starts there can
 * neither miss nor repeat one.
 * @internal
 */
export class HistoryReads {
  readonly #o: HistoryReadsOptions

  /** @param options - see {@link HistoryReadsOptions} */
  constructor(options: HistoryReadsOptions) {
    this.#o = options
  }

  /**
   * The current position (see `Broker.position`): the counter. Every
   * message up to it has committed, and any later one gets a higher id.
   * @returns a Promise of its event id
   */
  async position(topic: string): Promise<string> {
    const { rows } = await this.#o.database.query(READ_HEAD, [], `read the position of topic "${topic}"`)
    const epoch = String(rows[0]?.['epoch'])
    const seq = Number(rows[0]?.['seq'])
    await this.#o.feed.reached(epoch, seq)
    return formatEventId(epoch, seq)
  }

  /**
   * The kept messages of `topic` after the id `after` (see `Broker.replay`).
   * @returns the frames, or why they cannot be had
   */
  replay(topic: string, after: string): ReplayResult | Promise<ReplayResult> {
    const id = parseEventId(after)
    if (id === undefined) return { reset: 'malformed-id' }
    return this.#o.database.query(READ_REPLAY, [topic, id.seq, this.#o.historyMs], `replay topic "${topic}"`).then(async ({ rows }) => {
      const { epoch, head, trims, messages } = parseRead(rows)
      // An id above the counter was never issued by this history.
      if (epoch !== id.epoch || id.seq > head) return { reset: 'foreign-id' } as const
      if (trims.some((trim) => trim.seq > id.seq) || messages.length > this.#o.history) return { reset: 'history-exceeded' } as const
      const frames: HistoryFrame[] = messages.map((message) => ({ id: formatEventId(epoch, message.seq), payload: message.payload as string }))
      // A stream that resumes with these frames is at the last one's
      // position: messages of its other topics before it must be delivered.
      const last = messages.at(-1)
      if (last !== undefined) await this.#o.feed.reached(epoch, last.seq)
      return { frames }
    })
  }
}

import type { HistoryFrame, ReplayResult } from '../../broker/broker.js'
import { formatEventId, parseEventId } from '../../protocol/event-id.js'
import type { EventId } from '../../protocol/event-id.js'
import type { Feed } from './feed.js'
import type { LocalHistory } from './local-history.js'
import type { TopicAnswer } from './reader.js'
import { isCompleteAfter } from './scripts.js'
import type { Topic } from './topic.js'

/** What {@link HistoryReads} needs from the broker. @internal */
export interface HistoryReadsOptions {
  /** The subscribed topics by channel. */
  readonly topics: ReadonlyMap<string, Topic>
  /** The topic's channel: the broker's prefix and the topic. */
  channelOf(topic: string): string
  readonly feed: Pick<Feed, 'known' | 'isCurrent' | 'observe' | 'delivered'>
  /** The process-local cache of delivered messages. */
  readonly history: Pick<LocalHistory, 'after'>
  /** Reads a topic's position, and its stream after `after` (batched, see `Reader`). */
  read(topic: string, after?: number): Promise<TopicAnswer>
}

/**
 * The broker's history capability: `position(topic)` and
 * `replay(topic, after)`. Both settle only once every message up to their
 * position that this process's listeners get has reached them (see
 * `Barrier`). A replay is answered from the process's own cache of recent
 * messages when it reaches back far enough, so that a reconnect storm on one
 * process costs no round trip; otherwise from the topic's stream in Redis,
 * with identical replays under way sharing one read.
 * @internal
 */
export class HistoryReads {
  readonly #o: HistoryReadsOptions
  /**
   * Replays from Redis under way, by topic then `after`: identical ones
   * share one, as long as no message of the topic has reached the
   * listeners since it was sent. A stream holds its topic's live messages
   * from the moment it asks for its replay; one delivered before that must
   * be in the replay, and a read sent earlier may not have seen it.
   */
  readonly #replaying = new Map<string, Map<string, SharedReplay>>()

  /** @param options - see {@link HistoryReadsOptions} */
  constructor(options: HistoryReadsOptions) {
    this.#o = options
  }

  /**
   * The current position of `topic` (see `Broker.position`).
   * @returns a Promise of its event id
   */
  position(topic: string): Promise<string> {
    return this.#o.read(topic).then(async (answer) => {
      this.#o.feed.observe(answer.epoch, answer.position)
      await this.#o.feed.delivered(answer.position)
      return formatEventId(answer.epoch, answer.position)
    })
  }

  /**
   * The kept messages of `topic` after the id `after` (see `Broker.replay`).
   * @returns the frames, or why they cannot be had: at once from the local
   * cache, else a Promise of what Redis holds
   */
  replay(topic: string, after: string): ReplayResult | Promise<ReplayResult> {
    const id = parseEventId(after)
    if (id === undefined) return { reset: 'malformed-id' }
    const { feed } = this.#o
    const subscribed = this.#o.topics.get(this.#o.channelOf(topic))
    const known = feed.known
    // Only for ids this process has seen the history reach: one beyond
    // that is checked against the counter in Redis.
    if (subscribed !== undefined && feed.isCurrent(subscribed) && id.epoch === known.epoch && id.seq <= known.seen) {
      const frames = this.#o.history.after(subscribed.channel, id.seq)
      if (frames !== undefined) return { frames }
    }
    return this.#fromRedis(topic, after, id)
  }

  #fromRedis(topic: string, after: string, id: EventId): Promise<ReplayResult> {
    let byAfter = this.#replaying.get(topic)
    // The topic's last delivered position changes with every delivery.
    const reached = this.#o.topics.get(this.#o.channelOf(topic))?.last
    const shared = byAfter?.get(after)
    if (shared !== undefined && shared.reached === reached) return shared.result
    const result = this.#o.read(topic, id.seq).then(async (answer) => {
      const judged = this.#judge(answer, id)
      // A stream that resumes with these frames is at the last one's
      // position: messages of its other topics before it must be delivered.
      const last = 'frames' in judged ? answer.topic.entries.at(-1) : undefined
      if (last !== undefined) await this.#o.feed.delivered(last.seq)
      return judged
    })
    if (byAfter === undefined) {
      byAfter = new Map()
      this.#replaying.set(topic, byAfter)
    }
    const entry: SharedReplay = { result, reached }
    byAfter.set(after, entry)
    const inFlight = byAfter
    const done = (): void => {
      if (inFlight.get(after) === entry) inFlight.delete(after)
      if (inFlight.size === 0 && this.#replaying.get(topic) === inFlight) this.#replaying.delete(topic)
    }
    result.then(done, done)
    return result
  }

  #judge(answer: TopicAnswer, id: EventId): ReplayResult {
    this.#o.feed.observe(answer.epoch, answer.position)
    // An id above the counter was never issued by this history.
    if (answer.epoch !== id.epoch || id.seq > answer.position) return { reset: 'foreign-id' }
    if (!isCompleteAfter(answer.topic, id.seq)) return { reset: 'history-exceeded' }
    const frames: HistoryFrame[] = answer.topic.entries.map((entry) => ({ id: formatEventId(answer.epoch, entry.seq), payload: entry.payload }))
    return { frames }
  }
}

/** A replay from Redis under way, and how far the topic's deliveries had come when it was sent. */
interface SharedReplay {
  readonly result: Promise<ReplayResult>
  readonly reached: number | undefined
}

import type { KeyLayout, ReadReply, TopicRead } from './scripts.js'

/** Topics per READ script call: bounds one reply (and one script's run time in Redis). */
const TOPICS_PER_READ = 256

/** One topic's answer, with the history it belongs to. @internal */
export interface TopicAnswer {
  readonly epoch: string
  /** The counter when Redis ran the read. */
  readonly position: number
  readonly topic: TopicRead
}

interface Request {
  readonly topic: string
  readonly after: number | undefined
  resolve(answer: TopicAnswer): void
  reject(error: unknown): void
}

/**
 * Reads of positions and streams, batched: every read asked for in the same
 * turn of the event loop goes out in one READ script call (up to 256 topics
 * each), sent after all of them were asked, so each answer is at least as
 * recent as its request. A reconnect storm or many topics subscribed at once
 * costs a few round trips instead of one per stream.
 * @internal
 */
export class Reader {
  readonly #layout: KeyLayout
  readonly #run: (keys: string[], topicArgs: string[]) => Promise<ReadReply>
  #pending: Request[] = []

  /**
   * @param layout - the broker's keys
   * @param run - runs the READ script with these keys and per-topic arguments
   */
  constructor(layout: KeyLayout, run: (keys: string[], topicArgs: string[]) => Promise<ReadReply>) {
    this.#layout = layout
    this.#run = run
  }

  /**
   * Reads the position, and the entries of `topic`'s stream after `after`
   * when it is given.
   * @returns the answer; it rejects when Redis cannot be reached or refuses
   */
  read(topic: string, after?: number): Promise<TopicAnswer> {
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => this.#flush())
      this.#pending.push({ topic, after, resolve, reject })
    })
  }

  #flush(): void {
    const requests = this.#pending
    this.#pending = []
    for (let start = 0; start < requests.length; start += TOPICS_PER_READ) {
      const batch = requests.slice(start, start + TOPICS_PER_READ)
      const keys = [this.#layout.epoch, this.#layout.seq]
      const args: string[] = []
      for (const { topic, after } of batch) {
        keys.push(this.#layout.last(topic), this.#layout.stream(topic))
        args.push(after === undefined ? '' : String(after))
      }
      this.#run(keys, args).then(
        (reply) => {
          for (const [i, request] of batch.entries()) {
            const topic = reply.topics[i]
            if (topic === undefined) request.reject(new TypeError('unexpected reply from Redis: a topic is missing'))
            else request.resolve({ epoch: reply.epoch, position: reply.position, topic })
          }
        },
        (error: unknown) => {
          for (const request of batch) request.reject(error)
        },
      )
    }
  }
}

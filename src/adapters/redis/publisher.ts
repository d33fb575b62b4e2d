import { reportUnobserved } from '../../broker/unobserved.js'
import { PatchwireError } from '../../errors.js'
import { formatEventId } from '../../protocol/event-id.js'
import type { Feed } from './feed.js'
import { LONE_PUBLISH_SCRIPT, parseLonePublishReply } from './lone-publish.js'
import type { ScriptRunner } from './script-runner.js'
import { PUBLISH_SCRIPT, historyArgs, newEpoch, parsePublishReply } from './scripts.js'
import type { KeyLayout, PublishReply } from './scripts.js'

/**
 * Messages per PUBLISH script call, and payload characters after which a
 * call takes no more: they bound one call's arguments and its run time in
 * Redis, which serves nothing else meanwhile. (A larger payload still goes,
 * in a call of its own.)
 */
const MESSAGES_PER_CALL = 256
const CHARACTERS_PER_CALL = 1024 * 1024

/** What a {@link Publisher} needs from the broker. @internal */
export interface PublisherOptions {
  readonly layout: KeyLayout
  /** Runs the PUBLISH script on the publisher connection. */
  readonly runner: Pick<ScriptRunner, 'run'>
  /** What the process knows of the history, sent with each call, and told of each reply. */
  readonly feed: Pick<Feed, 'known' | 'observe'>
  /** Messages kept per topic in its Redis Stream (`history`). */
  readonly history: number
  /** How long a topic's stream outlives its last publish, in milliseconds (`historyMs`). */
  readonly historyMs: number
  /** How long a topic's `last` key outlives its last publish, in milliseconds. */
  readonly lastTtlMs: number
  readonly onError: (error: PatchwireError) => void
}

/** What a lone publish to one topic sends besides its payload. */
interface LoneTopic {
  readonly topic: string
  readonly keys: string[]
  readonly channel: string
  readonly what: string
}

/** A publish waiting for its script call. */
interface Pending {
  readonly topic: string
  readonly payload: string
  resolve(id: string): void
  reject(error: PatchwireError): void
}

/**
 * The publish path. A publish made while no PUBLISH script call is under
 * way goes out at once, in a call of its own (one round trip, as a lone
 * publish should), running the lighter script of lone-publish.ts. Those
 * made while calls are under way wait for the end of the turn of the event
 * loop, and go out together, up to 256 (or about 1 MiB of payloads) in one
 * call: a busy publisher then pays one script run, one `INCRBY` and one
 * round trip per batch instead of per message (see scripts.ts), and calls
 * still pipeline on the connection. Calls go out in publish order on one
 * connection, and Redis runs each atomically, so positions follow publish
 * order.
 *
 * A call that fails as a whole (Redis unreachable, no answer within
 * `publishTimeoutMs`, a refused script, a reply that cannot be read)
 * rejects every publish of it with `ERR_PATCHWIRE_BROKER`; a message Redis
 * refused inside a call that ran rejects alone, and was not published.
 * @internal
 */
export class Publisher {
  readonly #o: PublisherOptions
  #queue: Pending[] = []
  #inFlight = 0
  readonly #flush = (): void => this.#send()
  #lastLone: LoneTopic | undefined
  // The bounds as the scripts take them, made once.
  readonly #lastTtl: string
  readonly #history: string
  readonly #historyMs: string

  /** @param options - see {@link PublisherOptions} */
  constructor(options: PublisherOptions) {
    this.#o = options
    this.#lastTtl = String(options.lastTtlMs)
    this.#history = String(options.history)
    this.#historyMs = String(options.historyMs)
  }

  /**
   * Publishes `payload` on `topic`.
   * @returns a Promise of the message's event id; it rejects with a
   * {@link PatchwireError} of code `ERR_PATCHWIRE_BROKER`, and goes to
   * `onError` instead when nobody handles the rejection
   */
  publish(topic: string, payload: string): Promise<string> {
    const sent = new Promise<string>((resolve, reject) => {
      this.#queue.push({ topic, payload, resolve, reject })
      if (this.#queue.length > 1) return
      if (this.#inFlight === 0) this.#send()
      else setImmediate(this.#flush)
    })
    return reportUnobserved(sent, (reason) => {
      this.#o.onError(reason instanceof PatchwireError ? reason : new PatchwireError('ERR_PATCHWIRE_BROKER', `could not publish to topic "${topic}"`, { cause: reason }))
    })
  }

  #send(): void {
    const queue = this.#queue
    this.#queue = []
    let start = 0
    let characters = 0
    for (let end = 0; end < queue.length; end++) {
      characters += (queue[end] as Pending).payload.length
      if (end + 1 - start === MESSAGES_PER_CALL || characters >= CHARACTERS_PER_CALL || end + 1 === queue.length) {
        this.#call(start === 0 && end + 1 === queue.length ? queue : queue.slice(start, end + 1))
        start = end + 1
        characters = 0
      }
    }
  }

  #call(batch: readonly Pending[]): void {
    if (batch.length === 1) {
      this.#callOne(batch[0] as Pending)
      return
    }
    const { layout, feed } = this.#o
    const keys = [layout.epoch, layout.seq]
    const channels: string[] = []
    const messages: string[] = []
    const numbers = new Map<string, string>()
    for (const { topic, payload } of batch) {
      let number = numbers.get(topic)
      if (number === undefined) {
        number = String(numbers.size + 1)
        numbers.set(topic, number)
        keys.push(layout.last(topic), layout.stream(topic))
        channels.push(layout.channel(topic))
      }
      messages.push(number, payload)
    }
    const what = describe(batch, numbers.size)
    this.#inFlight++
    this.#o.runner.run(PUBLISH_SCRIPT, keys, () => [
      ...historyArgs(feed.known, this.#o.lastTtlMs), this.#history, this.#historyMs, ...channels, ...messages,
    ], what, true).then(
      (reply) => {
        this.#inFlight--
        let parsed: PublishReply
        try {
          parsed = parsePublishReply(reply)
          if (parsed.results.length !== batch.length) throw new TypeError(`unexpected reply from Redis: ${parsed.results.length} results for ${batch.length} messages`)
        } catch (error) {
          fail(batch, new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${what}: the reply of Redis cannot be read`, { cause: error }))
          return
        }
        this.#settle(batch, parsed)
      },
      (error: unknown) => {
        this.#inFlight--
        fail(batch, error instanceof PatchwireError ? error : new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${what}`, { cause: error }))
      },
    )
  }

  /** One message: the lone PUBLISH script, whose reply is its position alone while the epoch holds. */
  #callOne(pending: Pending): void {
    const { feed } = this.#o
    const { topic, payload } = pending
    const lone = this.#lone(topic)
    let sentEpoch = ''
    this.#inFlight++
    this.#o.runner.run(LONE_PUBLISH_SCRIPT, lone.keys, () => {
      const { epoch, seen } = feed.known
      sentEpoch = epoch ?? ''
      return [sentEpoch, String(seen), newEpoch(), this.#lastTtl, this.#history, this.#historyMs, lone.channel, payload]
    }, lone.what, true).then(
      (reply) => {
        this.#inFlight--
        let parsed
        try {
          parsed = parseLonePublishReply(reply, sentEpoch)
        } catch (error) {
          pending.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${lone.what}: the reply of Redis cannot be read`, { cause: error }))
          return
        }
        if ('refused' in parsed) {
          pending.reject(refused(topic, parsed.refused))
          return
        }
        feed.observe(parsed.epoch, parsed.seq - 1, parsed.seq)
        pending.resolve(formatEventId(parsed.epoch, parsed.seq))
      },
      (error: unknown) => {
        this.#inFlight--
        pending.reject(error instanceof PatchwireError ? error : new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${lone.what}`, { cause: error }))
      },
    )
  }

  /** The keys, channel and description of a lone publish to `topic`: kept for the last topic, which a sequential publisher often publishes to again. */
  #lone(topic: string): LoneTopic {
    let lone = this.#lastLone
    if (lone === undefined || lone.topic !== topic) {
      const { layout } = this.#o
      lone = { topic, keys: [layout.epoch, layout.seq, layout.last(topic), layout.stream(topic)], channel: layout.channel(topic), what: `publish to topic "${topic}"` }
      this.#lastLone = lone
    }
    return lone
  }

  #settle(batch: readonly Pending[], { epoch, base, results }: PublishReply): void {
    // Should the reply show a new epoch, the feed starts it just before
    // this batch, whose messages its listeners then still get.
    this.#o.feed.observe(epoch, base, base + batch.length)
    for (const [i, pending] of batch.entries()) {
      const result = results[i]
      if (typeof result === 'number') {
        pending.resolve(formatEventId(epoch, result))
      } else {
        pending.reject(refused(pending.topic, String(result)))
      }
    }
  }
}

/** A message Redis refused inside a call that ran. */
function refused(topic: string, error: string): PatchwireError {
  return new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis refused to publish to topic "${topic}" (${error}); check that nothing else writes the broker's keys (its prefix)`, { cause: new Error(error) })
}

function fail(batch: readonly Pending[], error: PatchwireError): void {
  for (const pending of batch) pending.reject(error)
}

/** What a call does, for error messages: `publish to topic "a"`, `publish 3 messages to topic "a"`. */
function describe(batch: readonly Pending[], topics: number): string {
  const first = (batch[0] as Pending).topic
  if (batch.length === 1) return `publish to topic "${first}"`
  const others = topics === 1 ? '' : ` and ${topics - 1} other topic(s)`
  return `publish ${batch.length} messages to topic "${first}"${others}`
}

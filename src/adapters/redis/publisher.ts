import { reportUnobserved } from '../../broker/unobserved.js'
import { PatchwireError } from '../../errors.js'
import { formatEventId } from '../../protocol/event-id.js'
import type { Feed } from './feed.js'
import type { ScriptRunner } from './script-runner.js'
import { PUBLISH_SCRIPT, historyArgs, parsePublishReply } from './scripts.js'
import type { KeyLayout } from './scripts.js'

/** What a {@link Publisher} needs from the broker. @internal */
export interface PublisherOptions {
  readonly layout: KeyLayout
  /** Runs the PUBLISH script on the publisher connection. */
  readonly runner: Pick<ScriptRunner, 'run'>
  /** What the process knows of the history, sent with each publish, and told of each reply. */
  readonly feed: Pick<Feed, 'known' | 'observe'>
  /** Messages kept per topic in its Redis Stream (`history`). */
  readonly history: number
  /** How long a topic's stream outlives its last publish, in milliseconds (`historyMs`). */
  readonly historyMs: number
  /** How long a topic's `last` key outlives its last publish, in milliseconds. */
  readonly lastTtlMs: number
  readonly onError: (error: PatchwireError) => void
}

/**
 * The publish path: each publish is one PUBLISH script call (one round trip)
 * that takes the next position, appends the payload to the topic's stream
 * and publishes it on the topic's channel (see scripts.ts).
 * @internal
 */
export class Publisher {
  readonly #o: PublisherOptions

  /** @param options - see {@link PublisherOptions} */
  constructor(options: PublisherOptions) {
    this.#o = options
  }

  /**
   * Publishes `payload` on `topic`.
   * @returns a Promise of the message's event id; it rejects with a
   * {@link PatchwireError} of code `ERR_PATCHWIRE_BROKER`, and goes to
   * `onError` instead when nobody handles the rejection
   */
  publish(topic: string, payload: string): Promise<string> {
    const { layout, feed, onError } = this.#o
    const channel = layout.channel(topic)
    const what = `publish to topic "${topic}"`
    const sent = this.#o.runner.run(PUBLISH_SCRIPT, [layout.epoch, layout.seq, layout.last(topic), layout.stream(topic)], () => [
      ...historyArgs(feed.known, this.#o.lastTtlMs), channel, payload, String(this.#o.history), String(this.#o.historyMs),
    ], what, true).then((reply) => {
      const { epoch, seq } = parsePublishReply(reply)
      // Should the reply show a new epoch, the feed starts it just before
      // this message, which its listeners then still get.
      feed.observe(epoch, seq - 1, seq)
      return formatEventId(epoch, seq)
    })
    return reportUnobserved(sent, (reason) => {
      onError(reason instanceof PatchwireError ? reason : new PatchwireError('ERR_PATCHWIRE_BROKER', `could not ${what}`, { cause: reason }))
    })
  }
}

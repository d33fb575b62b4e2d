import type { Revocation } from '../broker/broker.js'
import { revokedFrame } from '../protocol/frame.js'
import { endStreams } from './ending.js'
import type { Identities } from './identities.js'
import { openingTime } from './stream.js'
import type { Topic, TopicStream } from './topic.js'

/** What revoking needs from the rest of the core. @internal */
export interface RevocationTargets {
  /** The open streams of an identity. */
  readonly identities: Pick<Identities, 'streamsOf'>
  /** The held topic of that name, if any. */
  topic(name: string): Topic | undefined
  /** Marks the requests still opening that the revocation matches. */
  opening(revocation: Revocation): void
  /** Ends open streams as expired ones are ended: they come back through `authorize`. */
  recheck(streams: readonly TopicStream[]): void
}

/**
 * Ends the streams a revocation matches: for each, one `revoked` frame per
 * matching topic, then the end (see {@link endStreams}). The streams are
 * found through the index that holds them already: an identity's open
 * streams, or a topic's, never a walk of every stream.
 * @internal
 */
export class Revocations {
  readonly #targets: RevocationTargets

  constructor(targets: RevocationTargets) {
    this.#targets = targets
  }

  /**
   * Ends the open streams `revocation` matches, and marks the requests
   * still opening that it matches. A revocation its broker delivers late
   * (`lostAt` set) ends with `revoked` frames only the streams that were
   * open before the broker lost its connection; those opened since, and the
   * requests opening now, may have been authorized after the revocation was
   * made, so they are sent back through `authorize` instead.
   * @returns the streams ended with `revoked` frames, and the bytes written to them
   */
  revoke(revocation: Revocation): { streams: number; bytes: number } {
    const { identity, topic, lostAt } = revocation
    const targets = this.#targets
    if (lostAt === undefined) targets.opening(revocation)
    const ends: [TopicStream, string][] = []
    const since: TopicStream[] = []
    // A stream opened in the same tenth of a second as the loss counts as opened since.
    const lost = lostAt === undefined ? Infinity : openingTime(lostAt)
    const end = (stream: TopicStream, text: string): void => {
      if (stream.openedAt >= lost) since.push(stream)
      else ends.push([stream, text])
    }
    if (identity !== undefined) {
      for (const stream of targets.identities.streamsOf(identity)) {
        const text = framesFor(stream, topic)
        if (text !== '') end(stream, text)
      }
    } else {
      const held = targets.topic(topic as string)
      // Only open streams: one still opening is among the requests marked above.
      for (const stream of held?.streams ?? []) if (stream.sink !== undefined) end(stream, revokedFrame(held?.name as string))
    }
    if (since.length > 0) targets.recheck(since)
    return { streams: ends.length, bytes: endStreams(ends) }
  }

  /** Ends one open stream whose `topics` were revoked while it opened. */
  end(stream: TopicStream, topics: readonly string[]): { streams: number; bytes: number } {
    const text = topics.map(revokedFrame).join('')
    return { streams: 1, bytes: endStreams([[stream, text]]) }
  }
}

/** The `revoked` frames of `stream`: for `topic` if it carries it, or for each of its topics. */
function framesFor(stream: TopicStream, topic: string | undefined): string {
  let text = ''
  for (const { name } of stream.topics) if (topic === undefined || name === topic) text += revokedFrame(name)
  return text
}

import type { TopicStream } from './topic.js'

/**
 * Whose streams are open on a handler: the identity `identify` gave each,
 * for `maxStreamsPerIdentity` (a place is taken while the request opens,
 * so that a burst of requests cannot slip past the cap together) and for
 * `revoke({ identity })` (the open streams of an identity, found without a
 * walk of every stream). Streams without an identity are neither capped
 * nor listed.
 * @internal
 */
export class Identities {
  readonly #max: number
  /** Places taken per identity: requests opening and streams open. */
  readonly #taken = new Map<string, number>()
  readonly #open = new Map<string, Set<TopicStream>>()

  constructor(maxStreamsPerIdentity: number) {
    this.#max = maxStreamsPerIdentity
  }

  /** Takes a place for a request of `identity`; false when it has `maxStreamsPerIdentity` already. */
  take(identity: string): boolean {
    const taken = this.#taken.get(identity) ?? 0
    if (taken >= this.#max) return false
    this.#taken.set(identity, taken + 1)
    return true
  }

  /** Gives back the place of a request that did not become a stream. */
  give(identity: string): void {
    const taken = (this.#taken.get(identity) ?? 1) - 1
    if (taken === 0) this.#taken.delete(identity)
    else this.#taken.set(identity, taken)
  }

  /** A stream whose request took a place is open. */
  add(stream: TopicStream): void {
    const identity = stream.identity as string
    let streams = this.#open.get(identity)
    if (streams === undefined) this.#open.set(identity, (streams = new Set()))
    streams.add(stream)
  }

  /** A stream closed: it is forgotten and its place given back (once, however often it is called). */
  remove(stream: TopicStream): void {
    const identity = stream.identity
    if (identity === undefined) return
    const streams = this.#open.get(identity)
    if (streams === undefined || !streams.delete(stream)) return
    if (streams.size === 0) this.#open.delete(identity)
    this.give(identity)
  }

  /** The open streams of `identity`. */
  streamsOf(identity: string): ReadonlySet<TopicStream> {
    return this.#open.get(identity) ?? NONE
  }
}

const NONE: ReadonlySet<TopicStream> = new Set()

import type { Revocation } from '../../broker/broker.js'
import { checkRevocation } from '../../broker/revoke.js'
import { PatchwireError } from '../../errors.js'
import { channelsOf, type Channels, type Connection } from './clients.js'

/** What {@link Revocations} needs from the broker. @internal */
export interface RevocationsOptions {
  readonly publisher: Connection
  readonly subscriber: Connection
  /** The broker's prefix: the control channel lives under it. */
  readonly prefix: string
  /** How long a revocation may wait for Redis to take it. */
  readonly timeoutMs: number
  readonly onError: (error: PatchwireError) => void
}

/**
 * The revocation capability of the Redis broker: a revocation is one
 * `PUBLISH` of its JSON on a control channel under the broker's prefix,
 * which every process's subscriber connection listens on while it has
 * `onRevoke` listeners (its handlers), so that it reaches every process on
 * the same Redis and prefix, this one included, in one round trip.
 *
 * The channel is `<prefix>` followed by a NUL and `revocations`: topic
 * channels are `<prefix><topic>`, and a handler refuses a topic with a
 * control character, so no stream's topic can be this channel. Redis
 * pub/sub keeps nothing: a process whose subscriber is down while a
 * revocation is published misses it (its streams still end at their
 * `until`, and a reconnect is authorized again).
 * @internal
 */
export class Revocations {
  readonly #o: RevocationsOptions
  readonly #channel: string
  readonly #channels: Channels
  #listeners: readonly ((revocation: Revocation) => void)[] = []

  constructor(options: RevocationsOptions) {
    this.#o = options
    this.#channel = `${options.prefix}\u0000revocations`
    this.#channels = channelsOf(options.subscriber, (message, channel) => {
      if (channel === this.#channel) this.#receive(message)
    })
  }

  /** `Broker.revoke`: resolves once Redis has taken it. */
  revoke(revocation: Revocation): Promise<void> {
    const { publisher, timeoutMs } = this.#o
    const text = JSON.stringify(checkRevocation(revocation, 'broker.revoke'))
    return new Promise<void>((resolve, reject) => {
      const fail = (cause: unknown): void => reject(new PatchwireError('ERR_PATCHWIRE_BROKER', 'Redis did not take the revocation; call revoke again', { cause }))
      const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms (option publishTimeoutMs)`)), timeoutMs)
      timer.unref()
      publisher.command(['PUBLISH', this.#channel, text]).then(
        () => {
          clearTimeout(timer)
          resolve()
        },
        (error: unknown) => {
          clearTimeout(timer)
          fail(error)
        },
      )
    })
  }

  /** `Broker.onRevoke`: the first listener subscribes the control channel, the last one's leaving unsubscribes it. */
  onRevoke(listener: (revocation: Revocation) => void): () => void {
    this.#listeners = [...this.#listeners, listener]
    if (this.#listeners.length === 1) this.#subscribe()
    let listening = true
    return () => {
      if (!listening) return
      listening = false
      const rest = [...this.#listeners]
      rest.splice(rest.indexOf(listener), 1)
      this.#listeners = rest
      if (rest.length === 0) this.#channels.unsubscribe(this.#channel).catch(this.#failed)
    }
  }

  /** The subscriber connection is back: the control channel is subscribed again (a client may not do it by itself). */
  resubscribe(): void {
    if (this.#listeners.length > 0) this.#subscribe()
  }

  #subscribe(): void {
    this.#channels.subscribe(this.#channel).catch(this.#failed)
  }

  readonly #failed = (error: unknown): void => {
    this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'the Redis subscriber could not (un)subscribe the revocation channel; revocations from other processes are missed until it reconnects', { cause: error }))
  }

  #receive(message: string): void {
    let revocation: Revocation
    try {
      revocation = checkRevocation(JSON.parse(message), 'a revocation from Redis')
    } catch (error) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'a message on the revocation channel is not a revocation; it was dropped (publish revocations through revoke() only)', { cause: error }))
      return
    }
    for (const listener of this.#listeners) {
      try {
        listener(revocation)
      } catch (error) {
        this.#o.onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', 'a revocation listener threw; the others still got the revocation', { cause: error }))
      }
    }
  }
}

import type { Revocation } from '../../broker/broker.js'
import { checkRevocation } from '../../broker/revoke.js'
import { PatchwireError } from '../../errors.js'
import { channelsOf, type Channels, type Connection } from './clients.js'
import { compareIds, EMPTY_LOG, RevocationLog, splitMessage, type LogId, type RunRead } from './revocation-log.js'

/** What {@link Revocations} needs from the broker. @internal */
export interface RevocationsOptions {
  readonly publisher: Connection
  /** None on a publish-only broker, which sends revocations but hears none. */
  readonly subscriber: Connection | undefined
  /** The broker's prefix: the control channel and the log live under it. */
  readonly prefix: string
  /** How long a revocation may wait for Redis to take it. */
  readonly timeoutMs: number
  /** Runs the reads of the log on the publisher connection. */
  readonly read: RunRead
  readonly onError: (error: PatchwireError) => void
}

/** A revocation heard on the channel, with its log entry id. */
interface Heard {
  readonly id: LogId
  readonly revocation: Revocation
}

/**
 * The revocation capability of the Redis broker. A revocation is one script
 * call: its JSON is appended to the revocation log (a capped Redis Stream
 * under the prefix, see revocation-log.ts) and published, with its entry
 * id, on a control channel under the prefix, which every process's
 * subscriber connection listens on while it has `onRevoke` listeners (its
 * handlers). So it reaches every process on the same Redis and prefix, this
 * one included, in one round trip.
 *
 * Redis pub/sub keeps nothing, so a process also keeps the id of the last
 * revocation it heard. When its subscriber connection comes back after an
 * outage, and the channel is subscribed again, it reads the log after that
 * id and delivers what it missed with `lostAt` (when the connection was
 * lost): the streams open before then get their `revoked` frames, those
 * opened since go back through `authorize`. Revocations heard meanwhile
 * wait for those, and none is delivered twice. Should the log no longer
 * reach back to that id (more than about 10 000 revocations during the
 * outage, or Redis lost its data), the process reports it: those streams
 * still end at their `until`.
 *
 * The id kept starts at the log's newest entry when the process starts
 * listening, so that nothing made before is replayed.
 * @internal
 */
export class Revocations {
  readonly #o: RevocationsOptions
  readonly #log: RevocationLog
  readonly #channels: Channels | undefined
  #listeners: readonly ((revocation: Revocation) => void)[] = []
  /**
   * Where the next read of the log starts: the newest entry delivered, or
   * the log's end when listening started if later. Undefined until known.
   */
  #lastId: LogId | undefined
  /**
   * The newest entry delivered: one heard on the channel up to it was
   * delivered already (read from the log while its message was on its way).
   * Not the log's end when listening started: a revocation made just before
   * that read is still on its way on the channel, and must be delivered.
   */
  #deliveredId: LogId | undefined
  /** When the subscriber lost its connection (`Date.now()`), from the first loss until the missed revocations are delivered. */
  #lostAt: number | undefined
  /** Revocations heard while `lostAt` is set (the missed ones are still to be read): delivered after them. */
  #held: Heard[] = []
  /** Whether the subscriber connection is down now. */
  #down = false
  /** Counts the times listening started: a read made for an earlier one is dropped. */
  #listening = 0
  /** The reads of the log, one after another: each starts from where the one before left `#lastId`. */
  #reads: Promise<void> = Promise.resolve()

  constructor(options: RevocationsOptions) {
    this.#o = options
    this.#log = new RevocationLog(options.prefix, options.publisher, options.read)
    this.#channels = options.subscriber === undefined ? undefined : channelsOf(options.subscriber, (message, channel) => {
      if (channel === this.#log.channel) this.#receive(message)
    })
  }

  /** `Broker.revoke`: resolves once Redis has taken it (logged and published). */
  revoke(revocation: Revocation): Promise<void> {
    const { timeoutMs } = this.#o
    const text = JSON.stringify(checkRevocation(revocation, 'broker.revoke'))
    return new Promise<void>((resolve, reject) => {
      const fail = (cause: unknown): void => reject(new PatchwireError('ERR_PATCHWIRE_BROKER', 'Redis did not take the revocation; call revoke again', { cause }))
      const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms (option publishTimeoutMs)`)), timeoutMs)
      timer.unref()
      this.#log.append(text).then(
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
    if (this.#listeners.length === 1) {
      this.#restart()
      this.#subscribe()
    }
    let listening = true
    return () => {
      if (!listening) return
      listening = false
      const rest = [...this.#listeners]
      rest.splice(rest.indexOf(listener), 1)
      this.#listeners = rest
      if (rest.length > 0) return
      // What is made while nobody listens concerns no stream of this
      // process: listening again starts from the log's newest entry then.
      this.#restart()
      this.#channels?.unsubscribe(this.#log.channel).catch(this.#failed)
    }
  }

  /** The subscriber connection dropped: what is published until it is back is missed, and read from the log then. */
  lost(): void {
    this.#down = true
    if (this.#listeners.length === 0) return
    this.#lostAt ??= Date.now()
  }

  /** The subscriber connection is back: the control channel is subscribed again (a client may not do it by itself), then what was missed is read. */
  resubscribe(): void {
    this.#down = false
    if (this.#listeners.length > 0) this.#subscribe()
  }

  /** Forgets where the process was in the log, and drops the reads under way. */
  #restart(): void {
    this.#listening++
    this.#lastId = undefined
    this.#deliveredId = undefined
    this.#lostAt = undefined
    this.#held = []
  }

  /** SUBSCRIBE; once Redis confirms it, every revocation from then on is heard, so the log is read up to then. */
  #subscribe(): void {
    const channels = this.#channels
    if (channels === undefined) return
    const listening = this.#listening
    // Refused, it is sent again on the next reconnect; the read still
    // delivers what the log holds, and lets go of the revocations held.
    void channels.subscribe(this.#log.channel).catch(this.#failed).then(() => {
      this.#reads = this.#reads.then(() => this.#catchUp(listening))
    })
  }

  readonly #failed = (error: unknown): void => {
    this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'the Redis subscriber could not (un)subscribe the revocation channel; revocations from other processes are missed until it reconnects', { cause: error }))
  }

  /**
   * Reads the log: where it ends, the first time (nothing before concerns
   * this process); or, after an outage, the revocations made since the
   * last one heard, delivered with `lostAt`. Then the revocations held
   * meanwhile.
   */
  async #catchUp(listening: number): Promise<void> {
    if (listening !== this.#listening || (this.#lastId !== undefined && this.#lostAt === undefined)) return
    const lostAt = this.#lostAt
    const from = this.#lastId
    try {
      if (from === undefined) {
        const newest = await this.#log.newest()
        if (listening !== this.#listening) return
        if (this.#lastId === undefined || compareIds(newest, this.#lastId) > 0) this.#lastId = newest
        // Lost before the log's end was known: what came between is unknown.
        if (this.#lostAt !== undefined) this.#reportGap()
      } else if (lostAt !== undefined) {
        const entries = await this.#log.from(from)
        if (listening !== this.#listening) return
        if (from !== EMPTY_LOG && entries[0]?.id !== from) this.#reportGap()
        for (const { id, text } of entries) {
          const revocation = this.#parse(text)
          if (revocation !== undefined) this.#hear(id, { ...revocation, lostAt })
        }
      }
    } catch (error) {
      if (listening !== this.#listening) return
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'could not read the revocation log in Redis; revocations made while the subscriber was down may have been missed (their streams still end at their until)', { cause: error }))
    }
    const held = this.#held
    this.#held = []
    // Down again: what it misses now is read on its return, still from the first loss.
    if (!this.#down) this.#lostAt = undefined
    for (const { id, revocation } of held) this.#hear(id, revocation)
  }

  #reportGap(): void {
    this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'the revocation log in Redis no longer holds every revocation made while the subscriber was down (more than about 10000 were made, or Redis lost its data): some may have been missed; their streams still end at their until'))
  }

  #receive(message: string): void {
    const split = splitMessage(message)
    const revocation = this.#parse(split?.text)
    if (split === undefined || revocation === undefined) return
    const { id } = split
    if (this.#lostAt !== undefined) this.#held.push({ id, revocation })
    else this.#hear(id, revocation)
  }

  #parse(text: string | undefined): Revocation | undefined {
    try {
      if (text === undefined) throw new TypeError('not <log entry id> <JSON>')
      return checkRevocation(JSON.parse(text), 'a revocation from Redis')
    } catch (error) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'a message on the revocation channel is not a revocation; it was dropped (publish revocations through revoke() only)', { cause: error }))
      return undefined
    }
  }

  /** Delivers a revocation, unless it was already: one with an id up to the newest delivered was. */
  #hear(id: LogId, revocation: Revocation): void {
    if (this.#deliveredId !== undefined && compareIds(id, this.#deliveredId) <= 0) return
    this.#deliveredId = id
    if (this.#lastId === undefined || compareIds(id, this.#lastId) > 0) this.#lastId = id
    for (const listener of this.#listeners) {
      try {
        listener(revocation)
      } catch (error) {
        this.#o.onError(new PatchwireError('ERR_PATCHWIRE_LISTENER', 'a revocation listener threw; the others still got the revocation', { cause: error }))
      }
    }
  }
}

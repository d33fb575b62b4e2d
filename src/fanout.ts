import type { Unsubscribe } from './broker.js'
import { PatchwireError } from './errors.js'
import { formatEventId, newEpoch, parseEventId } from './event-id.js'
import { HEARTBEAT_FRAME, patchFrame, readyFrame, resetFrame, retryFrame } from './frame.js'
import { Heartbeat } from './heartbeat.js'
import { History } from './history.js'
import type { ResolvedOptions } from './options.js'
import { currentTick, openStream, type Request, type Response, type Stream } from './stream.js'

/**
 * Why a stream got `event: reset` instead of an exact resume, as sent in its
 * `data: {"reason": …}`.
 */
export type ResetReason =
  /** The `Last-Event-ID` is not an id this library writes. */
  | 'malformed-id'
  /** The id comes from another handler instance (another process, or before a restart). */
  | 'foreign-id'
  /** Frames after the id have left the topic's history (`history`, `historyBytes`). */
  | 'history-exceeded'
  /** The topic was not subscribed for part of the time since the id (`lingerMs` ran out). */
  | 'not-subscribed'
  /** The broker may have lost messages (for example Redis reconnected), or delivered one that could not be framed. */
  | 'broker-gap'

/** A topic this handler holds a broker subscription for, with or without streams. @internal */
export class Topic {
  readonly name: string
  readonly streams: Stream[] = []
  readonly history: History
  /** Positions from here on are complete: the topic has been subscribed since. */
  coveredFrom: number
  /** Why positions before {@link coveredFrom} cannot be replayed. */
  uncoveredBecause: 'not-subscribed' | 'broker-gap' = 'not-subscribed'
  /** When a topic without streams is let go, on `performance.now()`'s clock; 0 while it has streams. */
  lingerUntil = 0
  unsubscribe: Unsubscribe = noop
  /** Set while the broker's subscription is not live yet (see {@link Broker.subscribe}). */
  pending: Promise<void> | undefined
  /** Gives up waiting for the subscription, so that {@link Fanout.close} leaves no request waiting. */
  abandon: ((reason: unknown) => void) | undefined
  readonly fanout: Fanout

  constructor(fanout: Fanout, name: string, history: History, coveredFrom: number) {
    this.fanout = fanout
    this.name = name
    this.history = history
    this.coveredFrom = coveredFrom
  }
}

const HEARTBEAT = Buffer.from(HEARTBEAT_FRAME)
const kStream = Symbol('patchwire.stream')
type TaggedResponse = Response & { [kStream]?: Stream }

/**
 * The topic → streams map of one handler: one broker subscription per topic,
 * each message framed once and the same bytes written to every stream, the
 * history that makes reconnects exact, and the one shared heartbeat.
 * @internal
 */
export class Fanout {
  readonly #options: ResolvedOptions
  readonly #epoch = newEpoch()
  /**
   * The current position: it advances with every frame fanned out, on any
   * topic, and whenever a topic's coverage starts afresh (subscribed, or
   * after a broker gap), so that no id issued before such a start can pass
   * for one after it.
   */
  #seq = 0
  readonly #topics = new Map<string, Topic>()
  /** Topics without streams, in the order they expire (every one waits `lingerMs`). */
  readonly #lingering = new Set<Topic>()
  #lingerTimer: NodeJS.Timeout | undefined
  readonly #heartbeat: Heartbeat
  /** Counts heartbeat intervals; a stream written to in the current one needs no heartbeat. */
  #beat = 0
  #connections = 0
  #dropped = 0

  constructor(options: ResolvedOptions) {
    this.#options = options
    this.#heartbeat = new Heartbeat(options.heartbeatMs, () => this.#onBeat())
  }

  stats(): { connections: number; topics: number; dropped: number } {
    return { connections: this.#connections, topics: this.#topics.size, dropped: this.#dropped }
  }

  /**
   * Subscribes to `name` if this handler is not subscribed yet.
   * @returns a promise to wait for before {@link open} when the broker's
   * subscription is not live yet (it rejects if subscribing failed), else undefined
   * @throws PatchwireError when the broker throws on subscribe
   */
  prepare(name: string): Promise<void> | undefined {
    return (this.#topics.get(name) ?? this.#subscribe(name)).pending
  }

  /**
   * Opens a stream on `name`, which {@link prepare} has made ready:
   * `retry:`, then the replay after `lastEventId`
   * (or a reset when it cannot be exact), then the `ready` position, then
   * live frames. All of it happens synchronously, so no frame can fall
   * between the replay and the live stream.
   */
  open(req: Request, res: Response, name: string, lastEventId: string | undefined): void {
    const topic = this.#topics.get(name) ?? this.#subscribe(name)
    this.#lingering.delete(topic)
    topic.lingerUntil = 0
    const position = formatEventId(this.#epoch, this.#seq)
    const chunks: (Buffer | string)[] = [retryFrame(this.#options.retryMs)]
    if (lastEventId !== undefined && lastEventId !== '') {
      const seq = parseEventId(lastEventId, this.#epoch, this.#seq)
      const replay = typeof seq === 'number' ? topic.history.after(seq) : undefined
      if (replay !== undefined) chunks.push(...replay)
      else chunks.push(resetFrame(typeof seq === 'string' ? seq : seq < topic.coveredFrom ? topic.uncoveredBecause : 'history-exceeded', position))
    }
    chunks.push(readyFrame(position))
    let stream: Stream
    try {
      stream = openStream(req, res, chunks.length === 2 ? (chunks[0] as string) + (chunks[1] as string) : concat(chunks), topic)
    } catch (error) {
      if (topic.streams.length === 0) this.#linger(topic)
      throw error
    }
    stream.index = topic.streams.push(stream) - 1
    this.#connections++
    this.#heartbeat.start()
    // One shared listener, not a closure per stream: the stream rides on the
    // response, which (unlike the socket) has no other 'close' listener to
    // turn its listener slot into an array.
    ;(res as TaggedResponse)[kStream] = stream
    res.on('close', onResponseClose)
    // A connection that went while the request waited (authorize, the
    // broker) has already emitted 'close'.
    if (stream.sink.destroyed) this.detach(stream)
  }

  /** Ends every stream and lets every topic go. */
  close(): void {
    this.#heartbeat.stop()
    clearTimeout(this.#lingerTimer)
    this.#lingerTimer = undefined
    for (const topic of this.#topics.values()) {
      topic.abandon?.(new Error('the handler was closed'))
      for (const stream of topic.streams) {
        stream.index = -1
        // end() waits for the backlog to drain: a stalled reader would hold
        // the connection, and with it server.close(), open for ever.
        if (stream.sink.writableLength > 0) stream.sink.destroy()
        else stream.sink.end()
      }
      topic.streams.length = 0
      this.#unsubscribe(topic)
    }
    this.#topics.clear()
    this.#lingering.clear()
    this.#connections = 0
  }

  /** Forgets a stream whose connection closed; safe to call twice. */
  detach(stream: Stream): void {
    const index = stream.index
    if (index === -1) return
    stream.index = -1
    const streams = stream.topic.streams
    const last = streams.pop() as Stream
    if (last !== stream) {
      streams[index] = last
      last.index = index
    }
    if (streams.length === 0) {
      if (this.#options.lingerMs === 0) this.#drop(stream.topic)
      else this.#linger(stream.topic)
    }
    if (--this.#connections === 0) this.#heartbeat.stop()
  }

  #subscribe(name: string): Topic {
    // While the topic was not subscribed, publishes on it went nowhere and
    // moved no position: coverage starts at a position no earlier id has.
    const start = ++this.#seq
    const topic = new Topic(this, name, new History(this.#options.history, this.#options.historyBytes, start), start)
    this.#topics.set(name, topic)
    let unsubscribe: Unsubscribe
    try {
      unsubscribe = this.#options.broker.subscribe(
        name,
        (payload) => this.#deliver(topic, payload),
        () => this.#gap(topic),
      )
    } catch (error) {
      this.#topics.delete(name)
      throw new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker could not subscribe to topic "${name}"`, { cause: error })
    }
    topic.unsubscribe = unsubscribe
    const ready = (unsubscribe as { ready?: unknown }).ready
    if (isThenable(ready)) topic.pending = this.#await(topic, ready)
    return topic
  }

  /** Holds the topic's first streams until the broker's subscription is live. */
  #await(topic: Topic, ready: PromiseLike<unknown>): Promise<void> {
    const settled = new Promise<unknown>((resolve, reject) => {
      topic.abandon = reject
      Promise.resolve(ready).then(resolve, reject)
    })
    const pending = settled.then(
      () => {
        topic.pending = undefined
        topic.abandon = undefined
        // The streams that waited open right after this, before any timer
        // (even with lingerMs 0); if they all left meanwhile, the topic lingers.
        if (topic.streams.length === 0 && this.#topics.get(topic.name) === topic) this.#linger(topic)
      },
      (error: unknown) => {
        const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker could not subscribe to topic "${topic.name}"`, { cause: error })
        if (this.#topics.get(topic.name) === topic) {
          this.#topics.delete(topic.name)
          this.#unsubscribe(topic)
          this.#options.onError(failure)
        }
        throw failure
      },
    )
    // The waiting requests handle the failure; this keeps it from counting as unhandled.
    pending.catch(noop)
    return pending
  }

  #deliver(topic: Topic, payload: string): void {
    if (this.#topics.get(topic.name) !== topic) return
    // Only JSON from publish() is safe on one data: line; a broker fed by
    // something else must not be able to split or forge frames.
    if (LINE_BREAK.test(payload)) {
      this.#options.onError(new PatchwireError('ERR_PATCHWIRE_PAYLOAD', `dropped a payload on topic "${topic.name}" that contains CR or LF; publish through publish() so ops are serialised as JSON`))
      this.#gap(topic)
      return
    }
    const seq = ++this.#seq
    const frame = Buffer.from(patchFrame(payload, formatEventId(this.#epoch, seq)))
    topic.history.push(seq, frame)
    this.#write(topic.streams, frame)
  }

  /** Messages may have been lost: nothing before now can be replayed exactly. */
  #gap(topic: Topic): void {
    if (this.#topics.get(topic.name) !== topic) return
    const start = ++this.#seq
    topic.coveredFrom = start
    topic.uncoveredBecause = 'broker-gap'
    topic.history.clear(start)
    this.#write(topic.streams, Buffer.from(resetFrame('broker-gap', formatEventId(this.#epoch, start))))
  }

  #write(streams: Stream[], frame: Buffer): void {
    if (streams.length === 0) return
    const tick = currentTick()
    const max = this.#options.maxBufferedBytes
    const beat = this.#beat
    const size = frame.length
    // Backwards, so that cutting a stream (a swap-remove) never skips one.
    for (let i = streams.length - 1; i >= 0; i--) {
      const stream = streams[i] as Stream
      if (stream.send(frame, size, tick, max)) stream.wroteInBeat = beat
      else this.#cut(stream)
    }
  }

  #onBeat(): void {
    const tick = currentTick()
    const max = this.#options.maxBufferedBytes
    const beat = this.#beat++
    const size = HEARTBEAT.length
    for (const topic of this.#topics.values()) {
      const streams = topic.streams
      for (let i = streams.length - 1; i >= 0; i--) {
        const stream = streams[i] as Stream
        if (stream.wroteInBeat === beat) continue
        if (!stream.send(HEARTBEAT, size, tick, max)) this.#cut(stream)
      }
    }
  }

  /** A reader too far behind: closing it bounds memory; it resumes from its last id. */
  #cut(stream: Stream): void {
    this.#dropped++
    this.detach(stream)
    stream.sink.destroy()
  }

  /** Lets the topic go `lingerMs` from now, on the shared sweep timer. */
  #linger(topic: Topic): void {
    topic.lingerUntil = performance.now() + this.#options.lingerMs
    this.#lingering.add(topic)
    this.#scheduleSweep()
  }

  #scheduleSweep(): void {
    if (this.#lingerTimer !== undefined) return
    const first = this.#lingering.values().next()
    if (first.done === true) return
    const delay = Math.max(0, first.value.lingerUntil - performance.now())
    this.#lingerTimer = setTimeout(() => this.#sweep(), Math.ceil(delay)).unref()
  }

  #sweep(): void {
    this.#lingerTimer = undefined
    const now = performance.now()
    for (const topic of this.#lingering) {
      if (topic.lingerUntil > now) break
      this.#drop(topic)
    }
    this.#scheduleSweep()
  }

  #drop(topic: Topic): void {
    this.#lingering.delete(topic)
    this.#topics.delete(topic.name)
    this.#unsubscribe(topic)
  }

  #unsubscribe(topic: Topic): void {
    try {
      topic.unsubscribe()
    } catch (error) {
      this.#options.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker failed to unsubscribe from topic "${topic.name}"`, { cause: error }))
    }
  }
}

const LINE_BREAK = /[\r\n]/

function noop(): void {}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

function concat(chunks: (Buffer | string)[]): Buffer {
  return Buffer.concat(chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk)))
}

function onResponseClose(this: TaggedResponse): void {
  const stream = this[kStream]
  if (stream !== undefined) stream.topic.fanout.detach(stream)
}

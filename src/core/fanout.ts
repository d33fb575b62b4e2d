import type { Broker, HistoryFrame, ReplayResult } from '../broker/broker.js'
import { PatchwireError, type PatchwireErrorCode } from '../errors.js'
import { formatEventId, parseEventId } from '../protocol/event-id.js'
import { HEARTBEAT_FRAME, multiPatchFrame, patchFrame, readyFrame, resetFrame, retryFrame, snapshotFrame } from '../protocol/frame.js'
import type { ResetReason } from '../protocol/reset-reason.js'
import { Heartbeat } from './heartbeat.js'
import { Linger } from './linger.js'
import { currentTick, stallBeats, Stream, type HeldMessage, type StreamOwner } from './stream.js'
import { noop, Topic } from './topic.js'
import type { InFlightProbe, Refusal, Sink, SinkHooks, StreamOpening } from './transport.js'

/** What the core needs of the handler options, resolved. @internal */
export interface CoreOptions<Req> {
  readonly broker: Broker
  readonly heartbeatMs: number
  readonly retryMs: number
  readonly maxBufferedBytes: number
  readonly lingerMs: number
  readonly maxPending: number
  readonly pendingTimeoutMs: number
  readonly authorize: ((req: Req, topic: string) => boolean | PromiseLike<boolean>) | undefined
  readonly snapshot: ((req: Req, topic: string) => unknown) | undefined
  readonly onError: (error: PatchwireError) => void
}

/** Counters of a handler, from `handler.stats()`. */
export interface HandlerStats {
  /** Open streams (however many topics each carries). */
  connections: number
  /** Topics the handler holds a broker subscription for, lingering ones included. */
  topics: number
  /** Streams cut off as slow readers since the handler was created (see `maxBufferedBytes`). */
  dropped: number
  /** Requests waiting for `authorize`, the broker or `snapshot` before their stream opens. */
  pending: number
  /** Messages received from the broker. */
  messages: number
  /** Patch frames written, counted once per stream that got them. */
  frames: number
  /** Bytes written to streams, heartbeats and openings included. */
  bytes: number
  /** Streams that resumed exactly from a `Last-Event-ID` (counted per topic). */
  replays: number
  /** `reset` frames sent, by reason. */
  resets: Record<ResetReason, number>
  /** `snapshot` frames sent. */
  snapshots: number
  /** Requests answered with an error status, by status. */
  refused: Record<string, number>
}

/**
 * The fan-out core of one handler: topics → streams, one broker subscription
 * per topic, each message framed once per topic and frame kind and the same
 * bytes written to every stream, the openings (authorize, resume, snapshot),
 * and the one shared heartbeat. It knows no transport: it writes to sinks.
 * @internal
 */
export class Fanout<Req> implements StreamOwner {
  readonly #o: CoreOptions<Req>
  /** Whether the broker keeps history and hands out the ids. */
  readonly #brokerIds: boolean
  /** Without broker ids: the handler's own epoch and counter. */
  readonly #epoch = Math.floor(Math.random() * 36 ** 10).toString(36)
  #seq = 0
  readonly #topics = new Map<string, Topic>()
  readonly #linger: Linger<Topic>
  readonly #heartbeat: Heartbeat
  /** Counts heartbeat intervals; a stream written to in the current one needs no heartbeat. */
  #beat = 0
  #connections = 0
  /** Messages of this event-loop turn, in arrival order: consecutive ones of a topic form a run. */
  #turn: Run[] = []
  #flushScheduled = false
  readonly #flushTask = (): void => {
    this.#flushScheduled = false
    this.#flush()
  }
  readonly #waiting = new Set<Waiting<Req>>()
  #closed = false
  #closing: Promise<void> | undefined
  #onDrained: (() => void) | undefined
  readonly #stats: Omit<HandlerStats, 'connections' | 'topics' | 'pending'> = {
    dropped: 0, messages: 0, frames: 0, bytes: 0, replays: 0, snapshots: 0,
    resets: { 'malformed-id': 0, 'foreign-id': 0, 'history-exceeded': 0, 'broker-gap': 0 },
    refused: {},
  }

  readonly #inFlight: InFlightProbe
  readonly #cutSink: (sink: Sink) => void
  readonly #stallBeats: number

  /** @param hooks - what the transport adds for its sinks (see {@link SinkHooks}) */
  constructor(options: CoreOptions<Req>, hooks: SinkHooks = {}) {
    this.#o = options
    this.#inFlight = hooks.inFlight ?? NOTHING_IN_FLIGHT
    this.#cutSink = hooks.cut ?? destroySink
    this.#stallBeats = stallBeats(options.heartbeatMs)
    const { broker } = options
    this.#brokerIds = typeof broker.position === 'function' && typeof broker.replay === 'function'
    this.#heartbeat = new Heartbeat(options.heartbeatMs, () => this.#onBeat())
    this.#linger = new Linger(options.lingerMs, (topic) => this.#drop(topic))
  }

  stats(): HandlerStats {
    const s = this.#stats
    return {
      connections: this.#connections, topics: this.#topics.size, pending: this.#waiting.size,
      dropped: s.dropped, messages: s.messages, frames: s.frames, bytes: s.bytes, replays: s.replays,
      snapshots: s.snapshots, resets: { ...s.resets }, refused: { ...s.refused },
    }
  }

  /** Counts a refusal a transport answered itself (before the core saw the request). */
  countRefusal(status: number): void {
    this.#stats.refused[status] = (this.#stats.refused[status] ?? 0) + 1
  }

  /**
   * Opens a stream: authorize every topic, subscribe them, resume or
   * snapshot each, then accept the response with `retry:`, the replay (or
   * resets and snapshots), what arrived meanwhile and the `ready` position,
   * then live frames. Whatever can be synchronous is: with the in-process
   * broker, a synchronous `authorize` and `snapshot`, the stream opens before
   * this returns. Every step that waits holds the live messages of the
   * stream's topics, so none falls between the replay and the live stream.
   */
  open(o: StreamOpening<Req>): void {
    if (this.#closed) {
      this.#refuse(o, CLOSED)
      return
    }
    if (this.#waiting.size >= this.#o.maxPending) {
      this.#refuse(o, BUSY)
      return
    }
    const w: Waiting<Req> = { o, topics: [], stream: undefined, timer: undefined, cancel: undefined, done: false }
    this.#waiting.add(w)
    this.#open(w).catch((error: unknown) => this.#fail(w, 'ERR_PATCHWIRE_BROKER', 'could not open a stream', error))
  }

  async #open(w: Waiting<Req>): Promise<void> {
    const { o } = w
    const { authorize } = this.#o
    if (authorize !== undefined) {
      let verdicts: unknown[]
      try {
        verdicts = o.topics.map((topic) => authorize(o.req, topic))
        // Promise.all adopts any thenable without letting a throwing `then` escape.
        if (verdicts.some(isThenable)) verdicts = await this.#until(w, Promise.all(verdicts))
      } catch (error) {
        if (!w.done) this.#fail(w, 'ERR_PATCHWIRE_AUTHORIZE', `authorize threw for a topic of [${o.topics.join(', ')}]; the request was answered 500`, error)
        return
      }
      if (this.#gone(w)) return
      if (!verdicts.every((verdict) => verdict === true)) {
        this.#finish(w, FORBIDDEN)
        return
      }
    }
    try {
      for (const name of o.topics) w.topics.push(this.#hold(name))
    } catch (error) {
      this.#fail(w, 'ERR_PATCHWIRE_BROKER', `the broker could not subscribe to a topic of [${o.topics.join(', ')}]`, error)
      return
    }
    const subscribing = w.topics.flatMap((topic) => (topic.pending === undefined ? [] : [topic.pending]))
    if (subscribing.length > 0) {
      try {
        await this.#until(w, Promise.all(subscribing))
      } catch {
        // The topic reported its failure once for every waiting request.
        this.#finish(w, this.#closed ? CLOSED : FAILED)
        return
      }
      if (this.#gone(w)) return
    }

    // From here until accept, the stream holds every message of its topics.
    this.#flush()
    const stream = new Stream(this, o.req, w.topics)
    stream.held = []
    this.#attach(stream)
    w.stream = stream
    const { lastEventId } = o
    const replays = w.topics.map((topic) => (lastEventId === undefined ? undefined : this.#replay(topic, lastEventId)))
    const fresh = w.topics.map((topic) => (lastEventId === undefined ? this.#takeSnapshot(stream, topic) : undefined))
    let answers = this.#settle(w, replays)
    if (isThenable(answers)) {
      try {
        answers = await answers
      } catch {
        return
      }
      if (this.#gone(w)) return
    }
    const settled = answers
    // The snapshot of a topic that resets is taken now, so that it covers what was held of it.
    const states = w.topics.map((topic, k) => {
      const answer = settled[k]
      return answer !== undefined && 'reset' in answer ? this.#takeSnapshot(stream, topic) : fresh[k]
    })
    let texts = this.#settle(w, states)
    if (isThenable(texts)) {
      try {
        texts = await texts
      } catch (error) {
        if (!w.done) this.#fail(w, 'ERR_PATCHWIRE_SNAPSHOT', `snapshot threw or rejected for a topic of [${o.topics.join(', ')}]; the request was answered 500`, error)
        return
      }
      if (this.#gone(w)) return
    }
    const written = texts
    const resumed = w.topics.map((topic, k): Resumed => {
      const answer = settled[k]
      return {
        topic,
        frames: answer !== undefined && 'frames' in answer ? answer.frames : [],
        reset: answer !== undefined && 'reset' in answer ? answer.reset : undefined,
        snapshot: written[k],
      }
    })
    this.#accept(w, stream, resumed)
  }

  /** Writes the opening of a stream that waited for nothing more, and starts it. */
  #accept(w: Waiting<Req>, stream: Stream, resumed: Resumed[]): void {
    // Messages of this turn not yet written are the stream's to hold first:
    // its position is taken from its topics, which have counted them.
    this.#flush()
    // Holding them may have been too much for the stream.
    if (w.done) return
    let text = retryFrame(spread(this.#o.retryMs))
    let last = -1
    let lastId = ''
    const covered = new Map<Topic, number>()
    // A topic resumed from an id already has everything up to it: nothing
    // at or before it is written again, and the position never goes back
    // behind it (this process may not have seen that far yet).
    const from = w.o.lastEventId === undefined ? undefined : parseEventId(w.o.lastEventId)
    if (from !== undefined && this.#brokerIds && resumed.some((entry) => entry.reset === undefined)) {
      for (const entry of resumed) if (entry.reset === undefined) covered.set(entry.topic, from.seq)
      last = from.seq
      lastId = w.o.lastEventId as string
    }
    for (const entry of resumed) {
      if (entry.reset !== undefined) {
        this.#stats.resets[entry.reset]++
        text += resetFrame(entry.reset, stream.multi ? entry.topic.name : undefined, undefined)
      } else if (w.o.lastEventId !== undefined) {
        this.#stats.replays++
      }
      if (entry.snapshot !== undefined) {
        this.#stats.snapshots++
        text += snapshotFrame(entry.snapshot as string, stream.multi ? entry.topic.line : undefined)
      }
    }
    for (const message of openingMessages(resumed, stream.held as HeldMessage[])) {
      if (message.seq <= (covered.get(message.topic) ?? -1)) continue
      text += this.#frame(stream, message.topic, message.id, message.payload)
      covered.set(message.topic, message.seq)
      if (message.seq > last) {
        last = message.seq
        lastId = message.id
      }
    }
    const ready = this.#readyPosition(stream, last, lastId)
    stream.cursor = ready.seq
    text += readyFrame(ready.id)
    stream.held = undefined
    stream.heldBytes = 0
    const first = Buffer.from(text)
    let sink
    try {
      sink = w.o.accept(first.subarray(0, OPENING_PIECE_BYTES), stream)
    } catch (error) {
      this.#fail(w, 'ERR_PATCHWIRE_RESPONSE', 'the transport could not start the stream', error)
      return
    }
    // A runtime counts a write as pending until all of it is sent: a large
    // replay in pieces lets a slow but steady reader show its progress to
    // the stall check, instead of looking stalled until the end.
    let pieces = 1
    for (let at = OPENING_PIECE_BYTES; at < first.length; at += OPENING_PIECE_BYTES, pieces++) sink.write(first.subarray(at, at + OPENING_PIECE_BYTES))
    stream.start(sink, first.length, pieces, currentTick())
    this.#stats.bytes += first.length
    this.#connections++
    this.#heartbeat.start()
    this.#finish(w, undefined)
  }

  /** The position a stream has reached once its opening is written. */
  #readyPosition(stream: Stream, last: number, lastId: string): { seq: number; id: string } {
    if (!this.#brokerIds) return { seq: this.#seq, id: formatEventId(this.#epoch, this.#seq) }
    let seq = last
    let id = lastId
    for (const topic of stream.topics) {
      if (topic.seq > seq) {
        seq = topic.seq
        id = topic.id
      }
    }
    return { seq, id }
  }

  /**
   * Where `topic` resumes after `lastEventId`: the broker's history when it
   * keeps one; else the handler's own record of what reached it.
   */
  #replay(topic: Topic, lastEventId: string): Answer | PromiseLike<Answer> {
    if (this.#brokerIds) {
      try {
        const answer = (this.#o.broker.replay as NonNullable<Broker['replay']>)(topic.name, lastEventId)
        if (!isThenable(answer)) return answer
        return Promise.resolve(answer).then(undefined, (error: unknown) => this.#replayFailed(topic, error))
      } catch (error) {
        return this.#replayFailed(topic, error)
      }
    }
    const parsed = parseEventId(lastEventId)
    if (parsed === undefined) return { reset: 'malformed-id' }
    // A position this handler has not reached was not issued by it.
    if (parsed.epoch !== this.#epoch || parsed.seq > this.#seq) return { reset: 'foreign-id' }
    if (parsed.seq < topic.coveredFrom) return { reset: topic.uncoveredBecause }
    // Without history, a reconnect is exact only when it missed nothing.
    return topic.seq > parsed.seq ? { reset: 'history-exceeded' } : NOTHING_MISSED
  }

  /** A broker that cannot read its history: the stream resets instead of failing. */
  #replayFailed(topic: Topic, error: unknown): Answer {
    this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker could not replay topic "${topic.name}"; the stream gets a reset instead`, { cause: error }))
    return { reset: 'broker-gap' }
  }

  /**
   * Calls `snapshot` for one topic of a stream, serialising its result once.
   * What the stream held of the topic so far is dropped: the snapshot is
   * taken after it, so it covers it (exactly, for a synchronous snapshot).
   */
  #takeSnapshot(stream: Stream, topic: Topic): string | undefined | Promise<string> {
    const { snapshot } = this.#o
    if (snapshot === undefined) return undefined
    // This turn's messages of the topic are held first, then dropped with the rest.
    this.#flush()
    if (stream.held !== undefined && stream.held.length > 0) stream.held = stream.held.filter((message) => message.topic !== topic)
    try {
      const state = snapshot(stream.req as Req, topic.name)
      return isThenable(state) ? Promise.resolve(state).then(serialiseState) : serialiseState(state)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Ends every stream (giving each a spread `retry:`) and lets every topic go; later requests get 503. */
  close(reconnectSpreadMs: number): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closed = true
    for (const w of [...this.#waiting]) this.#finish(w, CLOSED)
    this.#flush()
    this.#heartbeat.stop()
    this.#linger.clear()
    const streams = new Set<Stream>()
    for (const topic of this.#topics.values()) {
      topic.abandon?.(new Error('the handler was closed'))
      for (const stream of topic.streams) streams.add(stream)
    }
    for (const topic of this.#topics.values()) this.#unsubscribe(topic)
    this.#topics.clear()
    const sinks: Sink[] = []
    for (const stream of streams) {
      const sink = stream.sink
      if (sink === undefined) continue
      sinks.push(sink)
      // end() waits for the backlog to drain: a stalled reader would hold
      // the connection, and with it server.close(), open for ever.
      if (sink.writableLength > 0) {
        sink.destroy()
        continue
      }
      // Clients come back spread over a window instead of all at once.
      sink.write(Buffer.from(retryFrame(this.#o.retryMs + Math.floor(Math.random() * reconnectSpreadMs))))
      sink.end()
    }
    this.#closing = new Promise<void>((resolve) => {
      if (this.#connections === 0) {
        resolve()
        return
      }
      // What has not closed by the end of the grace is destroyed.
      const timer = setTimeout(() => {
        for (const sink of sinks) sink.destroy()
        resolve()
      }, CLOSE_GRACE_MS)
      timer.unref()
      this.#onDrained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    return this.#closing
  }

  /** Forgets a stream whose connection closed (or that is cut); safe to call twice. */
  detach(stream: Stream): void {
    if (!stream.attached) return
    const { topics, slots } = stream
    for (let k = 0; k < topics.length; k++) {
      const topic = topics[k] as Topic
      const index = slots[k] as number
      slots[k] = -1
      const streams = topic.streams
      const last = streams.pop() as Stream
      if (last !== stream) {
        streams[index] = last
        last.slots[last.topics.length === 1 ? 0 : last.topics.indexOf(topic)] = index
      }
      if (stream.multi) topic.multi--
      this.#release(topic)
    }
    if (stream.sink === undefined) return
    if (--this.#connections === 0) {
      this.#heartbeat.stop()
      this.#onDrained?.()
    }
  }

  #attach(stream: Stream): void {
    const { topics, slots } = stream
    for (let k = 0; k < topics.length; k++) {
      const topic = topics[k] as Topic
      slots[k] = topic.streams.push(stream) - 1
      if (stream.multi) topic.multi++
      this.#linger.delete(topic)
    }
  }

  /** The topic, subscribed if it is not yet, held for a waiting request. */
  #hold(name: string): Topic {
    let topic = this.#topics.get(name)
    if (topic === undefined) topic = this.#subscribe(name)
    else this.#linger.delete(topic)
    topic.waiters++
    return topic
  }

  #subscribe(name: string): Topic {
    const topic = new Topic(name)
    const { broker } = this.#o
    this.#topics.set(name, topic)
    try {
      topic.unsubscribe = broker.subscribe(name, (payload, id) => this.#deliver(topic, payload, id), () => this.#gap(topic))
    } catch (error) {
      this.#topics.delete(name)
      throw error
    }
    const ready = topic.unsubscribe.ready
    if (!this.#brokerIds) {
      if (isThenable(ready)) topic.pending = this.#whenLive(topic, ready)
      else this.#cover(topic)
      return topic
    }
    if (!isThenable(ready)) {
      try {
        const position = (broker.position as NonNullable<Broker['position']>)(name)
        if (!isThenable(position)) {
          this.#startAt(topic, position)
          return topic
        }
        topic.pending = this.#whenLive(topic, position)
      } catch (error) {
        this.#topics.delete(name)
        this.#unsubscribe(topic)
        throw error
      }
      return topic
    }
    topic.pending = this.#whenLive(topic, Promise.resolve(ready).then(() => (broker.position as NonNullable<Broker['position']>)(name)))
    return topic
  }

  /** Without broker ids: the topic is complete from a position no earlier id has. */
  #cover(topic: Topic): void {
    const start = ++this.#seq
    topic.coveredFrom = start
    topic.advance(start, formatEventId(this.#epoch, start))
  }

  /** Where a topic's stream starts: nothing at or before `position` is written to it. */
  #startAt(topic: Topic, position: unknown): void {
    const parsed = typeof position === 'string' ? parseEventId(position) : undefined
    if (parsed === undefined) throw new TypeError(`the broker's position for topic "${topic.name}" is not an event id: ${String(position)}`)
    topic.advance(parsed.seq, position as string)
  }

  /** Holds the topic's first streams until the subscription is live and positioned. */
  #whenLive(topic: Topic, live: PromiseLike<unknown>): Promise<void> {
    const settled = new Promise<unknown>((resolve, reject) => {
      topic.abandon = reject
      Promise.resolve(live).then(resolve, reject)
    })
    const pending = settled.then(
      (position) => {
        topic.pending = undefined
        topic.abandon = undefined
        if (this.#brokerIds) this.#startAt(topic, position)
        else this.#cover(topic)
      },
    ).catch((error: unknown) => {
      topic.pending = undefined
      topic.abandon = undefined
      const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker could not subscribe to topic "${topic.name}"`, { cause: error })
      if (this.#topics.get(topic.name) === topic) {
        this.#topics.delete(topic.name)
        this.#linger.delete(topic)
        this.#unsubscribe(topic)
        if (!this.#closed) this.#o.onError(failure)
      }
      throw failure
    })
    // The waiting requests handle the failure; this keeps it from counting as unhandled.
    pending.catch(noop)
    return pending
  }

  #deliver(topic: Topic, payload: string, brokerId: string | undefined): void {
    if (this.#topics.get(topic.name) !== topic) return
    // Only JSON from publish() is safe on one data: line; a broker fed by
    // something else must not be able to split or forge frames.
    if (LINE_BREAK.test(payload)) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_PAYLOAD', `dropped a payload on topic "${topic.name}" that contains CR or LF; publish through publish() so ops are serialised as JSON`))
      this.#gap(topic)
      return
    }
    let seq: number
    let id: string
    if (this.#brokerIds) {
      const parsed = brokerId === undefined ? undefined : parseEventId(brokerId)
      if (parsed === undefined) {
        this.#o.onError(new PatchwireError('ERR_PATCHWIRE_PAYLOAD', `the broker delivered a message on topic "${topic.name}" without a valid event id; its streams are reset`))
        this.#gap(topic)
        return
      }
      // At or before the topic's position: already covered (a redelivery,
      // or older than the subscription's start).
      if (parsed.seq <= topic.seq) return
      seq = parsed.seq
      id = brokerId as string
    } else {
      seq = ++this.#seq
      id = formatEventId(this.#epoch, seq)
    }
    topic.advance(seq, id)
    this.#stats.messages++
    if (topic.streams.length === 0) return
    const run = this.#turn[this.#turn.length - 1]
    if (run !== undefined && run.topic === topic) {
      run.seqs.push(seq)
      run.ids.push(id)
      run.payloads.push(payload)
    } else {
      this.#turn.push({ topic, seqs: [seq], ids: [id], payloads: [payload] })
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      // The end of this turn of the event loop, not a timer: a lone publish
      // goes out in the same turn, and a burst (a publishing loop, awaited or
      // not; many messages in one read of a broker's socket) goes out as one
      // write per stream.
      setImmediate(this.#flushTask)
    }
  }

  /** Writes this turn's messages, run by run in arrival order, so that ids never go backwards on a stream. */
  #flush(): void {
    if (this.#turn.length === 0) return
    const runs = this.#turn
    this.#turn = []
    for (const run of runs) this.#writeRun(run)
  }

  #writeRun(run: Run): void {
    const { topic, seqs } = run
    const streams = topic.streams
    if (streams.length === 0) return
    const first = seqs[0] as number
    const last = seqs[seqs.length - 1] as number
    const tick = currentTick()
    const max = this.#o.maxBufferedBytes
    const beat = this.#beat
    let single: Buffer | undefined
    let multi: Buffer | undefined
    let written = 0
    let bytes = 0
    // Backwards, so that cutting a stream (a swap-remove) never skips one.
    for (let i = streams.length - 1; i >= 0; i--) {
      const stream = streams[i] as Stream
      if (stream.held !== undefined) {
        this.#holdRun(stream, run)
        continue
      }
      if (last <= stream.cursor) continue
      let chunk = stream.multi ? (multi ??= this.#runBytes(run, true, 0)) : (single ??= this.#runBytes(run, false, 0))
      if (first <= stream.cursor) chunk = this.#runBytes(run, stream.multi, stream.cursor)
      stream.cursor = last
      if (stream.send(chunk, tick, max)) {
        stream.wroteInBeat = beat
        written++
        bytes += chunk.length
      } else {
        this.#cut(stream)
      }
    }
    this.#stats.frames += written * seqs.length
    this.#stats.bytes += bytes
  }

  /** A run's frames after position `after`, encoded once for every stream of one kind. */
  #runBytes(run: Run, multi: boolean, after: number): Buffer {
    let text = ''
    const line = multi ? run.topic.line : ''
    for (let i = 0; i < run.seqs.length; i++) {
      if ((run.seqs[i] as number) <= after) continue
      text += multi ? multiPatchFrame(line, run.payloads[i] as string, run.ids[i] as string) : patchFrame(run.payloads[i] as string, run.ids[i])
    }
    return Buffer.from(text)
  }

  #holdRun(stream: Stream, run: Run): void {
    const held = stream.held as HeldMessage[]
    for (let i = 0; i < run.seqs.length; i++) {
      const payload = run.payloads[i] as string
      held.push({ topic: run.topic, seq: run.seqs[i] as number, id: run.ids[i] as string, payload })
      stream.heldBytes += payload.length
    }
    if (stream.heldBytes <= this.#o.maxBufferedBytes) return
    // Too much arrived while the stream waited: it could not catch up.
    if (stream.sink === undefined) {
      for (const w of this.#waiting) if (w.stream === stream) this.#finish(w, BUSY)
    } else {
      this.#cut(stream)
    }
  }

  #frame(stream: Stream, topic: Topic, id: string, payload: string): string {
    return stream.multi ? multiPatchFrame(topic.line, payload, id) : patchFrame(payload, id)
  }

  /**
   * Messages may have been lost: every stream of the topic gets a reset
   * (and a new snapshot); streams still opening are refused, to retry.
   */
  #gap(topic: Topic): void {
    if (this.#topics.get(topic.name) !== topic) return
    this.#flush()
    if (!this.#brokerIds) {
      this.#cover(topic)
      topic.uncoveredBecause = 'broker-gap'
    }
    const id = this.#brokerIds ? undefined : topic.id
    for (const stream of [...topic.streams]) {
      if (stream.sink === undefined) {
        for (const w of this.#waiting) if (w.stream === stream) this.#finish(w, RETRY)
        continue
      }
      this.#stats.resets['broker-gap']++
      const reset = resetFrame('broker-gap', stream.multi ? topic.name : undefined, stream.multi ? undefined : id)
      this.#resync(stream, topic, reset)
    }
  }

  /** Writes a reset of one topic to a live stream, then the topic's snapshot. */
  #resync(stream: Stream, topic: Topic, reset: string): void {
    const state = this.#takeSnapshot(stream, topic)
    if (!isThenable(state)) {
      if (state !== undefined) this.#stats.snapshots++
      this.#send(stream, reset + (state === undefined ? '' : snapshotFrame(state, stream.multi ? topic.line : undefined)))
      return
    }
    // Everything the stream gets meanwhile waits behind the snapshot, in order.
    this.#send(stream, reset)
    stream.held ??= []
    const timer = setTimeout(() => this.#snapshotFailed(stream, topic, new Error(`snapshot took longer than ${this.#o.pendingTimeoutMs} ms (option pendingTimeoutMs)`)), this.#o.pendingTimeoutMs)
    timer.unref()
    state.then(
      (text) => {
        clearTimeout(timer)
        if (!stream.attached) return
        this.#flush()
        this.#stats.snapshots++
        let out = snapshotFrame(text, stream.multi ? topic.line : undefined)
        for (const message of stream.held ?? []) {
          // Held before the cursor check: what the stream already has stays out.
          if (message.seq <= stream.cursor) continue
          stream.cursor = message.seq
          out += this.#frame(stream, message.topic, message.id, message.payload)
        }
        stream.held = undefined
        stream.heldBytes = 0
        this.#send(stream, out)
      },
      (error: unknown) => {
        clearTimeout(timer)
        this.#snapshotFailed(stream, topic, error)
      },
    )
  }

  /** A stream left without state is ended: it reconnects and tries again. */
  #snapshotFailed(stream: Stream, topic: Topic, error: unknown): void {
    if (!stream.attached) return
    this.#o.onError(new PatchwireError('ERR_PATCHWIRE_SNAPSHOT', `snapshot threw or rejected for topic "${topic.name}" after a reset; the stream was ended so that it reconnects`, { cause: error }))
    const sink = stream.sink
    this.detach(stream)
    sink?.end()
  }

  #send(stream: Stream, text: string): void {
    const chunk = Buffer.from(text)
    if (stream.send(chunk, currentTick(), this.#o.maxBufferedBytes)) {
      stream.wroteInBeat = this.#beat
      this.#stats.bytes += chunk.length
    } else {
      this.#cut(stream)
    }
  }

  #onBeat(): void {
    this.#flush()
    const tick = currentTick()
    const max = this.#o.maxBufferedBytes
    const beat = this.#beat++
    let beats = 0
    for (const topic of this.#topics.values()) {
      const streams = topic.streams
      for (let i = streams.length - 1; i >= 0; i--) {
        const stream = streams[i] as Stream
        if (stream.seenInBeat === beat || stream.held !== undefined) continue
        stream.seenInBeat = beat
        if (stream.isStalled(this.#inFlight, this.#stallBeats)) this.#cut(stream)
        else if (stream.wroteInBeat === beat) continue
        else if (stream.send(HEARTBEAT, tick, max)) beats++
        else this.#cut(stream)
      }
    }
    this.#stats.bytes += beats * HEARTBEAT.length
  }

  /** A reader too far behind: closing it bounds memory; it resumes from its last id. */
  #cut(stream: Stream): void {
    this.#stats.dropped++
    const sink = stream.sink
    this.detach(stream)
    if (sink !== undefined) this.#cutSink(sink)
  }

  /** A topic nobody uses any more lingers, so that an ordinary reconnect finds it. */
  #release(topic: Topic): void {
    if (topic.streams.length > 0 || topic.waiters > 0 || this.#topics.get(topic.name) !== topic) return
    // A topic still subscribing lingers on the timer even with lingerMs 0,
    // so that the streams waiting for it open before it is let go.
    if (this.#o.lingerMs === 0 && topic.pending === undefined) this.#drop(topic)
    else this.#linger.add(topic)
  }

  #drop(topic: Topic): void {
    this.#linger.delete(topic)
    this.#topics.delete(topic.name)
    this.#unsubscribe(topic)
  }

  #unsubscribe(topic: Topic): void {
    try {
      topic.unsubscribe()
    } catch (error) {
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `the broker failed to unsubscribe from topic "${topic.name}"`, { cause: error }))
    }
  }

  /**
   * The values of `items`, awaiting only if one of them is a promise, so
   * that an opening with nothing to wait for stays synchronous.
   */
  #settle<T>(w: Waiting<Req>, items: readonly (T | PromiseLike<T>)[]): T[] | Promise<T[]> {
    if (!items.some(isThenable)) return items as T[]
    return this.#until(w, Promise.all(items))
  }

  /** Waits for `promise`, unless the request times out or is answered first (then it rejects). */
  #until<T>(w: Waiting<Req>, promise: PromiseLike<T>): Promise<T> {
    if (w.timer === undefined) {
      w.timer = setTimeout(() => this.#finish(w, TIMED_OUT), this.#o.pendingTimeoutMs)
      w.timer.unref()
    }
    return new Promise<T>((resolve, reject) => {
      w.cancel = reject
      Promise.resolve(promise).then(resolve, reject)
    })
  }

  /** After a wait: whether the request is over (answered, timed out, or its client left). */
  #gone(w: Waiting<Req>): boolean {
    if (w.done) return true
    if (!w.o.isGone()) return false
    this.#finish(w, undefined)
    return true
  }

  #fail(w: Waiting<Req>, code: PatchwireErrorCode, message: string, error: unknown): void {
    if (w.done) return
    this.#o.onError(error instanceof PatchwireError && code === 'ERR_PATCHWIRE_BROKER' ? error : new PatchwireError(code, message, { cause: error }))
    this.#finish(w, FAILED)
  }

  /** Ends a waiting request: refused (unless its client left), or accepted (refusal undefined after accept). */
  #finish(w: Waiting<Req>, refusal: Refusal | undefined): void {
    if (w.done) return
    w.done = true
    clearTimeout(w.timer)
    w.cancel?.(CANCELLED)
    this.#waiting.delete(w)
    const stream = w.stream
    if (stream !== undefined && stream.sink === undefined) this.detach(stream)
    for (const topic of w.topics) {
      topic.waiters--
      this.#release(topic)
    }
    if (refusal !== undefined && !w.o.isGone()) this.#refuse(w.o, refusal)
  }

  #refuse(o: StreamOpening<Req>, refusal: Refusal): void {
    this.countRefusal(refusal.status)
    o.refuse(refusal)
  }
}

/** A request waiting for its stream to open. */
interface Waiting<Req> {
  readonly o: StreamOpening<Req>
  /** The topics it holds (they are not let go while it waits). */
  topics: Topic[]
  stream: Stream | undefined
  timer: NodeJS.Timeout | undefined
  cancel: ((reason: unknown) => void) | undefined
  done: boolean
}

/** Where a topic resumes: the broker's answer, or the core's own (which adds `broker-gap`). */
type Answer = ReplayResult | { readonly reset: ResetReason }

interface Resumed {
  readonly topic: Topic
  readonly frames: readonly HistoryFrame[]
  readonly reset: ResetReason | undefined
  readonly snapshot: string | undefined
}

/** Consecutive messages of one topic within a turn. */
interface Run {
  readonly topic: Topic
  readonly seqs: number[]
  readonly ids: string[]
  readonly payloads: string[]
}

const FORBIDDEN: Refusal = { status: 403, message: 'Forbidden' }
const FAILED: Refusal = { status: 500, message: 'Internal Server Error' }
const CLOSED: Refusal = { status: 503, message: 'Service Unavailable: the event stream is shutting down' }
const BUSY: Refusal = { status: 503, message: 'Service Unavailable: too many event streams are waiting to open (option maxPending); retry later' }
const TIMED_OUT: Refusal = { status: 503, message: 'Service Unavailable: the event stream could not open in time (option pendingTimeoutMs); retry later' }
const RETRY: Refusal = { status: 503, message: 'Service Unavailable: the broker lost messages while the event stream opened; retry' }
const NOTHING_MISSED: Answer = { frames: [] }
const NOTHING_IN_FLIGHT: InFlightProbe = () => 0
const destroySink = (sink: Sink): void => sink.destroy()
const CANCELLED = new Error('the request was answered')
const HEARTBEAT = Buffer.from(HEARTBEAT_FRAME)
const LINE_BREAK = /[\r\n]/
/** The size of the pieces a stream's opening (retry, replay, ready) is written in. */
const OPENING_PIECE_BYTES = 64 * 1024
/** How long `close()` lets ended streams finish before it destroys them. */
const CLOSE_GRACE_MS = 1000

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

/** The `retry:` hint of one stream: spread over ±25 % so that reconnects do not all arrive at once. */
function spread(retryMs: number): number {
  return Math.round(retryMs * (0.75 + Math.random() * 0.5))
}

function serialiseState(state: unknown): string {
  const text = JSON.stringify(state)
  if (text === undefined) throw new TypeError(`snapshot must return a JSON value, got ${typeof state}`)
  return text
}

/**
 * A stream's replayed frames and the messages it held while it opened, in
 * one position order: each topic's replay is read on its own, so one can be
 * older than messages of another topic that arrived meanwhile, and ids must
 * never go back on a stream. Of a message both replayed and held, the
 * replayed one comes first (the sort is stable) and the other is skipped.
 */
function openingMessages(resumed: readonly Resumed[], held: readonly HeldMessage[]): readonly HeldMessage[] {
  const replayed: HeldMessage[] = []
  let sources = held.length > 0 ? 1 : 0
  for (const { topic, frames } of resumed) {
    if (frames.length > 0) sources++
    for (const frame of frames) replayed.push({ topic, seq: parseEventId(frame.id)?.seq ?? 0, id: frame.id, payload: frame.payload })
  }
  if (replayed.length === 0) return held
  const all = replayed.concat(held)
  if (sources > 1) all.sort((a, b) => a.seq - b.seq)
  return all
}

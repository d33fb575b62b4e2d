import { PatchwireError } from '../errors.js'
import { multiPatchFrame, patchFrame } from '../protocol/frame.js'
import type { HeldMessage } from './stream.js'
import type { Counters } from './stats.js'
import type { Numbering } from './numbering.js'
import { currentTick } from './tick.js'
import type { Topic, TopicStream } from './topic.js'
import type { Sink } from './transport.js'

/** What delivery needs from the rest of the core. @internal */
export interface DeliveryEvents {
  /** Messages of `topic` may have been lost (a payload that cannot be framed, or without an id). */
  gap(topic: Topic): void
  /** A stream still opening was held more than `maxBufferedBytes` of messages: it cannot catch up. */
  overflow(stream: TopicStream): void
}

/** The heartbeat interval under way: a stream written to in it needs no heartbeat. @internal */
export interface BeatClock {
  readonly beat: number
}

/**
 * The live path: each message the broker delivers is numbered, queued with
 * the others of this event-loop turn, and written at the end of the turn,
 * framed once per topic and frame kind (single- or multi-topic) with the
 * same bytes for every stream. Consecutive messages of one topic form a run,
 * so a burst is one write per stream. A stream still waiting (its opening,
 * or a snapshot) holds its messages instead; a stream whose reader has
 * fallen behind is cut.
 * @internal
 */
export class Delivery {
  readonly #numbering: Numbering
  readonly #counters: Counters
  readonly #maxBufferedBytes: number
  readonly #clock: BeatClock
  readonly #cutSink: (sink: Sink) => void
  readonly #events: DeliveryEvents
  readonly #onError: (error: PatchwireError) => void
  /** Messages of this event-loop turn, in arrival order: consecutive ones of a topic form a run. */
  #turn: Run[] = []
  #flushScheduled = false
  readonly #flushTask = (): void => {
    this.#flushScheduled = false
    this.flush()
  }

  constructor(numbering: Numbering, counters: Counters, maxBufferedBytes: number, clock: BeatClock, cutSink: (sink: Sink) => void, events: DeliveryEvents, onError: (error: PatchwireError) => void) {
    this.#numbering = numbering
    this.#counters = counters
    this.#maxBufferedBytes = maxBufferedBytes
    this.#clock = clock
    this.#cutSink = cutSink
    this.#events = events
    this.#onError = onError
  }

  /** Takes a message of `topic` from the broker: written at the end of this turn. */
  receive(topic: Topic, payload: string, brokerId: string | undefined): void {
    // Only JSON from publish() is safe on one data: line; a broker fed by
    // something else must not be able to split or forge frames.
    if (LINE_BREAK.test(payload)) {
      this.#onError(new PatchwireError('ERR_PATCHWIRE_PAYLOAD', `dropped a payload on topic "${topic.name}" that contains CR or LF; publish through publish() so ops are serialised as JSON`))
      this.#events.gap(topic)
      return
    }
    const taken = this.#numbering.take(topic, brokerId)
    if (taken === 'invalid') {
      this.#onError(new PatchwireError('ERR_PATCHWIRE_PAYLOAD', `the broker delivered a message on topic "${topic.name}" without a valid event id; its streams are reset`))
      this.#events.gap(topic)
      return
    }
    if (taken === 'seen') return
    const { seq, id } = topic
    this.#counters.messages++
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

  /** Writes this turn's messages now, run by run in arrival order, so that ids never go backwards on a stream. */
  flush(): void {
    if (this.#turn.length === 0) return
    const runs = this.#turn
    this.#turn = []
    for (const run of runs) this.#writeRun(run)
  }

  /** Writes `text` to one stream, or cuts it if its reader has fallen behind. */
  send(stream: TopicStream, text: string): void {
    const chunk = Buffer.from(text)
    if (stream.send(chunk, currentTick(), this.#maxBufferedBytes)) {
      stream.wroteInBeat = this.#clock.beat
      this.#counters.bytes += chunk.length
    } else {
      this.cut(stream)
    }
  }

  /** A reader too far behind: closing it bounds memory; it resumes from its last id. */
  cut(stream: TopicStream): void {
    this.#counters.dropped++
    const sink = stream.sink
    stream.detach()
    if (sink !== undefined) this.#cutSink(sink)
  }

  #writeRun(run: Run): void {
    const { topic, seqs } = run
    const streams = topic.streams
    if (streams.length === 0) return
    const first = seqs[0] as number
    const last = seqs[seqs.length - 1] as number
    const tick = currentTick()
    const max = this.#maxBufferedBytes
    const beat = this.#clock.beat
    let single: Buffer | undefined
    let multi: Buffer | undefined
    let written = 0
    let bytes = 0
    // Backwards, so that cutting a stream (a swap-remove) never skips one.
    for (let i = streams.length - 1; i >= 0; i--) {
      const stream = streams[i] as TopicStream
      if (stream.held !== undefined) {
        this.#holdRun(stream, run)
        continue
      }
      if (last <= stream.cursor) continue
      let chunk = stream.multi ? (multi ??= runBytes(run, true, 0)) : (single ??= runBytes(run, false, 0))
      if (first <= stream.cursor) chunk = runBytes(run, stream.multi, stream.cursor)
      stream.cursor = last
      if (stream.send(chunk, tick, max)) {
        stream.wroteInBeat = beat
        written++
        bytes += chunk.length
      } else {
        this.cut(stream)
      }
    }
    this.#counters.frames += written * seqs.length
    this.#counters.bytes += bytes
  }

  #holdRun(stream: TopicStream, run: Run): void {
    const held = stream.held as HeldMessage<Topic>[]
    for (let i = 0; i < run.seqs.length; i++) {
      const payload = run.payloads[i] as string
      held.push({ topic: run.topic, seq: run.seqs[i] as number, id: run.ids[i] as string, payload })
      stream.heldBytes += payload.length
    }
    if (stream.heldBytes <= this.#maxBufferedBytes) return
    // Too much arrived while the stream waited: it could not catch up.
    if (stream.sink === undefined) this.#events.overflow(stream)
    else this.cut(stream)
  }
}

/** One message as a frame of `stream`: naming its topic when the stream carries several. @internal */
export function frameFor(stream: TopicStream, topic: Topic, id: string, payload: string): string {
  return stream.multi ? multiPatchFrame(topic.line, payload, id) : patchFrame(payload, id)
}

/** Consecutive messages of one topic within a turn. */
interface Run {
  readonly topic: Topic
  readonly seqs: number[]
  readonly ids: string[]
  readonly payloads: string[]
}

/** A run's frames after position `after`, encoded once for every stream of one kind. */
function runBytes(run: Run, multi: boolean, after: number): Buffer {
  let text = ''
  const line = multi ? run.topic.line : ''
  for (let i = 0; i < run.seqs.length; i++) {
    if ((run.seqs[i] as number) <= after) continue
    text += multi ? multiPatchFrame(line, run.payloads[i] as string, run.ids[i] as string) : patchFrame(run.payloads[i] as string, run.ids[i])
  }
  return Buffer.from(text)
}

const LINE_BREAK = /[\r\n]/

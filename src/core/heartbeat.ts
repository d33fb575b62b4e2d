import { HEARTBEAT_FRAME } from '../protocol/frame.js'
import type { BeatClock } from './delivery.js'
import type { Counters } from './stats.js'
import { stallBeats } from './stream.js'
import { currentTick } from './tick.js'
import type { Topic, TopicStream } from './topic.js'
import type { InFlightProbe, KernelProbe } from './transport.js'

/** What the heartbeat walks and whom it asks to write or cut. @internal */
export interface HeartbeatTargets {
  /** Every topic held, whose streams the beat visits. */
  topics(): Iterable<Topic>
  /** Writes what this turn has queued, so that a heartbeat never overtakes a frame. */
  flush(): void
  /** Cuts a stream whose reader has stalled or fallen behind. */
  cut(stream: TopicStream): void
}

/**
 * The one shared tick of a handler: a single unref'd interval, running only
 * while at least one stream is open, however many streams there are. Each
 * beat visits every open stream once: one that stalled (took nothing of its
 * backlog for {@link stallBeats} intervals) is cut, one written to during
 * the interval is skipped, and every other gets a keep-alive comment.
 * @internal
 */
export class Heartbeat implements BeatClock {
  /** Counts intervals; a stream written to in the current one needs no heartbeat. */
  beat = 0
  readonly #intervalMs: number
  readonly #stallBeats: number
  readonly #maxBufferedBytes: number
  readonly #inFlight: InFlightProbe
  readonly #kernelHeld: KernelProbe | undefined
  readonly #targets: HeartbeatTargets
  readonly #counters: Counters
  readonly #onBeat = (): void => this.#visit()
  #timer: NodeJS.Timeout | undefined

  /**
   * @param inFlight - see {@link InFlightProbe}
   * @param kernelHeld - see {@link KernelProbe}: asked only about a stream that got no frame in the interval
   */
  constructor(intervalMs: number, maxBufferedBytes: number, inFlight: InFlightProbe, kernelHeld: KernelProbe | undefined, targets: HeartbeatTargets, counters: Counters) {
    this.#intervalMs = intervalMs
    this.#stallBeats = stallBeats(intervalMs)
    this.#maxBufferedBytes = maxBufferedBytes
    this.#inFlight = inFlight
    this.#kernelHeld = kernelHeld
    this.#targets = targets
    this.#counters = counters
  }

  start(): void {
    if (this.#timer !== undefined) return
    // unref: an idle stream must never be what keeps the process alive.
    this.#timer = setInterval(this.#onBeat, this.#intervalMs).unref()
  }

  stop(): void {
    if (this.#timer === undefined) return
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #visit(): void {
    const targets = this.#targets
    targets.flush()
    const tick = currentTick()
    const max = this.#maxBufferedBytes
    const beat = this.beat++
    let beats = 0
    for (const topic of targets.topics()) {
      const streams = topic.streams
      for (let i = streams.length - 1; i >= 0; i--) {
        const stream = streams[i] as TopicStream
        // A multi-topic stream is met once per topic; a waiting one is not open yet.
        if (stream.seenInBeat === beat || stream.held !== undefined) continue
        stream.seenInBeat = beat
        const written = stream.wroteInBeat === beat
        if (stream.isStalled(this.#inFlight, this.#stallBeats, written ? undefined : this.#kernelHeld)) targets.cut(stream)
        else if (written) continue
        else if (stream.send(HEARTBEAT, tick, max)) beats++
        else targets.cut(stream)
      }
    }
    this.#counters.bytes += beats * HEARTBEAT.length
  }
}

const HEARTBEAT = Buffer.from(HEARTBEAT_FRAME)

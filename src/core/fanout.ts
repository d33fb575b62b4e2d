import type { Broker, Revocation } from '../broker/broker.js'
import { checkRevocation, listenForRevocations } from '../broker/revoke.js'
import type { PatchwireError } from '../errors.js'
import { Delivery } from './delivery.js'
import { endStreams } from './ending.js'
import { Expiry } from './expiry.js'
import { Heartbeat } from './heartbeat.js'
import { Identities } from './identities.js'
import { numberingOf } from './numbering.js'
import { Openings } from './openings.js'
import { Resume } from './resume.js'
import { Revocations } from './revocations.js'
import { Shutdown } from './shutdown.js'
import { spreadRetryFrame } from './spread.js'
import { countRefusal, createCounters, statsOf, type HandlerStats } from './stats.js'
import type { StreamOwner } from './stream.js'
import { Subscriptions } from './subscriptions.js'
import type { Topic, TopicStream } from './topic.js'
import type { InFlightProbe, Sink, SinkHooks, StreamOpening } from './transport.js'

/** What the core needs of the handler options, resolved. @internal */
export interface CoreOptions<Req> {
  readonly broker: Broker
  readonly heartbeatMs: number
  readonly retryMs: number
  readonly maxBufferedBytes: number
  readonly lingerMs: number
  readonly maxPending: number
  readonly pendingTimeoutMs: number
  readonly authorize: ((req: Req, topic: string) => unknown) | undefined
  readonly identify: ((req: Req) => unknown) | undefined
  readonly maxStreamsPerIdentity: number
  readonly snapshot: ((req: Req, topic: string) => unknown) | undefined
  readonly onError: (error: PatchwireError) => void
}

/**
 * The fan-out core of one handler, put together from its parts: the
 * topics' broker subscriptions ({@link Subscriptions}), the live path
 * ({@link Delivery}), how streams start and recover ({@link Resume}), the
 * requests on their way to becoming streams ({@link Openings}), the one
 * shared {@link Heartbeat}, the {@link Shutdown}, and the ends of access:
 * whose streams are open ({@link Identities}), when each one's access
 * expires ({@link Expiry}), and revocations ({@link Revocations}). It knows
 * no transport: it writes to sinks, and counts what it does.
 * @internal
 */
export class Fanout<Req> implements StreamOwner<Topic> {
  readonly #counters = createCounters()
  readonly #subscriptions: Subscriptions
  readonly #delivery: Delivery
  readonly #resume: Resume<Req>
  readonly #openings: Openings<Req>
  readonly #heartbeat: Heartbeat
  readonly #shutdown = new Shutdown()
  readonly #identities: Identities
  readonly #expiry = new Expiry((streams) => this.#expire(streams))
  readonly #revocations: Revocations
  readonly #stopListening: () => void
  readonly #retryMs: number
  #connections = 0
  #closing: Promise<void> | undefined

  /** @param hooks - what the transport adds for its sinks (see {@link SinkHooks}) */
  constructor(options: CoreOptions<Req>, hooks: SinkHooks = {}) {
    const { broker, onError, maxBufferedBytes, pendingTimeoutMs } = options
    const counters = this.#counters
    const numbering = numberingOf(broker, onError)
    this.#retryMs = options.retryMs
    this.#heartbeat = new Heartbeat(options.heartbeatMs, maxBufferedBytes, hooks.inFlight ?? NOTHING_IN_FLIGHT, hooks.kernelHeld, {
      topics: () => this.#subscriptions.topics(),
      flush: () => this.#delivery.flush(),
      cut: (stream) => this.#delivery.cut(stream),
    }, counters)
    this.#delivery = new Delivery(numbering, counters, maxBufferedBytes, this.#heartbeat, hooks.cut ?? destroySink, {
      gap: (topic) => this.#resume.gap(topic),
      overflow: (stream) => this.#openings.overflowed(stream),
    }, onError)
    this.#subscriptions = new Subscriptions(broker, numbering, options.lingerMs, {
      message: (topic, payload, id) => this.#delivery.receive(topic, payload, id),
      gap: (topic) => this.#resume.gap(topic),
    }, onError)
    this.#resume = new Resume<Req>(numbering, this.#delivery, counters, {
      snapshot: options.snapshot, retryMs: options.retryMs, pendingTimeoutMs, onError,
      retryOpening: (stream) => this.#openings.lostMessages(stream),
    })
    const identities = (this.#identities = new Identities(options.maxStreamsPerIdentity))
    this.#openings = new Openings<Req>(this, {
      authorize: options.authorize, identify: options.identify, maxPending: options.maxPending, pendingTimeoutMs, onError,
      opened: (stream, identity, until) => this.#opened(stream, identity, until),
      revoked: (stream, topics) => this.#count(this.#revocations.end(stream, topics)),
    }, this.#subscriptions, this.#resume, this.#delivery, counters, identities)
    this.#revocations = new Revocations({
      identities,
      topic: (name) => this.#subscriptions.get(name),
      opening: (revocation) => this.#openings.revoke(revocation),
      recheck: (streams) => this.#expire(streams),
    })
    this.#stopListening = listenForRevocations(broker, (revocation) => this.#revoke(revocation))
  }

  stats(): HandlerStats {
    return statsOf(this.#counters, { connections: this.#connections, topics: this.#subscriptions.size, pending: this.#openings.size })
  }

  /** Counts a refusal a transport answered itself (before the core saw the request). */
  countRefusal(status: number): void {
    countRefusal(this.#counters, status)
  }

  /** Opens a stream for a request: see {@link Openings}. */
  open(o: StreamOpening<Req>): void {
    this.#openings.open(o)
  }

  /**
   * Ends this handler's streams that `filter` matches, each with its
   * `revoked` frames (see {@link Revocations}).
   * @returns how many streams it ended
   * @throws TypeError for a filter that is not `{ identity?, topic? }` with at least one
   */
  revoke(filter: unknown): number {
    return this.#revoke(checkRevocation(filter, 'handler.revoke'))
  }

  /** Ends every stream (giving each a spread `retry:`) and lets every topic go; later requests get 503. */
  close(reconnectSpreadMs: number): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#stopListening()
    this.#expiry.stop()
    this.#openings.close()
    this.#delivery.flush()
    this.#heartbeat.stop()
    const streams = this.#subscriptions.close()
    this.#closing = this.#shutdown.end(streams, this.#retryMs, reconnectSpreadMs, () => this.#connections)
    return this.#closing
  }

  /** Forgets a stream whose connection closed (or that is cut); safe to call twice. */
  detach(stream: TopicStream): void {
    if (!this.#subscriptions.leave(stream) || stream.sink === undefined) return
    this.#identities.remove(stream)
    this.#expiry.remove(stream)
    if (--this.#connections === 0) {
      this.#heartbeat.stop()
      this.#shutdown.drained()
    }
  }

  #opened(stream: TopicStream, identity: string | undefined, until: number): void {
    this.#connections++
    this.#heartbeat.start()
    if (identity !== undefined) this.#identities.add(stream, identity)
    this.#expiry.add(stream, until)
  }

  #revoke(revocation: Revocation): number {
    if (this.#closing !== undefined) return 0
    return this.#count(this.#revocations.revoke(revocation))
  }

  #count({ streams, bytes }: { streams: number; bytes: number }): number {
    this.#counters.revoked += streams
    this.#counters.bytes += bytes
    return streams
  }

  /**
   * Streams whose access expired end with a spread `retry:`: their clients
   * come back soon, are authorized again with their own credentials and
   * resume from their last id, but do not all come back together.
   */
  #expire(streams: readonly TopicStream[]): void {
    // What this turn has queued goes out first: the clients resume after it.
    this.#delivery.flush()
    const ends = streams.map((stream) => [stream, spreadRetryFrame(this.#retryMs)] as const)
    this.#counters.bytes += endStreams(ends)
    this.#counters.expired += streams.length
  }
}

const NOTHING_IN_FLIGHT: InFlightProbe = () => 0
const destroySink = (sink: Sink): void => sink.destroy()

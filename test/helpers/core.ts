/**
 * The fan-out core's parts without a transport: streams over recording
 * sinks, for the unit tests of src/core/.
 */
import { createBroker } from '../../src/broker/memory.ts'
import { numberingOf, type Numbering } from '../../src/core/numbering.ts'
import { Stream } from '../../src/core/stream.ts'
import { Subscriptions } from '../../src/core/subscriptions.ts'
import { currentTick } from '../../src/core/tick.ts'
import type { Topic, TopicStream } from '../../src/core/topic.ts'
import type { Sink } from '../../src/core/transport.ts'
import type { PatchwireError } from '../../src/errors.ts'
import type { Broker } from '../../src/broker/broker.ts'

/** A sink that records what it is given; its backlog is whatever the test sets. */
export class RecordingSink implements Sink {
  readonly chunks: Uint8Array[] = []
  writableLength = 0
  ended = false
  destroyed = false

  write(chunk: Uint8Array): void {
    this.chunks.push(chunk)
  }

  end(): void {
    this.ended = true
  }

  destroy(): void {
    this.destroyed = true
  }

  /** Everything written, as text. */
  get text(): string {
    return this.chunks.map((chunk) => Buffer.from(chunk).toString()).join('')
  }
}

/** A handler's topics over an in-process broker, with streams that can be opened on them without a transport. */
export interface CoreBench {
  readonly broker: Broker
  readonly numbering: Numbering
  readonly subscriptions: Subscriptions
  readonly errors: PatchwireError[]
  /** Where the subscriptions deliver: the test sets its methods. */
  readonly events: { message(topic: Topic, payload: string, id: string | undefined): void; gap(topic: Topic): void }
  /** A stream on `names`, joined to its topics; started on a new {@link RecordingSink} unless `opening` is false. */
  open(names: readonly string[], opening?: boolean): { stream: TopicStream; sink: RecordingSink }
}

/** A {@link CoreBench} over a new in-process broker (or `broker`). */
export function coreBench(broker: Broker = createBroker(), lingerMs = 0): CoreBench {
  const errors: PatchwireError[] = []
  const onError = (error: PatchwireError): void => {
    errors.push(error)
  }
  const numbering = numberingOf(broker, onError)
  const events: CoreBench['events'] = { message: () => undefined, gap: () => undefined }
  const subscriptions = new Subscriptions(broker, numbering, lingerMs, {
    message: (topic, payload, id) => events.message(topic, payload, id),
    gap: (topic) => events.gap(topic),
  }, onError)
  return {
    broker,
    numbering,
    subscriptions,
    errors,
    events,
    open(names, opening = true) {
      const topics = names.map((name) => subscriptions.hold(name))
      const stream = new Stream<Topic>({ detach: (s) => subscriptions.leave(s) }, undefined, topics)
      subscriptions.join(stream)
      for (const topic of topics) subscriptions.unhold(topic)
      const sink = new RecordingSink()
      if (opening) stream.start(sink, 0, 0, currentTick())
      else stream.held = []
      return { stream, sink }
    },
  }
}

/** Resolves after the current turn of the event loop (and its `setImmediate`s). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

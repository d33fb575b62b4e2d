import { retryFrame } from '../protocol/frame.js'
import type { TopicStream } from './topic.js'
import type { Sink } from './transport.js'

/**
 * The end of a handler's streams when it closes: each is told to reconnect
 * after `retryMs` plus a random share of the spread, so that a rolling
 * deploy does not send every page to the next process in the same second,
 * and ended; what has not closed by the end of a grace period is destroyed,
 * so that nothing holds `server.close()` open.
 * @internal
 */
export class Shutdown {
  #onDrained: (() => void) | undefined

  /**
   * Ends `streams`; resolves once {@link drained} is called, or after the grace.
   * @param openStreams - how many streams are still open: none once they are ended, and it resolves at once
   */
  end(streams: Iterable<TopicStream>, retryMs: number, reconnectSpreadMs: number, openStreams: () => number): Promise<void> {
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
      sink.write(Buffer.from(retryFrame(retryMs + Math.floor(Math.random() * reconnectSpreadMs))))
      sink.end()
    }
    return new Promise<void>((resolve) => {
      if (openStreams() === 0) {
        resolve()
        return
      }
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
  }

  /** The last open stream has closed. */
  drained(): void {
    this.#onDrained?.()
  }
}

/** How long `close()` lets ended streams finish before it destroys them. */
const CLOSE_GRACE_MS = 1000

import type { TopicStream } from './topic.js'
import type { Sink } from './transport.js'

/**
 * Ends open streams for a reason of their own (their access expired, or was
 * revoked): each is forgotten at once, so that nothing more is written to
 * it, gets its last frames, and is ended. A reader that has not taken its
 * backlog would hold an ended connection open: whatever has not closed
 * after a grace is destroyed, with one timer for the whole batch, not one
 * per stream.
 * @param ends - each stream, with the text it gets before it ends
 * @returns the bytes written
 * @internal
 */
export function endStreams(ends: Iterable<readonly [TopicStream, string]>): number {
  const sinks: Sink[] = []
  let bytes = 0
  for (const [stream, text] of ends) {
    const sink = stream.sink
    if (sink === undefined || !stream.attached) continue
    stream.detach()
    const chunk = Buffer.from(text)
    sink.write(chunk)
    sink.end()
    bytes += chunk.length
    sinks.push(sink)
  }
  if (sinks.length > 0) {
    // Destroying a sink that has closed does nothing.
    setTimeout(() => {
      for (const sink of sinks) sink.destroy()
    }, END_GRACE_MS).unref()
  }
  return bytes
}

/** How long an ended stream may take to send its last frames before it is destroyed. */
const END_GRACE_MS = 1000

import type { StreamEvent } from './shared-stream.js'

/**
 * The `debug` option of `subscribe`: one console line per event a
 * subscription gets (frames, state changes, reconnects), for a developer
 * who wants to see what arrives without opening the network panel (which
 * shows an event stream's frames only in some browsers). Each line is
 * `[patchwire] <topic>: <type>` and the event's fields, so that no
 * wording per event type is shipped: docs/troubleshooting.md shows them.
 */

/**
 * Logs one event of a subscription.
 * @param topic - the subscription's topic, at the start of the line
 * @param event - the event, as the subscription gets it
 * @param log - where the line goes
 * @internal
 */
export function logEvent(topic: string, event: StreamEvent, log: (line: string) => void = console.log): void {
  // `main` and the topic say nothing the line's start does not.
  const { main, topic: named, ...fields } = event as StreamEvent & { topic?: string }
  log([`[patchwire] ${topic}:`, ...Object.values(fields).filter((value) => value !== undefined).map((value) => (typeof value === 'string' ? value : JSON.stringify(value)))].join(' '))
}

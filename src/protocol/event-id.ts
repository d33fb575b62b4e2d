/**
 * Event ids are `<epoch>-<seq>`. A broker that keeps history issues them:
 * `seq` is one order across all of the broker's topics, so one
 * `Last-Event-ID` positions every topic of a multi-topic stream; `epoch`
 * names the history the ids belong to and changes only when that history is
 * lost (a restarted in-process broker, a flushed Redis), so an id from a lost
 * history is recognised as foreign instead of being taken for a position.
 */

/** A parsed event id. @internal */
export interface EventId {
  readonly epoch: string
  readonly seq: number
}

const ID_PATTERN = /^([0-9a-z]{1,16})-(0|[1-9][0-9]{0,15})$/

/**
 * Formats an event id.
 * @param epoch - 1 to 16 characters of `[0-9a-z]`
 * @param seq - a non-negative safe integer
 * @internal
 */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}-${seq}`
}

/**
 * Reads an event id. The value is only matched, never echoed, so nothing a
 * client sends can reach the wire.
 * @returns the id, or `undefined` when it is not one this library writes
 * @internal
 */
export function parseEventId(value: string): EventId | undefined {
  const match = ID_PATTERN.exec(value)
  if (match === null) return undefined
  const seq = Number(match[2])
  return Number.isSafeInteger(seq) ? { epoch: match[1] as string, seq } : undefined
}

/**
 * Orders two event ids of the wire format `<epoch>-<seq>`: ids of one epoch
 * compare by `seq`; ids of two epochs (a restarted or flushed broker) or
 * that are not of this format have no order.
 * @param a - an event id
 * @param b - another event id
 * @returns negative when `a` comes before `b`, `0` when they are the same
 * position, positive when `a` comes after, `NaN` when they cannot be ordered
 * @internal
 */
export function compareIds(a: string, b: string): number {
  const x = ID.exec(a)
  const y = ID.exec(b)
  return x !== null && y !== null && x[1] === y[1] ? Number(x[2]) - Number(y[2]) : NaN
}

// The server's ids (src/protocol/event-id.ts), read here without importing
// the server's module: the client only needs to order them.
const ID = /^([0-9a-z]{1,16})-(\d{1,16})$/

/**
 * Whether a frame at `id` is new to a reader that has everything up to
 * `position`. A frame that cannot be ordered against the position is new:
 * only a frame known to be old may be skipped.
 * @internal
 */
export function isAfter(id: string, position: string | undefined): boolean {
  return position === undefined || !(compareIds(id, position) <= 0)
}

/**
 * The later of two positions. When they cannot be ordered, `b` (the one
 * just heard of) wins: after a broker restart the old epoch is gone.
 * @internal
 */
export function later(a: string | undefined, b: string | undefined): string | undefined {
  return a !== undefined && (b === undefined || compareIds(b, a) <= 0) ? a : b
}

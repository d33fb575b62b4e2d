import { randomBytes } from 'node:crypto'

/**
 * Event ids are `<epoch>-<seq>`: the epoch is random per handler instance, so
 * an id from another process or an earlier run is recognised as foreign; the
 * sequence counts every frame the handler has fanned out, on any topic, so
 * an id is also a position in time that every topic can be compared with.
 */

const EPOCH_LENGTH = 10
const ID_PATTERN = /^([0-9a-z]{10})-(0|[1-9][0-9]{0,15})$/

/** Why a `Last-Event-ID` cannot be resumed from, as sent in a `reset` frame. @internal */
export type IdProblem = 'malformed-id' | 'foreign-id'

/** A new random epoch. @internal */
export function newEpoch(): string {
  return randomBytes(8).readBigUInt64BE().toString(36).padStart(13, '0').slice(-EPOCH_LENGTH)
}

/** @internal */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}-${seq}`
}

/**
 * Reads a client's `Last-Event-ID`. The value is only matched, never echoed,
 * so nothing a client sends can reach the wire.
 * @returns the sequence number, or why it cannot be used
 * @internal
 */
export function parseEventId(value: string, epoch: string, currentSeq: number): number | IdProblem {
  const match = ID_PATTERN.exec(value)
  if (match === null) return 'malformed-id'
  if (match[1] !== epoch) return 'foreign-id'
  const seq = Number(match[2])
  // A position this instance has not reached yet was not issued by it.
  return seq > currentSeq ? 'foreign-id' : seq
}

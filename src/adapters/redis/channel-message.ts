/**
 * The messages the broker publishes on a topic's channel:
 * `<epoch>:<seq>:<prev>:<payload>` (see scripts.ts), and how they are read.
 */

/** A message as it arrives on a channel. @internal */
export interface ChannelMessage {
  readonly epoch: string
  readonly seq: number
  readonly prev: number | undefined
  readonly payload: string
}

/**
 * Reads `<epoch>:<seq>:<prev>:<payload>`: an epoch of 1 to 16 characters of
 * `[0-9a-z]`, a position (digits, no leading zero), and the previous
 * position or nothing.
 * @returns the message, or undefined when it is not in this format (published by something else)
 * @internal
 */
export function parseChannelMessage(message: string): ChannelMessage | undefined {
  // Read by hand, a character at a time, rather than by a regular
  // expression: every message of every topic goes through here, and this
  // never looks further than the head (the payload may be megabytes).
  let i = 0
  for (; i < message.length && i <= 16; i++) {
    const c = message.charCodeAt(i)
    if (c === COLON) break
    if (!((c >= DIGIT_0 && c <= DIGIT_9) || (c >= LETTER_A && c <= LETTER_Z))) return undefined
  }
  if (i === 0 || i > 16 || message.charCodeAt(i) !== COLON) return undefined
  const epoch = message.slice(0, i)
  const seqEnd = positionEnd(message, i + 1)
  if (seqEnd <= i + 1 || message.charCodeAt(seqEnd) !== COLON) return undefined
  const prevEnd = positionEnd(message, seqEnd + 1)
  if (prevEnd < 0 || message.charCodeAt(prevEnd) !== COLON) return undefined
  const seq = Number(message.slice(i + 1, seqEnd))
  const prev = prevEnd === seqEnd + 1 ? undefined : Number(message.slice(seqEnd + 1, prevEnd))
  if (!Number.isSafeInteger(seq) || (prev !== undefined && !Number.isSafeInteger(prev))) return undefined
  return { epoch, seq, prev, payload: message.slice(prevEnd + 1) }
}

const COLON = 58
const DIGIT_0 = 48
const DIGIT_9 = 57
const LETTER_A = 97
const LETTER_Z = 122

/**
 * Where the digits of a position starting at `start` end: up to 16 digits,
 * no leading zero.
 * @returns the index after them (`start` when there are none), or -1 when they are not a position
 */
function positionEnd(message: string, start: number): number {
  let i = start
  for (; i < message.length && i - start <= 16; i++) {
    const c = message.charCodeAt(i)
    if (c < DIGIT_0 || c > DIGIT_9) break
  }
  if (i - start > 16 || (i - start > 1 && message.charCodeAt(start) === DIGIT_0)) return -1
  return i
}

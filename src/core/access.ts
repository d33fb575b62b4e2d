/**
 * What `authorize` and `identify` answer, read: pure functions, so that the
 * openings only decide what to do with the outcome.
 */

/**
 * What a stream's `authorize` verdicts (one per topic) come to: the
 * earliest `until` of its topics (`Infinity`: none), a refusal (a verdict
 * that is neither `true` nor an object), or a verdict of a shape that is a
 * programmer's error, described.
 * @internal
 */
export type Verdict = { readonly until: number } | { readonly refused: 'forbidden' | 'expired' } | { readonly invalid: string }

/**
 * Reads the verdicts of one stream's topics at time `now` (epoch ms): each
 * `true`, or `{ until }` with an epoch time in milliseconds or a `Date`.
 * @internal
 */
export function judge(verdicts: readonly unknown[], now: number): Verdict {
  let until = Infinity
  let forbidden = false
  for (const verdict of verdicts) {
    if (verdict === true) continue
    if (verdict === null || typeof verdict !== 'object') {
      forbidden = true
      continue
    }
    const at = untilOf(verdict)
    if (at === undefined) return { invalid: describeVerdict(verdict) }
    if (at < until) until = at
  }
  if (forbidden) return FORBIDDEN
  return until <= now ? EXPIRED : { until }
}

/**
 * Reads what `identify` gave: a non-empty string, or `undefined` (no
 * identity: the stream is neither capped nor revocable by identity).
 * @returns the identity, or `{ invalid }` describing what it was instead
 * @internal
 */
export function identityOf(value: unknown): string | undefined | { readonly invalid: string } {
  if (value === undefined || (typeof value === 'string' && value !== '')) return value
  return { invalid: value === '' ? 'an empty string' : value === null ? 'null' : typeof value }
}

const FORBIDDEN: Verdict = { refused: 'forbidden' }
const EXPIRED: Verdict = { refused: 'expired' }

/** The epoch time of `{ until }`, or undefined when the object is not of that shape. */
function untilOf(verdict: object): number | undefined {
  const keys = Object.keys(verdict)
  if (keys.length !== 1 || keys[0] !== 'until') return undefined
  const until: unknown = (verdict as { until: unknown }).until
  const at = until instanceof Date ? until.getTime() : until
  return typeof at === 'number' && !Number.isNaN(at) ? at : undefined
}

function describeVerdict(verdict: object): string {
  const keys = Object.keys(verdict)
  if (keys.length === 1 && keys[0] === 'until') {
    const until: unknown = (verdict as { until: unknown }).until
    const what = until instanceof Date ? 'an invalid Date' : typeof until === 'number' ? String(until) : until === null ? 'null' : `a ${typeof until}`
    return `{ until: ${what} }`
  }
  return keys.length === 0 ? `an object with no keys${Array.isArray(verdict) ? ' (an array)' : ''}` : `an object with keys ${keys.join(', ')}`
}

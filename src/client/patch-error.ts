import { PatchwireError } from '../errors.js'

/**
 * Thrown by `applyPatch` when an op cannot be applied. The target is
 * then exactly as it was before the call. `code` is `ERR_PATCHWIRE_PATCH`.
 */
export class PatchError extends PatchwireError {
  override name = 'PatchError'
  // `declare`: the constructor sets these, so no field definitions are shipped for them.
  /** The position of the failed op in the ops array. */
  declare readonly index: number
  /** The failed op, as given. */
  declare readonly op: unknown
  /** Why it failed, for example `index 9 is out of bounds` or `test failed`. */
  declare readonly reason: string

  /**
   * @param index - the position of the failed op in the ops array
   * @param op - the failed op
   * @param reason - why it failed
   */
  constructor(index: number, op: unknown, reason: string) {
    const label = isTuple(op) ? ` (${op[0]} ${JSON.stringify(op[1])})` : ''
    super('ERR_PATCHWIRE_PATCH', `applyPatch: op ${index}${label} failed: ${reason}`)
    this.index = index
    this.op = op
    this.reason = reason
  }
}

/**
 * Fails the op being applied. Failures travel as plain strings inside
 * applyPatch, which turns them into a {@link PatchError} that names the op:
 * the code that finds the fault does not need to know which op it is in.
 * @param reason - why the op failed
 * @internal
 */
export function fail(reason: string): never {
  throw reason
}

/**
 * Whether `op` has the shape of an op tuple: an array with a string op and path.
 * @internal
 */
export function isTuple(op: unknown): op is readonly [string, string, unknown?] {
  return Array.isArray(op) && typeof op[0] === 'string' && typeof op[1] === 'string'
}

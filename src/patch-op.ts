/**
 * One JSON-Patch operation as a tuple: `[op, path, value]`, or
 * `[op, path, from]` for `move` and `copy`. Paths are JSON Pointers
 * (RFC 6901), with `$$<key>` segments selecting an array item by key.
 *
 * - The six RFC 6902 operations: `add`, `remove`, `replace`, `move`, `copy`, `test`.
 * - `upsert`: replace the array item whose key equals the value's key, else insert at the path's index.
 * - `limit`: keep the first `n` items of an array, or the last `|n|` when `n` is negative.
 *
 * @example
 * const ops: PatchOp[] = [['replace', '/counter', 7], ['move', '/b', '/a'], ['limit', '/feed', 50]]
 */
export type PatchOp =
  | readonly ['add', string, unknown]
  | readonly ['remove', string]
  | readonly ['replace', string, unknown]
  | readonly ['move', string, string]
  | readonly ['copy', string, string]
  | readonly ['test', string, unknown]
  | readonly ['upsert', string, unknown]
  | readonly ['limit', string, number]

/** The name of a {@link PatchOp}. */
export type PatchOpName = PatchOp[0]

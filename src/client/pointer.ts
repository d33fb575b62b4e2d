/**
 * JSON Pointer paths (RFC 6901): `""` is the whole document, `/a/b` has the
 * segments `a` and `b`, and `~0` and `~1` stand for `~` and `/` in a segment.
 */
import { fail } from './patch-error.js'

/**
 * The member names applyPatch refuses in a path, so that no op can reach or
 * write `Object.prototype`; diff replaces an object whole rather than write
 * a path through one.
 * @internal
 */
export const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * The segments of a path, unescaped.
 * @param path - a JSON Pointer
 * @returns its segments, `[]` for the whole document
 * @throws the reason (a string, see `fail`) when the path is not a JSON
 * Pointer or goes through a {@link FORBIDDEN} name
 * @internal
 */
export function parsePointer(path: string): string[] {
  if (path === '') return []
  if (path[0] !== '/') fail('must be "" or start with "/"')
  const escaped = path.includes('~')
  const segments: string[] = []
  // indexOf and slice, not split: several times faster on short paths.
  for (let start = 1, end = 0; end >= 0; start = end + 1) {
    end = path.indexOf('/', start)
    let segment = path.slice(start, end < 0 ? undefined : end)
    // One pass, left to right, so that "~01" is "~1"; a "~" without 0 or 1 after it fails.
    if (escaped) segment = segment.replace(/~(.?)/g, (_, c: string) => (c === '0' ? '~' : c === '1' ? '/' : fail('"~" must be followed by 0 or 1')))
    // (The length test spares the others a hash: the three are 9 or 11 long.)
    if ((segment.length === 9 || segment.length === 11) && FORBIDDEN.has(segment)) fail(`"${segment}" is not allowed`)
    segments.push(segment)
  }
  return segments
}

/**
 * A member name as a path segment: `~` is written `~0` and `/` is written `~1`.
 * @internal
 */
export function escapeSegment(name: string): string {
  return name.includes('~') || name.includes('/') ? name.replace(/~/g, '~0').replace(/\//g, '~1') : name
}

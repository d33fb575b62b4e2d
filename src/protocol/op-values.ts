/**
 * What an op may carry besides its name: paths that are JSON Pointers, and
 * values that JSON carries as they are. Checked once per publish, before
 * anything is sent, because a bad path or value is not caught by
 * `JSON.stringify`: it would reach every browser, and each would fail there.
 */

/**
 * Why `path` is not a JSON Pointer (RFC 6901: `""`, or `/` followed by
 * segments in which `~` appears only as `~0` or `~1`), or `undefined` when
 * it is one. `$$<key>` segments are ordinary segments here.
 * @internal
 */
export function pointerProblem(path: string): string | undefined {
  if (path !== '' && path[0] !== '/') {
    return `${JSON.stringify(path)} is not a JSON Pointer: it must be "" (the whole state) or start with "/", as in ${JSON.stringify(`/${path}`)}`
  }
  if (path.includes('~') && /~(?![01])/.test(path)) {
    return `${JSON.stringify(path)} is not a JSON Pointer: "~" must be written "~0" and "/" inside a member name "~1"`
  }
  return undefined
}

/**
 * Whether an object is one JSON writes as it is: an array, or a plain
 * object (`{}`, `Object.create(null)`, or one from another realm). A `Map`,
 * a `Set` or a class instance would become `{}` or lose what is not an own
 * enumerable property. A `toJSON` has already run when a replacer sees the
 * value, so a `Date` arrives here as its string.
 * @internal
 */
export function isJsonObject(value: object): boolean {
  if (Array.isArray(value)) return true
  const proto: unknown = Object.getPrototypeOf(value)
  // The root prototype of any realm has none above it.
  return proto === null || Object.getPrototypeOf(proto) === null
}

/**
 * The name of an object's kind for an error message: its constructor's name.
 * @internal
 */
export function kindOf(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object with a prototype'
}

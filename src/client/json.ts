/** An object or an array of a JSON document, by member name or index. @internal */
export type Container = Record<string | number, unknown>

/**
 * Whether a JSON value is an object or an array (not null).
 * @internal
 */
export function isObject(value: unknown): value is Container {
  return typeof value === 'object' && value !== null
}

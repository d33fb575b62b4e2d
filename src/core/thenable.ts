/** Whether `value` is a promise or any other thenable, which the core waits for; anything else it takes as it is. @internal */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

/** @internal */
export function noop(): void {}

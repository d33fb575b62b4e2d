/**
 * Publishes that nobody awaits must not crash the process: code such as
 * `setInterval(() => publish(broker, topic, ops), 1000)` is natural to
 * write, and during a broker outage each of those promises rejects. Node
 * ends the process on an unhandled rejection, so this module lets a broker
 * route the failure of a promise that nobody observed to its `onError`
 * instead, while a caller that does handle the promise gets the rejection
 * as usual (and it is then not reported a second time).
 */

/**
 * A promise that records whether anybody asked for its outcome. `then` is
 * the one door to a promise's outcome: `catch` and `finally` call it,
 * `await` calls it for any promise whose constructor is not the intrinsic
 * `Promise`, and so do `Promise.all`, `Promise.race` and friends. Derived
 * promises (what `then` returns) are plain promises, through
 * `Symbol.species`, so that the recording stays on the one the broker
 * handed out.
 */
class ObservedPromise<T> extends Promise<T> {
  static override get [Symbol.species](): PromiseConstructor {
    return Promise
  }

  #observed = false

  get observed(): boolean {
    return this.#observed
  }

  override then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.#observed = true
    return super.then(onFulfilled, onRejected)
  }
}

/**
 * Wraps `promise` so that a rejection nobody handles goes to `report`
 * instead of becoming an unhandled rejection.
 *
 * The returned promise settles as `promise` does, except when `promise`
 * rejects and nothing has attached a handler to the returned one (through
 * `then`, `catch`, `finally` or `await`) by one macrotask after the
 * rejection: then `report(reason)` is called, and the returned promise
 * still rejects, with a handler of its own attached, so that a handler
 * attached even later still sees the failure. A caller that awaits gets the
 * rejection and `report` is not called.
 *
 * @param promise - the operation, for example a broker's publish
 * @param report - receives the rejection reason of an unobserved failure;
 * it must not throw
 * @returns a Promise (an instance of `Promise`) that settles like `promise`
 * @example
 * publish(topic, payload) {
 *   return reportUnobserved(send(topic, payload), onError)
 * }
 * @internal
 */
export function reportUnobserved<T>(promise: PromiseLike<T>, report: (reason: unknown) => void): Promise<T> {
  let settle: { resolve(value: T): void, reject(reason: unknown): void } | undefined
  const result = new ObservedPromise<T>((resolve, reject) => {
    settle = { resolve, reject }
  })
  const { resolve, reject } = settle as NonNullable<typeof settle>
  promise.then(resolve, (reason: unknown) => {
    if (result.observed) {
      reject(reason)
      return
    }
    // A caller that attaches its handler right after an `await` elsewhere
    // (within the same turn of the event loop) still counts as observing.
    // setTimeout rather than setImmediate, which Deno lacks.
    setTimeout(() => {
      if (!result.observed) {
        // Attached through the base `then`, which does not count as observed.
        Promise.prototype.then.call(result, undefined, noop)
        report(reason)
      }
      reject(reason)
    }, 0)
  })
  return result
}

function noop(): void {}

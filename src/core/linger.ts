/** Something that waits to be let go. @internal */
export interface Lingering {
  lingerUntil: number
}

/**
 * Lets go of things `lingerMs` after they were left, on one shared timer:
 * since every one waits the same time, insertion order is expiry order, and
 * the timer only ever waits for the first.
 * @internal
 */
export class Linger<T extends Lingering> {
  readonly #lingerMs: number
  readonly #onExpire: (item: T) => void
  readonly #waiting = new Set<T>()
  #timer: NodeJS.Timeout | undefined

  constructor(lingerMs: number, onExpire: (item: T) => void) {
    this.#lingerMs = lingerMs
    this.#onExpire = onExpire
  }

  /** Lets `item` go `lingerMs` from now, unless {@link delete}d before. */
  add(item: T): void {
    this.#waiting.delete(item)
    item.lingerUntil = performance.now() + this.#lingerMs
    this.#waiting.add(item)
    this.#schedule()
  }

  /** Keeps `item`: it is not let go. */
  delete(item: T): void {
    this.#waiting.delete(item)
  }

  /** Forgets every waiting item without letting any go, and stops the timer. */
  clear(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#waiting.clear()
  }

  #schedule(): void {
    if (this.#timer !== undefined) return
    const first = this.#waiting.values().next()
    if (first.done === true) return
    const delay = Math.max(0, first.value.lingerUntil - performance.now())
    // unref: a lingering topic must never be what keeps the process alive.
    this.#timer = setTimeout(() => this.#sweep(), Math.ceil(delay)).unref()
  }

  #sweep(): void {
    this.#timer = undefined
    const now = performance.now()
    for (const item of this.#waiting) {
      if (item.lingerUntil > now) break
      this.#waiting.delete(item)
      this.#onExpire(item)
    }
    this.#schedule()
  }
}

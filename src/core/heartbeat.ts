/**
 * The one shared tick of a handler: a single unref'd interval, running only
 * while at least one stream is open, however many streams there are.
 * @internal
 */
export class Heartbeat {
  readonly #intervalMs: number
  readonly #onBeat: () => void
  #timer: NodeJS.Timeout | undefined

  constructor(intervalMs: number, onBeat: () => void) {
    this.#intervalMs = intervalMs
    this.#onBeat = onBeat
  }

  get running(): boolean {
    return this.#timer !== undefined
  }

  start(): void {
    if (this.#timer !== undefined) return
    // unref: an idle stream must never be what keeps the process alive.
    this.#timer = setInterval(this.#onBeat, this.#intervalMs).unref()
  }

  stop(): void {
    if (this.#timer === undefined) return
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}

import { PatchwireError } from '../../errors.js'
import type { Connection } from './clients.js'
import { ConnectionWatch } from './connection.js'
import type { Script } from './scripts.js'

/** A script sent and not answered yet. */
interface Call {
  /** `performance.now()` by which it must be answered. */
  readonly deadline: number
  readonly what: string
  reject(error: PatchwireError): void
}

/**
 * Runs the broker's scripts on the publisher connection, each bounded by
 * `publishTimeoutMs`, and follows that connection (reporting its outages).
 *
 * The natural setup of either client library starts the broker before the
 * publisher has connected (ioredis connects in the background; node-redis
 * once `connect()` is called), so before the first connection a script
 * waits for it. After that, a publish during an outage fails at once
 * instead of piling up behind it, while a read still waits.
 *
 * One timer bounds every call under way: it is set for the earliest
 * deadline, and when it fires it rejects the calls past theirs and is set
 * again for the next. An answered call only leaves the set, so a call
 * neither sets nor clears a timer of its own (a timer per call was a
 * measurable share of a lone publish's latency).
 * @internal
 */
export class ScriptRunner {
  readonly #publisher: Connection
  readonly #timeoutMs: number
  readonly #watch: ConnectionWatch
  readonly #calls = new Set<Call>()
  #timer: ReturnType<typeof setTimeout> | undefined
  readonly #expire = (): void => this.#onTimer()

  /**
   * @param publisher - the connection the scripts run on
   * @param timeoutMs - how long a script may take, the wait for the first connection included (`publishTimeoutMs`)
   * @param onError - where the publisher's outages are reported
   */
  constructor(publisher: Connection, timeoutMs: number, onError: (error: PatchwireError) => void) {
    this.#publisher = publisher
    this.#timeoutMs = timeoutMs
    this.#watch = new ConnectionWatch(publisher, 'publisher', onError)
  }

  /**
   * Runs `script` within the timeout.
   * @param keys - the script's KEYS
   * @param args - makes the script's ARGV, once the publisher is ready: the
   * arguments then carry what the process knows at that moment
   * @param what - what the script does, for error messages (`publish to topic "a"`)
   * @param failFast - fail at once while the publisher is down after its
   * first connection (a publish), rather than wait for it (a read)
   * @returns the script's reply; it rejects with a {@link PatchwireError} of
   * code `ERR_PATCHWIRE_BROKER` when the publisher is down (`failFast`),
   * does not connect or answer in time, or Redis refuses the script
   */
  run(script: Script, keys: string[], args: () => string[], what: string, failFast: boolean): Promise<unknown> {
    const started = performance.now()
    if (this.#publisher.isReady()) return this.#send(script, keys, args(), what, started)
    if (failFast && this.#watch.hasConnected) {
      return Promise.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot ${what}: the Redis publisher is not connected (${this.#publisher.state()}); it reconnects by itself: publish again once it is back, and catch the rejection meanwhile`, { cause: this.#watch.lastError }))
    }
    return this.#watch.whenReady(this.#timeoutMs, what).then(() => this.#send(script, keys, args(), what, started))
  }

  #send(script: Script, keys: string[], args: string[], what: string, started: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const call: Call = { deadline: started + this.#timeoutMs, what, reject }
      this.#calls.add(call)
      if (this.#timer === undefined) this.#arm(call.deadline - performance.now())
      script.run(this.#publisher, keys, args).then(
        (reply) => {
          this.#calls.delete(call)
          resolve(reply)
        },
        (error: unknown) => {
          this.#calls.delete(call)
          reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis refused to ${what}`, { cause: error }))
        },
      )
    })
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(1, delayMs))
    this.#timer.unref()
  }

  /** Rejects the calls past their deadline, and sets the timer for the earliest of the others. */
  #onTimer(): void {
    this.#timer = undefined
    const now = performance.now()
    let next = Infinity
    for (const call of this.#calls) {
      if (call.deadline <= now) {
        this.#calls.delete(call)
        call.reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis did not answer within ${this.#timeoutMs} ms (publishTimeoutMs) to ${call.what}; it may still take effect later`))
      } else if (call.deadline < next) {
        next = call.deadline
      }
    }
    if (next !== Infinity) this.#arm(next - now)
  }
}

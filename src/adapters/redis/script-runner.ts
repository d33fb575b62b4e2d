import { PatchwireError } from '../../errors.js'
import type { Connection } from './clients.js'
import { ConnectionWatch } from './connection.js'
import type { Script } from './scripts.js'

/**
 * Runs the broker's scripts on the publisher connection, each bounded by
 * `publishTimeoutMs`, and follows that connection (reporting its outages).
 *
 * The natural setup of either client library starts the broker before the
 * publisher has connected (ioredis connects in the background; node-redis
 * once `connect()` is called), so before the first connection a script
 * waits for it. After that, a publish during an outage fails at once
 * instead of piling up behind it, while a read still waits.
 * @internal
 */
export class ScriptRunner {
  readonly #publisher: Connection
  readonly #timeoutMs: number
  readonly #watch: ConnectionWatch

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
  async run(script: Script, keys: string[], args: () => string[], what: string, failFast: boolean): Promise<unknown> {
    const started = performance.now()
    if (!this.#publisher.isReady()) {
      if (failFast && this.#watch.hasConnected) {
        throw new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot ${what}: the Redis publisher is not connected (${this.#publisher.state()}); it reconnects by itself: publish again once it is back, and catch the rejection meanwhile`, { cause: this.#watch.lastError })
      }
      await this.#watch.whenReady(this.#timeoutMs, what)
    }
    const remaining = Math.max(1, this.#timeoutMs - (performance.now() - started))
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis did not answer within ${this.#timeoutMs} ms (publishTimeoutMs) to ${what}; it may still take effect later`))
      }, remaining)
      timer.unref()
      script.run(this.#publisher, keys, args()).then(
        (reply) => {
          clearTimeout(timer)
          resolve(reply)
        },
        (error: unknown) => {
          clearTimeout(timer)
          reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `Redis refused to ${what}`, { cause: error }))
        },
      )
    })
  }
}

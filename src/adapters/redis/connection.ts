import { PatchwireError } from '../../errors.js'
import type { Connection } from './clients.js'

/** What a {@link ConnectionWatch} tells its owner. @internal */
export interface ConnectionHooks {
  /** The connection dropped (once per outage). */
  onLost(): void
  /** The connection is usable again, or (`first`) for the first time. */
  onReady(first: boolean): void
  /** The client closed for good after an outage; `report` is what `onError` got. */
  onClose(report: PatchwireError): void
}

/**
 * Follows one client's connection: reports its loss once per outage and a
 * client that closed for good once, tells whether it has ever connected,
 * and lets a caller wait for the first connection. Listening to `error` is
 * also what keeps an unhandled `error` event from crashing the process.
 *
 * Errors before the first connection are not reported: what waits for it
 * (a publish) fails after its timeout with the last of them as `cause`.
 * @internal
 */
export class ConnectionWatch {
  readonly #connection: Connection
  readonly #role: 'publisher' | 'subscriber'
  readonly #onError: (error: PatchwireError) => void
  readonly #hooks: Partial<ConnectionHooks>
  #down: boolean
  #closed = false
  #hasConnected: boolean
  #lastError: unknown
  readonly #waiting = new Set<() => void>()

  /**
   * @param connection - the client
   * @param role - its option name, for messages
   * @param onError - where losses are reported
   * @param hooks - see {@link ConnectionHooks}; none for a connection whose
   * users only need to wait for it ({@link ConnectionWatch.whenReady})
   */
  constructor(connection: Connection, role: 'publisher' | 'subscriber', onError: (error: PatchwireError) => void, hooks: Partial<ConnectionHooks> = {}) {
    this.#connection = connection
    this.#role = role
    this.#onError = onError
    this.#hooks = hooks
    this.#down = !connection.isReady()
    this.#hasConnected = !this.#down
    const { client, kind } = connection
    client.on('error', (error: unknown) => {
      // node-redis emits no `end` when its reconnectStrategy gives up: the
      // client has closed itself by the time it emits the last `error`.
      if (kind === 'node-redis' && !(client as { isOpen: boolean }).isOpen && this.#hasConnected) {
        this.#lastError = error
        this.#close()
      } else {
        this.#lose(error)
      }
    })
    // Both libraries emit `reconnecting` when a connection drops, including an
    // ioredis one closed by the server without an error; a deliberate
    // `quit()`/`close()` emits none of these, so a shutdown is not reported.
    client.on('reconnecting', () => this.#lose())
    // ioredis emits `end` when its retryStrategy gives up, and both libraries
    // when the application closes the client: reported only for a connection
    // that was already lost, since a shutdown closes a working one.
    client.on('end', () => {
      if (this.#down) this.#close()
    })
    client.on('ready', () => {
      if (!this.#down) return
      const first = !this.#hasConnected
      this.#down = false
      this.#closed = false
      this.#hasConnected = true
      this.#lastError = undefined
      for (const wake of [...this.#waiting]) wake()
      this.#hooks.onReady?.(first)
    })
  }

  /** Whether the client has been connected at least once. */
  get hasConnected(): boolean {
    return this.#hasConnected
  }

  /** The error that took the connection down (or kept it from coming up), while it is down. */
  get lastError(): unknown {
    return this.#lastError
  }

  /**
   * Waits for the connection to be usable.
   * @param timeoutMs - how long to wait
   * @param what - what is waiting, for the error message (`publish to topic "a"`)
   * @returns a Promise that resolves once the client is ready
   * @throws PatchwireError `ERR_PATCHWIRE_BROKER` (as a rejection) when it
   * is not ready within `timeoutMs`, or the client closed
   */
  whenReady(timeoutMs: number, what: string): Promise<void> {
    if (this.#connection.isReady()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.#waiting.delete(wake)
        if (this.#connection.isReady()) {
          resolve()
        } else {
          reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot ${what}: the Redis ${this.#role} closed for good (${this.#connection.state()}); keep its automatic reconnection on, or connect it again`, { cause: this.#lastError }))
        }
      }
      const timer = setTimeout(() => {
        this.#waiting.delete(wake)
        const fix = this.#connection.kind === 'node-redis'
          ? 'call `await client.connect()` on it (node-redis does not connect by itself), and check its URL'
          : 'check its URL and that Redis is reachable'
        reject(new PatchwireError('ERR_PATCHWIRE_BROKER', `cannot ${what}: the Redis ${this.#role} has not connected within ${timeoutMs} ms (${this.#connection.state()}); ${fix}`, { cause: this.#lastError }))
      }, timeoutMs)
      timer.unref?.()
      this.#waiting.add(wake)
    })
  }

  #lose(error?: unknown): void {
    if (error !== undefined) this.#lastError = error
    if (this.#down) return
    this.#down = true
    const consequence = this.#role === 'publisher'
      ? 'publish rejects until it is back'
      : 'once it is back, every topic is subscribed again and what it missed is refilled from the history in Redis'
    this.#onError(new PatchwireError('ERR_PATCHWIRE_BROKER', `lost the connection of the Redis ${this.#role}; the client reconnects by itself, and ${consequence}`, { cause: error }))
    this.#hooks.onLost?.()
  }

  #close(): void {
    if (this.#closed) return
    this.#closed = true
    const wasDown = this.#down
    this.#down = true
    if (!wasDown) this.#hooks.onLost?.()
    const consequence = this.#role === 'publisher'
      ? 'publish rejects'
      : 'every topic\'s streams are reset, and new subscriptions are refused'
    const report = new PatchwireError('ERR_PATCHWIRE_BROKER', `the Redis ${this.#role} closed for good: its client stopped reconnecting; ${consequence} until the client is connected again`, { cause: this.#lastError })
    this.#onError(report)
    for (const wake of [...this.#waiting]) wake()
    this.#hooks.onClose?.(report)
  }
}

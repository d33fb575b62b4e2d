import { PatchwireError } from '../../errors.js'
import type { Database, WatchedClient } from './database.js'
import { MESSAGES_CHANNEL, REVOKE_CHANNEL } from './schema.js'

/** What a {@link Listener} needs from the broker. @internal */
export interface ListenerOptions {
  readonly database: Pick<Database, 'connect' | 'deadline'>
  /** A notification on the messages channel: its payload. */
  onMessage(payload: string): void
  /** A notification on the revocations channel: its payload. */
  onRevoke(payload: string): void
  /** Listening (again): what was published meanwhile must be read from the table. */
  onListening(): void
  /** A connection that listened is lost: what is sent until the next one listens is not heard. */
  onLost(): void
  readonly onError: (error: PatchwireError) => void
}

const FIRST_RETRY_MS = 100
const LAST_RETRY_MS = 5000

/**
 * The `LISTEN` connection: one connection of the pool, checked out for as
 * long as the broker runs. Notifications only wake the process up (the
 * messages and the revocations are read from the table), so a connection
 * lost (the server restarted, `pg_terminate_backend`, a network failure)
 * loses nothing: it calls `onLost`, it is replaced, with a growing delay
 * while that fails, and every new one calls `onListening` so that what was
 * published or revoked meanwhile is read.
 * @internal
 */
export class Listener {
  readonly #o: ListenerOptions
  #client: WatchedClient | undefined
  /** The listeners added to each connection, to remove them when it is given up. */
  readonly #listeners = new Map<WatchedClient, { onNotification: (message: object) => void, onLost: (error?: unknown) => void }>()
  #retryMs = FIRST_RETRY_MS
  #timer: ReturnType<typeof setTimeout> | undefined
  #closed = false
  /** Set from a loss until the next connection: each outage is reported once. */
  #reported = false

  /** @param options - see {@link ListenerOptions} */
  constructor(options: ListenerOptions) {
    this.#o = options
    void this.#connect()
  }

  /** Whether a connection is listening now. */
  get listening(): boolean {
    return this.#client !== undefined
  }

  /**
   * Gives the connection back to the pool (so that `pool.end()` can finish) and stops reconnecting.
   * @returns a Promise that resolves once it is back
   */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    const client = this.#client
    this.#client = undefined
    if (client === undefined) return
    this.#detach(client)
    try {
      // So that the pool gets it back clean.
      await client.query('UNLISTEN *')
      client.release()
    } catch (error) {
      client.release(error)
    }
  }

  async #connect(): Promise<void> {
    let client: WatchedClient
    try {
      client = await this.#o.database.connect(this.#o.database.deadline())
    } catch (error) {
      this.#failed(error)
      return
    }
    if (this.#closed) {
      client.release()
      return
    }
    const onNotification = (message: { channel?: unknown, payload?: unknown }): void => {
      const payload = typeof message.payload === 'string' ? message.payload : ''
      if (message.channel === MESSAGES_CHANNEL) this.#o.onMessage(payload)
      else if (message.channel === REVOKE_CHANNEL) this.#o.onRevoke(payload)
    }
    const onLost = (error?: unknown): void => {
      if (this.#client !== client) return
      this.#client = undefined
      this.#detach(client)
      client.release(error ?? true)
      this.#o.onLost()
      this.#failed(error ?? new Error('the LISTEN connection ended'))
    }
    this.#listeners.set(client, { onNotification, onLost })
    client.client.on('notification', onNotification)
    client.client.on('error', onLost)
    client.client.on('end', onLost)
    try {
      await client.query(`LISTEN ${MESSAGES_CHANNEL}; LISTEN ${REVOKE_CHANNEL}`)
      // Lost before its listener was added (see watch() in database.ts).
      if (client.failure !== undefined) throw client.failure
    } catch (error) {
      this.#detach(client)
      client.release(error)
      this.#failed(error)
      return
    }
    if (this.#closed) {
      this.#detach(client)
      client.release(true)
      return
    }
    this.#client = client
    this.#retryMs = FIRST_RETRY_MS
    this.#reported = false
    this.#o.onListening()
  }

  #detach(client: WatchedClient): void {
    const listeners = this.#listeners.get(client)
    if (listeners === undefined) return
    this.#listeners.delete(client)
    client.client.removeListener('notification', listeners.onNotification)
    client.client.removeListener('error', listeners.onLost)
    client.client.removeListener('end', listeners.onLost)
  }

  #failed(error: unknown): void {
    if (this.#closed) return
    if (!this.#reported) {
      this.#reported = true
      this.#o.onError(new PatchwireError('ERR_PATCHWIRE_BROKER', 'the PostgreSQL LISTEN connection is lost; the broker connects again, and what was published meanwhile is read from the table (no reset)', { cause: error }))
    }
    this.#timer = setTimeout(() => void this.#connect(), this.#retryMs)
    // The broker must not keep the process alive by itself (close() stops it anyway).
    this.#timer.unref()
    this.#retryMs = Math.min(this.#retryMs * 2, LAST_RETRY_MS)
  }
}

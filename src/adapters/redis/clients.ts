/**
 * The two Redis client libraries the broker accepts, typed by the few
 * members it uses (so that patchwire depends on neither), and one small
 * surface over both: send a command, SUBSCRIBE and UNSUBSCRIBE a channel,
 * tell whether the connection is usable.
 */

/**
 * The part of a node-redis client the broker uses; a client from
 * `createClient()` of node-redis 4.7 or later (5 and 6 included) fits.
 * Earlier 4.x clients are not supported: those before 4.2 have no `isReady`
 * and are refused, and in restart tests 4.2 to 4.6 delivered a message twice
 * or reported an outage twice. Redis Cluster clients (`createCluster()`) do
 * not fit: see the scale note of {@link createRedisBroker}.
 */
export interface NodeRedisClient {
  /** True while the connection is up and usable. */
  readonly isReady: boolean
  /** False once the client is closed for good (or before `connect()`). */
  readonly isOpen: boolean
  /** Sends one command, as its arguments: `EVALSHA`, `EVAL`. */
  sendCommand(args: string[]): Promise<unknown>
  /** `SUBSCRIBE channel`, with a listener called as `(message, channel)` */
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  /** Removes the listener; `UNSUBSCRIBE channel` once it was the channel's last one */
  unsubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  /** EventEmitter `on`: the broker listens to `ready`, `reconnecting`, `error` and `end` */
  // `any[]` as in EventEmitter's own signature: with `unknown[]` or `never[]`
  // the typed `on` overloads of the libraries would not fit.
  on(event: string, listener: (...args: any[]) => void): unknown
}

/**
 * The part of an ioredis (v5 or later) client the broker uses; a `new Redis()` fits.
 */
export interface IoRedisClient {
  /** The connection state; `'ready'` while it is usable. */
  readonly status: string
  /** Sends one command: `EVALSHA`, `EVAL`. */
  call(command: string, ...args: string[]): Promise<unknown>
  /** `SUBSCRIBE channel`; messages arrive as `message` events */
  subscribe(channel: string): Promise<unknown>
  /** `UNSUBSCRIBE channel` */
  unsubscribe(channel: string): Promise<unknown>
  /** EventEmitter `on`: the broker listens to `message`, `ready`, `reconnecting`, `error` and `end` */
  on(event: string, listener: (...args: any[]) => void): unknown
}

/** A node-redis or an ioredis client; which one is detected at run time from its shape. */
export type RedisClient = NodeRedisClient | IoRedisClient

/** Which library a client comes from. @internal */
export type ClientKind = 'node-redis' | 'ioredis'

/**
 * One client, whatever its library, as the broker uses it.
 * @internal
 */
export interface Connection {
  readonly kind: ClientKind
  readonly client: RedisClient
  /** Whether commands can be sent now. */
  isReady(): boolean
  /** The library's own words for its state, for error messages. */
  state(): string
  /** Sends one command; a synchronous throw of the library becomes a rejection. */
  command(args: string[]): Promise<unknown>
}

/**
 * SUBSCRIBE and UNSUBSCRIBE on a subscriber connection.
 * @internal
 */
export interface Channels {
  subscribe(channel: string): Promise<unknown>
  unsubscribe(channel: string): Promise<unknown>
}

/**
 * Recognises a client by its shape.
 * @param client - what the user passed
 * @param option - the option's name, for the error message
 * @throws TypeError when it is neither a node-redis nor an ioredis client
 * @internal
 */
export function connectionOf(client: unknown, option: 'publisher' | 'subscriber'): Connection {
  if (client !== null && typeof client === 'object') {
    const shape = client as Partial<Record<string, unknown>>
    const pubsub = ['subscribe', 'unsubscribe', 'on'].every((name) => typeof shape[name] === 'function')
    if (pubsub && typeof shape['sendCommand'] === 'function' && typeof shape['isReady'] === 'boolean' && typeof shape['isOpen'] === 'boolean') {
      return nodeRedisConnection(client as NodeRedisClient)
    }
    if (pubsub && typeof shape['call'] === 'function' && typeof shape['status'] === 'string') {
      return ioRedisConnection(client as IoRedisClient)
    }
  }
  throw new TypeError(`createRedisBroker: ${option} must be a node-redis client (createClient() of redis 4.7 or later) or an ioredis client (new Redis() of ioredis 5 or later), got ${client === null ? 'null' : typeof client}`)
}

/**
 * SUBSCRIBE/UNSUBSCRIBE for a subscriber, delivering every message of the
 * connection to `deliver`.
 * @internal
 */
export function channelsOf(connection: Connection, deliver: (message: string, channel: string) => void): Channels {
  if (connection.kind === 'node-redis') {
    const client = connection.client as NodeRedisClient
    // One listener function for every channel, so that UNSUBSCRIBE removes
    // exactly what SUBSCRIBE added.
    return {
      // node-redis keeps a SUBSCRIBE sent to a closed client pending forever.
      subscribe: (channel) => client.isOpen
        ? attempt(() => client.subscribe(channel, deliver))
        : Promise.reject(new Error('the node-redis subscriber is closed (isOpen: false): call connect() on it')),
      unsubscribe: (channel) => attempt(() => client.unsubscribe(channel, deliver)),
    }
  }
  const client = connection.client as IoRedisClient
  // ioredis emits every message of the connection; channels the broker did
  // not subscribe are ignored by `deliver`.
  client.on('message', (channel: string, message: string) => deliver(message, channel))
  return {
    subscribe: (channel) => attempt(() => client.subscribe(channel)),
    unsubscribe: (channel) => attempt(() => client.unsubscribe(channel)),
  }
}

function nodeRedisConnection(client: NodeRedisClient): Connection {
  return {
    kind: 'node-redis',
    client,
    isReady: () => client.isReady,
    state: () => client.isOpen ? 'isReady: false' : 'isOpen: false',
    command: (args) => attempt(() => client.sendCommand(args)),
  }
}

function ioRedisConnection(client: IoRedisClient): Connection {
  return {
    kind: 'ioredis',
    client,
    isReady: () => client.status === 'ready',
    state: () => `status: ${client.status}`,
    command: ([name, ...args]) => attempt(() => client.call(name as string, ...args)),
  }
}

/** Calls a client method, turning a synchronous throw into a rejection. */
function attempt(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return call()
  } catch (error) {
    return Promise.reject(error)
  }
}

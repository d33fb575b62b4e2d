/**
 * Shared by the Redis tests: clients of both libraries set up the way the
 * tests need them, a broker over them, a plain client for assertions
 * (PUBSUB NUMSUB, MONITOR, INFO), and small assertion helpers.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { EventEmitter } from 'node:events'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { createRedisBroker } from '../../src/adapters/redis/index.ts'
import type { RedisBrokerOptions, RedisClient } from '../../src/adapters/redis/index.ts'
import type { Broker, HistoryFrame, ReplayResult } from '../../src/broker/broker.ts'
import { PatchwireError } from '../../src/errors.ts'
import { parseEventId } from '../../src/protocol/event-id.ts'
import type { RedisServer } from './redis-server.ts'

export const HOST = '127.0.0.1'
export const WAIT_MS = 5000

export type Server = RedisServer & { stop(): Promise<void> }

export interface Connection {
  client: RedisClient
  close(): void
}

export interface Lib {
  name: string
  /**
   * A connected client, closed after the test (even when connecting fails);
   * it reconnects fast so that restart tests stay short, and gives up for
   * good after `giveUpAfter` failed attempts (default: never). It has no
   * `error` listener: the broker must add one. (Removing a listener from a
   * node-redis client detaches all later ones, so none is added for the
   * connect phase.)
   */
  connect(t: TestContext, port: number, giveUpAfter?: number): Promise<Connection>
  /** A client that has not connected yet; `connect()` connects it. */
  unconnected(port: number): { client: RedisClient, connect(): Promise<unknown>, close(): void }
  /** A client made the library's usual way, connecting by itself if the library does. */
  usual(t: TestContext, port: number): RedisClient
}

export const nodeRedis: Lib = {
  name: 'node-redis',
  async connect(t, port, giveUpAfter = Number.POSITIVE_INFINITY) {
    const client = createClient({ socket: { host: HOST, port, reconnectStrategy: (retries: number) => retries >= giveUpAfter ? new Error('gave up') : Math.min(20 * retries, 200) } })
    const close = (): void => { if (client.isOpen) client.destroy() }
    t.after(close)
    await client.connect()
    return { client, close }
  },
  unconnected(port) {
    const client = createClient({ socket: { host: HOST, port } })
    return { client, connect: () => client.connect(), close: () => { if (client.isOpen) client.destroy() } }
  },
  usual(t, port) {
    const client = createClient({ url: `redis://${HOST}:${port}` })
    // node-redis connects only when told: `connect()` without awaiting it.
    void client.connect().catch(() => undefined)
    t.after(() => { if (client.isOpen) client.destroy() })
    return client
  },
}

export const ioRedis: Lib = {
  name: 'ioredis',
  async connect(t, port, giveUpAfter = Number.POSITIVE_INFINITY) {
    // ioredis counts from 1, node-redis from 0.
    const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: (times: number) => times > giveUpAfter ? null : Math.min(20 * times, 200) })
    const close = (): void => client.disconnect()
    t.after(close)
    await client.connect()
    return { client, close }
  },
  unconnected(port) {
    const client = new Redis({ host: HOST, port, lazyConnect: true })
    // A command sent to a lazy ioredis client starts the connection itself.
    const connect = (): Promise<unknown> => client.status === 'wait' ? client.connect() : once(client, 'ready')
    return { client, connect, close: () => client.disconnect() }
  },
  usual(t, port) {
    const client = new Redis(`redis://${HOST}:${port}`)
    t.after(() => client.disconnect())
    return client
  },
}

export const LIBS = [nodeRedis, ioRedis]

export interface Setup {
  broker: Broker & Required<Pick<Broker, 'position' | 'replay'>>
  errors: PatchwireError[]
  publisher: Connection
  subscriber: Connection
}

/**
 * A broker over two fresh clients of `lib` (a `subscriber` or `publisher`
 * of its own when given); everything is closed after the test.
 */
export async function brokerOn(t: TestContext, lib: Lib, port: number, options: Partial<RedisBrokerOptions> = {}, subscriber?: Connection, publisher?: Connection): Promise<Setup> {
  publisher ??= await lib.connect(t, port)
  subscriber ??= await lib.connect(t, port)
  const errors: PatchwireError[] = []
  const broker = createRedisBroker({ publisher: publisher.client, subscriber: subscriber.client, onError: (error) => errors.push(error), ...options })
  for (const { client } of [publisher, subscriber]) {
    // Without one, a lost connection crashes the process; checked here so
    // that a regression fails the tests instead of crashing the run.
    assert.ok((client as unknown as EventEmitter).listenerCount('error') > 0, 'the broker must listen to error events')
  }
  assert.equal(typeof broker.position, 'function', 'the Redis broker has position()')
  assert.equal(typeof broker.replay, 'function', 'the Redis broker has replay()')
  return { broker: broker as Setup['broker'], errors, publisher, subscriber }
}

export type Probe = Awaited<ReturnType<typeof probe>>

/** A plain node-redis client for assertions: PUBSUB NUMSUB, MONITOR, INFO, raw commands. */
export async function probe(t: TestContext, port: number) {
  const client = createClient({ socket: { host: HOST, port, reconnectStrategy: () => 20 } })
  // A private server may be stopped first (clean-ups run in the order they
  // were registered): that must not crash the run.
  client.on('error', () => undefined)
  await client.connect()
  t.after(() => { if (client.isOpen) client.destroy() })
  return client
}

export async function numsub(client: Probe, channel: string): Promise<number> {
  const reply = await client.sendCommand(['PUBSUB', 'NUMSUB', channel]) as [string, number]
  return Number(reply[1])
}

/**
 * Cuts the subscriber's connection with `CLIENT KILL TYPE pubsub`, once it
 * is subscribed to every channel of `channels` again. A kill sent while it
 * is still reconnecting (ioredis waits up to 200 ms here) finds no
 * subscriber to cut, so a test that kills in a loop must wait for this.
 * @param admin - the probe client of that Redis
 * @param channels - the channels the subscriber serves (prefix included)
 */
export async function killSubscriber(admin: Probe, channels: readonly string[]): Promise<void> {
  const subscribed = async (): Promise<boolean> => {
    for (const channel of channels) if (await numsub(admin, channel) < 1) return false
    return true
  }
  await eventually(subscribed, `the subscriber to be back on ${channels.join(', ')}`)
  const killed = Number(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']))
  assert.ok(killed >= 1, `CLIENT KILL TYPE pubsub cut ${killed} connections: the subscriber was not there`)
}

/** A publish loop started by {@link publishing}. */
export interface PublishLoop<T> {
  /** What each publish Redis took resolved to, in order. */
  readonly taken: T[]
  /** How many publishes Redis did not take (they were retried as the next ones). */
  readonly refused: number
  /** Stops the loop; resolves once its last publish settled. */
  stop(): Promise<void>
}

/**
 * Publishes in a loop, `send(1)`, `send(2)`, …, until stopped, recording
 * what each publish Redis took resolved to. A publish that rejects (Redis
 * down) is counted in `refused`, and the loop waits 5 ms before the next
 * one. The loop stops after the test too, passed or failed: one left
 * running would keep the test process alive.
 * @param t - the test that owns the loop
 * @param send - publishes the i-th message; resolves with what to record
 */
export function publishing<T>(t: TestContext, send: (i: number) => Promise<T>): PublishLoop<T> {
  const taken: T[] = []
  let refused = 0
  let running = true
  const loop = (async () => {
    for (let i = 1; running; i++) {
      try {
        taken.push(await send(i))
      } catch {
        refused++
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
  })()
  const stop = async (): Promise<void> => {
    running = false
    await loop
  }
  t.after(stop)
  return { taken, get refused() { return refused }, stop }
}

/**
 * Cuts the subscriber three times while `loop` publishes, each cut 100
 * publishes after the last one and once the subscriber is back on
 * `channels` (see {@link killSubscriber}); then waits for 100 more
 * publishes and stops the loop.
 * @param admin - the probe client of that Redis
 * @param channels - the channels the subscriber serves (prefix included)
 * @param loop - a running {@link publishing} loop
 */
export async function cutWhilePublishing(admin: Probe, channels: readonly string[], loop: PublishLoop<unknown>): Promise<void> {
  let mark = 0
  for (let kill = 1; kill <= 3; kill++) {
    await eventually(() => loop.taken.length >= mark + 100, `100 publishes before kill ${kill}`)
    await killSubscriber(admin, channels)
    mark = loop.taken.length
  }
  await eventually(() => loop.taken.length >= mark + 100, '100 publishes after the last kill')
  await loop.stop()
}

/** How many times Redis ran each of `names` (lower case), from INFO commandstats. */
export async function commandCalls(client: Probe, names: readonly string[]): Promise<number> {
  const info = String(await client.sendCommand(['INFO', 'commandstats']))
  let total = 0
  for (const name of names) {
    const match = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)
    total += Number(match?.[1] ?? 0)
  }
  return total
}

export const SCRIPT_COMMANDS = ['evalsha', 'eval']

/**
 * Records, through MONITOR, the commands Redis runs on channels of `prefix`.
 * `count(name, channel)` tells how many `name` commands (`subscribe`,
 * `unsubscribe`) it saw for the channel; `barrier()` resolves once MONITOR
 * has shown every command Redis ran before it was called.
 */
export async function monitorOf(t: TestContext, prefix: string, port: number) {
  const admin = await probe(t, port)
  const monitor = await probe(t, port)
  const seen: string[] = []
  await monitor.monitor((line: string) => { if (line.includes(prefix)) seen.push(line) })
  return {
    count: (name: string, channel: string): number => seen.filter((line) => line.toLowerCase().includes(`"${name}" "${channel.toLowerCase()}"`)).length,
    async barrier(): Promise<void> {
      const marker = `${prefix}barrier:${randomUUID()}`
      await admin.sendCommand(['ECHO', marker])
      await eventually(() => seen.some((line) => line.includes(marker)), 'the MONITOR barrier')
    },
  }
}

/** ACL: whether Redis lets the default user (every client of the tests) run SUBSCRIBE. */
export async function allowSubscribe(client: Probe, allowed: boolean): Promise<void> {
  await client.sendCommand(['ACL', 'SETUSER', 'default', allowed ? '+subscribe' : '-subscribe'])
}

/** Where each PUBSUB reply (`subscribe`, `unsubscribe`; RESP2 or RESP3) in `bytes` ends. */
export function pubsubReplies(bytes: Buffer): number[] {
  return [...bytes.toString('latin1').matchAll(/[*>]3\r\n\$\d+\r\n(?:un)?subscribe\r\n\$\d+\r\n[^\r]*\r\n:\d+\r\n/g)]
    .map((match) => match.index + match[0].length)
}

/** Polls `check` until it holds; fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

export function uniquePrefix(): string {
  return `patchwire-test:${randomUUID()}:`
}

export function isBrokerError(error: unknown): boolean {
  return error instanceof PatchwireError && error.code === 'ERR_PATCHWIRE_BROKER'
}

export function seqOf(id: string | undefined): number {
  const parsed = parseEventId(id ?? '')
  assert.ok(parsed !== undefined, `not an event id: ${String(id)}`)
  return parsed.seq
}

export function epochOf(id: string | undefined): string {
  const parsed = parseEventId(id ?? '')
  assert.ok(parsed !== undefined, `not an event id: ${String(id)}`)
  return parsed.epoch
}

export function framesOf(result: ReplayResult): readonly HistoryFrame[] {
  assert.ok('frames' in result, `expected frames, got ${JSON.stringify(result)}`)
  return result.frames
}

/** Publishes until Redis takes it (the publisher may still be reconnecting); resolves with the id. */
export async function publishWhenBack(broker: Broker, topic: string, payload: string): Promise<string> {
  let id: string | void = undefined
  await eventually(async () => broker.publish(topic, payload).then((value) => { id = value; return true }, () => false), 'a publish to be taken')
  return id as unknown as string
}

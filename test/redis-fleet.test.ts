/**
 * A fleet: three handler processes (two on node-redis, one on ioredis) on
 * one private Redis, behind a round-robin TCP proxy, with 60 `EventSource`
 * clients (the `eventsource` package, which reconnects with
 * `Last-Event-ID` as a browser does) and two publisher processes, each
 * publishing a counter on its topic. Half the clients follow one topic,
 * half both on one stream (`?topic=a&topic=b`, resumed with one id). Each
 * handler process is killed (SIGKILL) and started again in turn while the
 * counters run: every client must get every patch exactly once, in order,
 * with no reset, whichever process its reconnect reaches. No sticky sessions.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawnChild } from './helpers/children.ts'
import type { Child } from './helpers/children.ts'
import { connect, defects, startBalancer, type Client } from './helpers/fleet.ts'
import { startRedisServer } from './helpers/redis-server.ts'
import type { RedisServer } from './helpers/redis-server.ts'
import { until } from './helpers/server.ts'

const TOPIC = 'fleet:counter'
/** The second counter's topic, followed by the multi-topic half of the clients. */
const SIDE = 'fleet:side'
const CLIENTS = 60
const LIBS = ['node-redis', 'ioredis', 'node-redis'] as const
/** The handlers' `retryMs`: reconnects come 75 to 125 ms after a drop. */
const RETRY_MS = 100
/** The publisher's pause between publishes. */
const EVERY_MS = 5
/** Publishes to wait for between two steps, so that each kill lands while the counter runs. */
const STEP = 40

describe('a fleet of handler processes on Redis behind a round-robin proxy', { timeout: 60_000 }, () => {
  let redis: RedisServer & { stop(): Promise<void> }
  before(async () => { redis = await startRedisServer() })
  after(async () => { await redis.stop() })

  it('gives every EventSource every patch exactly once, in order, with no reset, while each handler process is killed and restarted in turn', { timeout: 50_000 }, async (t) => {
    const started = performance.now()
    const spawned: Child[] = []
    const spawnHandler = (lib: string): Child => {
      const child = spawnChild(t, 'redis-handler-process.ts', [String(redis.port), lib, String(RETRY_MS)])
      spawned.push(child)
      return child
    }
    const handlers = LIBS.map(spawnHandler)
    const publishers = [
      spawnChild(t, 'redis-publisher-process.ts', [String(redis.port), TOPIC, 'ioredis']),
      spawnChild(t, 'redis-publisher-process.ts', [String(redis.port), SIDE, 'node-redis']),
    ]
    const ports = await Promise.all(handlers.map(async (handler) => Number((await handler.next('port'))['port'])))
    for (const publisher of publishers) await publisher.next('ready')
    const balancer = await startBalancer(t, ports)

    const origin = `http://127.0.0.1:${balancer.port}`
    const clients = Array.from({ length: CLIENTS }, (_, i) => connect(t, origin, i % 2 === 0 ? [TOPIC] : [TOPIC, SIDE]))
    await until(() => clients.every((client) => client.readies === 1), 20_000, 'every client ready')

    for (const publisher of publishers) publisher.process.send({ every: EVERY_MS, from: 1 })
    // The publishers report nothing until they stop; the clients show how far they got.
    const progress = (): number => Math.max(...clients.map((client) => client.values[TOPIC]?.at(-1) ?? 0))
    for (const [k, lib] of LIBS.entries()) {
      const at = progress()
      await until(() => progress() >= at + STEP, 10_000, `publishes before killing handler ${k}`)
      await (handlers[k] as Child).kill()
      const back = spawnHandler(lib)
      handlers[k] = back
      balancer.backends[k] = Number((await back.next('port'))['port'])
    }
    const at = progress()
    await until(() => progress() >= at + STEP, 10_000, 'publishes after the last restart')
    for (const publisher of publishers) publisher.process.send({ stop: true })
    const published: Record<string, number> = {}
    for (const [k, topic] of [TOPIC, SIDE].entries()) published[topic] = Number((await (publishers[k] as Child).next('published'))['published'])
    assert.ok((published[TOPIC] as number) >= 4 * STEP, `published ${published[TOPIC]}`)

    const done = (client: Client): boolean => client.topics.every((topic) => (client.values[topic] as number[]).length >= (published[topic] as number))
    await until(() => clients.every(done), 15_000, `every client at ${JSON.stringify(published)}`).catch((error: unknown) => {
      const behind = clients.flatMap((client, i) => done(client) ? [] : [`client ${i}: ${client.topics.map((topic) => `${topic} ${(client.values[topic] as number[]).length}, last ${(client.values[topic] as number[]).at(-1)}`).join('; ')}, ${client.readies} readies, state ${client.source.readyState}`])
      throw new Error(`${(error as Error).message}; behind: ${behind.join(' | ')}`)
    })
    const wrong = clients.flatMap((client, i) => client.topics.flatMap((topic) => {
      const values = client.values[topic] as number[]
      const problem = defects(values, published[topic] as number)
      return problem === '' && values.length === published[topic] ? [] : [`client ${i}, ${topic}: ${problem}`]
    }))
    assert.deepEqual(wrong, [], `every client got each patch of each topic once, in order: ${wrong.join(' | ')}`)
    // One order across the topics of a stream: positions only go up.
    const backwards = clients.flatMap((client, i) => client.positions.some((p, k) => k > 0 && p <= (client.positions[k - 1] as number)) ? [i] : [])
    assert.deepEqual(backwards, [], 'clients whose patch positions went backwards')
    assert.deepEqual(clients.flatMap((client) => client.resets), [], 'no client was reset')
    const reconnected = clients.filter((client) => client.readies > 1).length
    // Each kill drops the clients of one process: about a third of them, each time.
    assert.ok(reconnected >= CLIENTS / 3, `only ${reconnected} clients reconnected`)
    const errors = [...spawned, ...publishers].flatMap((child) => child.messages.flatMap((message) => typeof message['error'] === 'string' ? [message['error']] : []))
    assert.deepEqual(errors, [], `no child process reported an error: ${errors.join(' | ')}`)
    t.diagnostic(`${published[TOPIC]} + ${published[SIDE]} patches to ${CLIENTS} clients, ${reconnected} of them reconnected, in ${Math.round(performance.now() - started)} ms`)
  })
})

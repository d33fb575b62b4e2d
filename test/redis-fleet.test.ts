/**
 * A fleet: three handler processes (two on node-redis, one on ioredis) on
 * one private Redis, behind a round-robin TCP proxy, with 60 `EventSource`
 * clients (the `eventsource` package, which reconnects with
 * `Last-Event-ID` as a browser does) and a publisher process publishing a
 * counter. Each handler process is killed (SIGKILL) and started again in
 * turn while the counter runs: every client must get every patch exactly
 * once, in order, with no reset, whichever process its reconnect reaches.
 * No sticky sessions.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import { spawnChild } from './helpers/children.ts'
import type { Child } from './helpers/children.ts'
import { startRedisServer } from './helpers/redis-server.ts'
import type { RedisServer } from './helpers/redis-server.ts'
import { until } from './helpers/server.ts'

const TOPIC = 'fleet:counter'
const CLIENTS = 60
const LIBS = ['node-redis', 'ioredis', 'node-redis'] as const
/** The handlers' `retryMs`: reconnects come 75 to 125 ms after a drop. */
const RETRY_MS = 100
/** The publisher's pause between publishes. */
const EVERY_MS = 5
/** Publishes to wait for between two steps, so that each kill lands while the counter runs. */
const STEP = 40

/** A round-robin TCP proxy: each connection goes to the next backend that accepts it. */
interface Balancer {
  readonly port: number
  /** The backends' ports, in turn; replace one when its process comes back on a new port. */
  readonly backends: number[]
  close(): Promise<void>
}

async function startBalancer(t: TestContext, backends: number[]): Promise<Balancer> {
  const sockets = new Set<net.Socket>()
  let next = 0
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => undefined)
    client.pause()
    const attempt = (tries: number): void => {
      if (tries === 0 || client.destroyed) {
        client.destroy()
        return
      }
      const port = backends[next++ % backends.length] as number
      const upstream = net.connect(port, '127.0.0.1')
      let connected = false
      upstream.on('error', () => {
        // A backend that is down: the next one, as a load balancer's health check would do.
        if (!connected) attempt(tries - 1)
      })
      upstream.once('connect', () => {
        connected = true
        sockets.add(upstream)
        upstream.on('close', () => {
          sockets.delete(upstream)
          client.destroy()
        })
        client.on('close', () => upstream.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
    }
    attempt(backends.length)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const balancer: Balancer = {
    port: (server.address() as net.AddressInfo).port,
    backends,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
  t.after(() => balancer.close())
  return balancer
}

/** What one EventSource got. */
interface Client {
  readonly source: EventSource
  /** The counter values of its patches, in arrival order. */
  readonly values: number[]
  /** Its `ready` events: one per (re)connection. */
  readies: number
  resets: string[]
}

function connect(t: TestContext, url: string): Client {
  const source = new EventSource(url)
  const client: Client = { source, values: [], readies: 0, resets: [] }
  source.addEventListener('patch', (event) => {
    const ops = JSON.parse(event.data) as [[string, string, number]]
    client.values.push(ops[0][2])
  })
  source.addEventListener('ready', () => { client.readies++ })
  source.addEventListener('reset', (event) => { client.resets.push(event.data) })
  t.after(() => source.close())
  return client
}

/** How a client's values differ from 1..last: empty when they are exactly that. */
function defects(values: readonly number[], last: number): string {
  const problems: string[] = []
  const seen = new Set<number>()
  for (const [i, value] of values.entries()) {
    if (seen.has(value)) problems.push(`${value} twice`)
    seen.add(value)
    if (i > 0 && value < (values[i - 1] as number)) problems.push(`${value} after ${values[i - 1]}`)
  }
  const missing = []
  for (let n = 1; n <= last; n++) if (!seen.has(n)) missing.push(n)
  if (missing.length > 0) problems.push(`missing ${missing.length}: ${missing.slice(0, 10).join(', ')}`)
  return problems.slice(0, 5).join('; ')
}

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
    const publisher = spawnChild(t, 'redis-publisher-process.ts', [String(redis.port), TOPIC, 'ioredis'])
    const ports = await Promise.all(handlers.map(async (handler) => Number((await handler.next('port'))['port'])))
    await publisher.next('ready')
    const balancer = await startBalancer(t, ports)

    const clients = Array.from({ length: CLIENTS }, () => connect(t, `http://127.0.0.1:${balancer.port}/?topic=${encodeURIComponent(TOPIC)}`))
    await until(() => clients.every((client) => client.readies === 1), 20_000, 'every client ready')

    publisher.process.send({ every: EVERY_MS, from: 1 })
    let published = 0
    // The publisher reports nothing until it stops; the clients show how far it got.
    const progress = (): number => Math.max(...clients.map((client) => client.values.at(-1) ?? 0))
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
    publisher.process.send({ stop: true })
    published = Number((await publisher.next('published'))['published'])
    assert.ok(published >= 4 * STEP, `published ${published}`)

    await until(() => clients.every((client) => client.values.length >= published), 15_000, `every client at ${published}`)
    const wrong = clients.flatMap((client, i) => {
      const problem = defects(client.values, published)
      return problem === '' && client.values.length === published ? [] : [`client ${i}: ${problem}`]
    })
    assert.deepEqual(wrong, [])
    assert.deepEqual(clients.flatMap((client) => client.resets), [], 'no client was reset')
    const reconnected = clients.filter((client) => client.readies > 1).length
    // Each kill drops the clients of one process: about a third of them, each time.
    assert.ok(reconnected >= CLIENTS / 3, `only ${reconnected} clients reconnected`)
    const errors = [...spawned, publisher].flatMap((child) => child.messages.flatMap((message) => typeof message['error'] === 'string' ? [message['error']] : []))
    assert.deepEqual(errors, [])
    t.diagnostic(`${published} patches to ${CLIENTS} clients, ${reconnected} of them reconnected, in ${Math.round(performance.now() - started)} ms`)
  })
})

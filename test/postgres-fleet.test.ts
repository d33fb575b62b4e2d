/**
 * A fleet on PostgreSQL: three handler processes, each with its own pool
 * and broker on one private database, behind a round-robin TCP proxy, with
 * 40 `EventSource` clients (the `eventsource` package, which reconnects
 * with `Last-Event-ID` as a browser does) and two publisher processes, each
 * running transactions that update an application row and publish its new
 * value in the same transaction; one transaction in three is rolled back
 * after its publish (with a negative value). Half the clients follow one
 * topic, half both on one stream. Each handler process is killed (SIGKILL)
 * and started again in turn while the transactions run: every client must
 * get every committed value exactly once, in order, with no reset, and no
 * rolled-back one, whichever process its reconnect reaches.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawnChild } from './helpers/children.ts'
import type { Child } from './helpers/children.ts'
import { connect, defects, startBalancer, type Client } from './helpers/fleet.ts'
import { freshDatabase, startPostgresServer } from './helpers/postgres-server.ts'
import type { PostgresServer } from './helpers/postgres-server.ts'
import { until } from './helpers/server.ts'

const TOPIC = 'fleet:counter'
/** The second counter's topic, followed by the multi-topic half of the clients. */
const SIDE = 'fleet:side'
const CLIENTS = 40
const HANDLERS = 3
/** The handlers' `retryMs`: reconnects come 75 to 125 ms after a drop. */
const RETRY_MS = 100
/** The publisher's pause between publishes. */
const EVERY_MS = 5
/** Committed values to wait for between two steps, so that each kill lands while the transactions run. */
const STEP = 30

describe('a fleet of handler processes on PostgreSQL behind a round-robin proxy', { timeout: 120_000 }, () => {
  let server: PostgresServer
  before(async () => { server = await startPostgresServer() })
  after(async () => { await server.stop() })

  it('gives every EventSource every committed patch exactly once, in order, with no reset and no rolled-back one, while each handler process is killed and restarted in turn', { timeout: 110_000 }, async (t) => {
    const started = performance.now()
    const url = await freshDatabase(server)
    const spawned: Child[] = []
    const spawnHandler = (): Child => {
      const child = spawnChild(t, 'postgres-handler-process.ts', [url, String(RETRY_MS)])
      spawned.push(child)
      return child
    }
    const handlers = Array.from({ length: HANDLERS }, spawnHandler)
    const publishers = [TOPIC, SIDE].map((topic) => spawnChild(t, 'postgres-publisher-process.ts', [url, topic]))
    const ports = await Promise.all(handlers.map(async (handler) => Number((await handler.next('port'))['port'])))
    for (const publisher of publishers) await publisher.next('ready')
    const balancer = await startBalancer(t, ports)

    const origin = `http://127.0.0.1:${balancer.port}`
    const clients = Array.from({ length: CLIENTS }, (_, i) => connect(t, origin, i % 2 === 0 ? [TOPIC] : [TOPIC, SIDE]))
    await until(() => clients.every((client) => client.readies === 1), 30_000, 'every client ready')

    for (const publisher of publishers) publisher.process.send({ every: EVERY_MS })
    const progress = (): number => Math.max(...clients.map((client) => client.values[TOPIC]?.at(-1) ?? 0))
    for (let k = 0; k < HANDLERS; k++) {
      const at = progress()
      await until(() => progress() >= at + STEP, 20_000, `commits before killing handler ${k}`)
      await (handlers[k] as Child).kill()
      const back = spawnHandler()
      handlers[k] = back
      balancer.backends[k] = Number((await back.next('port'))['port'])
    }
    const at = progress()
    await until(() => progress() >= at + STEP, 20_000, 'commits after the last restart')
    for (const publisher of publishers) publisher.process.send({ stop: true })
    const published: Record<string, number> = {}
    let rolledBack = 0
    for (const [k, topic] of [TOPIC, SIDE].entries()) {
      const answer = await (publishers[k] as Child).next('published')
      published[topic] = Number(answer['published'])
      rolledBack += Number(answer['rolledBack'])
    }
    assert.ok((published[TOPIC] as number) >= 4 * STEP, `committed ${published[TOPIC]}`)
    assert.ok(rolledBack >= 2 * STEP, `rolled back ${rolledBack}: the test must roll back many`)

    const done = (client: Client): boolean => client.topics.every((topic) => (client.values[topic] as number[]).length >= (published[topic] as number))
    await until(() => clients.every(done), 20_000, `every client at ${JSON.stringify(published)}`).catch((error: unknown) => {
      const behind = clients.flatMap((client, i) => done(client) ? [] : [`client ${i}: ${client.topics.map((topic) => `${topic} ${(client.values[topic] as number[]).length}, last ${(client.values[topic] as number[]).at(-1)}`).join('; ')}, ${client.readies} readies, state ${client.source.readyState}`])
      throw new Error(`${(error as Error).message}; behind: ${behind.join(' | ')}`)
    })
    // Rolled-back values are negative: none may arrive.
    const leaked = clients.flatMap((client, i) => client.topics.flatMap((topic) => (client.values[topic] as number[]).filter((value) => value < 0).map((value) => `client ${i}, ${topic}: ${value}`)))
    assert.deepEqual(leaked, [], 'rolled-back patches that reached a client')
    const wrong = clients.flatMap((client, i) => client.topics.flatMap((topic) => {
      const values = client.values[topic] as number[]
      const problem = defects(values, published[topic] as number)
      return problem === '' && values.length === published[topic] ? [] : [`client ${i}, ${topic}: ${problem}`]
    }))
    assert.deepEqual(wrong, [], 'clients that missed, repeated or reordered a committed patch')
    const backwards = clients.flatMap((client, i) => client.positions.some((p, k) => k > 0 && p <= (client.positions[k - 1] as number)) ? [i] : [])
    assert.deepEqual(backwards, [], 'clients whose patch positions went backwards')
    assert.deepEqual(clients.flatMap((client) => client.resets), [], 'no client was reset')
    const reconnected = clients.filter((client) => client.readies > 1).length
    assert.ok(reconnected >= CLIENTS / 3, `only ${reconnected} clients reconnected`)
    const errors = [...spawned, ...publishers].flatMap((child) => child.messages.flatMap((message) => typeof message['error'] === 'string' ? [message['error']] : []))
    assert.deepEqual(errors, [], 'errors reported by the processes')
    t.diagnostic(`${published[TOPIC]} + ${published[SIDE]} committed patches (${rolledBack} rolled back) to ${CLIENTS} clients, ${reconnected} of them reconnected, in ${Math.round(performance.now() - started)} ms`)
  })
})

/**
 * The parts of a fleet test (test/redis-fleet.test.ts,
 * test/postgres-fleet.test.ts): a round-robin TCP proxy in front of the
 * handler processes, `EventSource` clients that record what they get, and
 * the check that a client got exactly 1..last.
 */
import net from 'node:net'
import type { TestContext } from 'node:test'
import { EventSource } from 'eventsource'

/** A round-robin TCP proxy: each connection goes to the next backend that accepts it. */
export interface Balancer {
  readonly port: number
  /** The backends' ports, in turn; replace one when its process comes back on a new port. */
  readonly backends: number[]
  close(): Promise<void>
}

export async function startBalancer(t: TestContext, backends: number[]): Promise<Balancer> {
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
export interface Client {
  readonly source: EventSource
  readonly topics: readonly string[]
  /** The counter values of its patches, by topic, in arrival order. */
  readonly values: Record<string, number[]>
  /** The position of every patch, in arrival order (across its topics). */
  readonly positions: number[]
  /** Its `ready` events: one per (re)connection. */
  readies: number
  resets: string[]
}

export function connect(t: TestContext, origin: string, topics: readonly string[]): Client {
  const source = new EventSource(`${origin}/?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}`)
  const client: Client = { source, topics, values: Object.fromEntries(topics.map((topic) => [topic, []])), positions: [], readies: 0, resets: [] }
  source.addEventListener('patch', (event) => {
    // A multi-topic stream's data names the topic on a first line.
    const lines = event.data.split('\n')
    const topic = lines.length === 2 ? JSON.parse(lines[0] as string) as string : topics[0] as string
    const ops = JSON.parse(lines.at(-1) as string) as [[string, string, number]]
    client.values[topic]?.push(ops[0][2])
    client.positions.push(Number(event.lastEventId.slice(event.lastEventId.lastIndexOf('-') + 1)))
  })
  source.addEventListener('ready', () => { client.readies++ })
  source.addEventListener('reset', (event) => { client.resets.push(event.data) })
  t.after(() => source.close())
  return client
}

/** How a client's values differ from 1..last: empty when they are exactly that. */
export function defects(values: readonly number[], last: number): string {
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

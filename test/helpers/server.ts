/**
 * Test servers: a real `node:http` server on port 0 around a handler,
 * closed (with every socket) by `t.after`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { createHandler, type Handler, type HandlerOptions } from '../../src/index.ts'

export interface TestServer {
  server: http.Server
  handler: Handler
  port: number
  /** `http://127.0.0.1:<port>` */
  origin: string
}

/** Starts a handler on a fresh `node:http` server; everything is closed after the test. */
export async function startServer(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const handler = createHandler(options)
  const server = http.createServer((req, res) => handler(req, res))
  return listen(t, server, handler)
}

/** Listens on 127.0.0.1:0 and registers the clean-up. */
export async function listen(t: TestContext, server: http.Server, handler: Handler): Promise<TestServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    await handler.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { server, handler, port, origin: `http://127.0.0.1:${port}` }
}

/** Resolves when `condition()` holds (or resolves true), polling every 5 ms, or rejects after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** The stream counters of `stats()` that most tests assert, without the traffic counters. */
export function streamCounts(stats: { connections: number; topics: number; dropped: number }): { connections: number; topics: number; dropped: number } {
  return { connections: stats.connections, topics: stats.topics, dropped: stats.dropped }
}

/**
 * The patchwire demo: a live dashboard on plain `node:http`.
 *
 * The server keeps the state of two topics, `dashboard:stats` (a counter and
 * a clock) and `dashboard:orders` (a short list of orders). Every second it
 * computes the next state, publishes `diff(previous, next)` for each topic,
 * and serves each topic's current state as the stream's `snapshot`: a page
 * needs no state endpoint, gets both topics on one connection (shared by
 * every tab), and never reloads, not even when the server restarts.
 *
 * Run it with `npm start` (`PORT=8080 npm start` for another port). The page
 * loads the built client from `dist/client/`, which `npm start` builds first.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createBroker, createHandler, diff, publish, type Broker, type Handler, type HandlerStats } from '../../src/index.ts'

/** The topics every page subscribes to, on one stream. */
export const TOPICS = { stats: 'dashboard:stats', orders: 'dashboard:orders' } as const

/** An order in the dashboard's list. */
export interface Order {
  id: number
  product: string
  status: 'new' | 'packed' | 'shipped'
}

/** The state of `dashboard:stats`; `rev` counts the updates. */
export interface Stats {
  rev: number
  counter: number
  clock: string
}

/** The state of `dashboard:orders`, newest first. */
export interface Orders {
  orders: Order[]
}

/** What the dashboard shows: each topic's state. */
export interface DashboardState {
  stats: Stats
  orders: Orders
}

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /**
   * TCP port; `0` picks a free one.
   * @defaultValue 3000
   */
  port?: number
  /**
   * Interface to listen on.
   * @defaultValue 'localhost'
   */
  host?: string
  /**
   * Milliseconds between two updates; `0` publishes only on {@link Dashboard.tick}.
   * @defaultValue 1000
   */
  tickMs?: number
}

/** A running dashboard, as returned by {@link startDashboard}. */
export interface Dashboard {
  /** The page's URL, such as `http://localhost:3000/`. */
  readonly url: string
  /** The server's current state: what every page should show. */
  readonly state: Readonly<DashboardState>
  /** The SSE handler's counters (open streams: one per browser, however many tabs). */
  stats(): HandlerStats
  /** Publishes the next update now; resolves with the stats topic's event id. */
  tick(): Promise<string>
  /** Cuts every open connection, as a network failure would; pages reconnect and resume. */
  dropAllConnections(): void
  /**
   * Replaces the broker and the SSE handler with new ones, as a restart of
   * the process would: reconnecting pages cannot resume (`event: reset`)
   * and get the state as a snapshot, without reloading.
   */
  restartEvents(): Promise<void>
  /** Stops the updates and the server. */
  close(): Promise<void>
}

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url))
const PRODUCTS = ['Espresso beans', 'Pour-over kettle', 'Ceramic mug', 'Milk frother', 'Hand grinder', 'Paper filters', 'Travel press']
const LIST_LENGTH = 5

/**
 * Starts the dashboard server.
 * @param options - see {@link DashboardOptions}
 * @returns the running {@link Dashboard} once it listens
 * @example
 * const dashboard = await startDashboard({ port: 0 })
 * console.log(dashboard.url)
 * await dashboard.close()
 */
export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const { port = 3000, host = 'localhost', tickMs = 1000 } = options
  let state: DashboardState = { stats: { rev: 0, counter: 0, clock: new Date().toISOString() }, orders: { orders: [] } }
  const handlerFor = (broker: Broker): Handler => createHandler({
    broker,
    path: '/__events',
    retryMs: 1000,
    topicPrefix: 'dashboard:',
    // Each topic's state as it is now: sent to a new stream and after a reset.
    snapshot: (_req, topic) => (topic === TOPICS.stats ? state.stats : state.orders),
  })
  let broker = createBroker()
  let events = handlerFor(broker)
  const page = await readFile(new URL('index.html', import.meta.url), 'utf8')

  const server = http.createServer((req, res) => events(req, res, () => void route(req, res, page)))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })

  const tick = async (): Promise<string> => {
    const next = nextState(state)
    const previous = state
    state = next
    // Orders are diffed by id: a changed status is one replace of
    // /orders/$$<id>/status, a new order an upsert, whatever the indexes do.
    const [id] = await Promise.all([
      publish(broker, TOPICS.stats, diff(previous.stats, next.stats)),
      publish(broker, TOPICS.orders, diff(previous.orders, next.orders)),
    ])
    return id
  }
  const timer = tickMs > 0 ? setInterval(() => void tick(), tickMs) : undefined

  const address = server.address() as AddressInfo
  const shownHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${shownHost}:${address.port}/`,
    get state() {
      return state
    },
    stats: () => events.stats(),
    tick,
    dropAllConnections: () => server.closeAllConnections(),
    async restartEvents() {
      const old = events
      broker = createBroker()
      events = handlerFor(broker)
      await old.close({ reconnectSpreadMs: 0 })
    },
    async close() {
      clearInterval(timer)
      await events.close({ reconnectSpreadMs: 0 })
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

// One update: the counter and the clock; a new order on top of the list,
// the previous one packed and the one before shipped, the list kept short.
function nextState({ stats, orders }: DashboardState): DashboardState {
  const id = stats.counter + 1
  const list = orders.orders.map((order, index): Order => (index === 0 ? { ...order, status: 'packed' } : index === 1 ? { ...order, status: 'shipped' } : order))
  list.unshift({ id, product: PRODUCTS[id % PRODUCTS.length] as string, status: 'new' })
  return {
    stats: { rev: stats.rev + 1, counter: id, clock: new Date().toISOString() },
    orders: { orders: list.slice(0, LIST_LENGTH) },
  }
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, page: string): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'Method Not Allowed', { Allow: 'GET, HEAD' })
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  if (path === '/') return send(res, 200, 'text/html; charset=utf-8', page)
  // The browser client, as built by `npm run build`: dist/client/*.js and the error class they import.
  const file = /^\/patchwire\/((?:client\/)?[a-z-]+\.js)$/.exec(path)?.[1]
  if (file !== undefined) {
    try {
      return send(res, 200, 'text/javascript; charset=utf-8', await readFile(DIST + file))
    } catch {
      return send(res, 404, 'text/plain', `${file} is not built: run npm run build (npm start does)`)
    }
  }
  return send(res, 404, 'text/plain', 'Not Found')
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-cache', ...headers })
  res.end(body)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env['PORT'] ?? 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be a port number, got ${process.env['PORT']}`)
    process.exit(1)
  }
  if (!existsSync(`${DIST}client/index.js`)) console.warn('dist/client/ is missing: run npm run build first (npm start does)')
  const dashboard = await startDashboard({ port })
  console.log(`patchwire dashboard: ${dashboard.url}`)
}

/**
 * The patchwire demo: a live dashboard on plain `node:http`.
 *
 * Every second the server changes its state (a counter, a clock, a short
 * list of orders) with JSON-Patch ops, applies them to its own copy and
 * publishes them; every open page applies the same ops with `applyPatch`.
 * Each patch starts with `['test', '/rev', n]`, so a page that missed one
 * fails that test and reloads `/state` instead of drifting.
 *
 * Run it with `npm start` (`PORT=8080 npm start` for another port). The page
 * loads the built client from `dist/client/`, which `npm start` builds first.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { applyPatch } from '../../src/client/index.ts'
import { createBroker, createHandler, publish, type Handler, type PatchOp } from '../../src/index.ts'

/** The one topic every page subscribes to. */
export const TOPIC = 'dashboard'

/** An order in the dashboard's list. */
export interface Order {
  id: number
  product: string
  status: 'new' | 'packed' | 'shipped'
}

/** What the dashboard shows; `rev` counts the patches applied. */
export interface DashboardState {
  rev: number
  counter: number
  clock: string
  orders: Order[]
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
  /** Publishes the next update now. */
  tick(): Promise<string>
  /** Cuts every open connection, as a network failure would; pages reconnect and resume. */
  dropAllConnections(): void
  /**
   * Replaces the SSE handler with a new one, as a server restart would:
   * reconnecting pages cannot resume, get `event: reset` and reload `/state`.
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
  const broker = createBroker()
  const eventsOptions = { broker, path: '/__events', retryMs: 1000 }
  let events: Handler = createHandler(eventsOptions)
  let state: DashboardState = { rev: 0, counter: 0, clock: new Date().toISOString(), orders: [] }
  const page = await readFile(new URL('index.html', import.meta.url), 'utf8')

  const server = http.createServer((req, res) => events(req, res, () => void route(req, res, page, () => state)))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })

  const tick = (): Promise<string> => {
    const ops = nextOps(state)
    state = applyPatch(state, ops)
    return publish(broker, TOPIC, ops)
  }
  const timer = tickMs > 0 ? setInterval(() => void tick(), tickMs) : undefined

  const address = server.address() as AddressInfo
  const shownHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${shownHost}:${address.port}/`,
    get state() {
      return state
    },
    tick,
    dropAllConnections: () => server.closeAllConnections(),
    async restartEvents() {
      const old = events
      events = createHandler(eventsOptions)
      await old.close()
    },
    async close() {
      clearInterval(timer)
      await events.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

// One update: a new order on top of the list (upsert + limit keep it short),
// the previous one packed and the one before shipped (addressed by id with
// `$$<id>`), the counter and the clock. The leading test makes a page that
// missed a patch fail this one, atomically, and reload.
function nextOps(state: DashboardState): PatchOp[] {
  const id = state.counter + 1
  const ops: PatchOp[] = [
    ['test', '/rev', state.rev],
    ['replace', '/rev', state.rev + 1],
    ['replace', '/counter', id],
    ['replace', '/clock', new Date().toISOString()],
  ]
  const [newest, packed] = state.orders
  if (packed !== undefined) ops.push(['replace', `/orders/$$${packed.id}/status`, 'shipped'])
  if (newest !== undefined) ops.push(['replace', `/orders/$$${newest.id}/status`, 'packed'])
  const order: Order = { id, product: PRODUCTS[id % PRODUCTS.length] as string, status: 'new' }
  ops.push(['upsert', '/orders/0', order], ['limit', '/orders', LIST_LENGTH])
  return ops
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, page: string, state: () => DashboardState): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'Method Not Allowed', { Allow: 'GET, HEAD' })
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  if (path === '/') return send(res, 200, 'text/html; charset=utf-8', page)
  if (path === '/state') return send(res, 200, 'application/json', JSON.stringify(state()))
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

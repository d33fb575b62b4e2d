/**
 * patchwire in a Hono app: the event stream is one route. The app runs on
 * any runtime Hono runs on; serve it with `serve({ fetch: app.fetch })` from
 * `@hono/node-server` on Node, `Deno.serve(app.fetch)` on Deno, and
 * `Bun.serve({ fetch: app.fetch, idleTimeout: 0 })` on Bun (whose 10 s idle
 * timeout would otherwise cut a stream before its first heartbeat).
 */
import { Hono } from 'hono'
import { createFetchHandler } from 'patchwire'

export const events = createFetchHandler({ topicPrefix: 'board:' })

export const app = new Hono()
// Every method, so that a POST gets the handler's 405 (with Allow: GET), not Hono's 404.
app.all('/events', (c) => events(c.req.raw))
app.get('/', (c) => c.text('the rest of the app'))

/**
 * patchwire on Bun (`bun run server.ts`): the event stream at `/events`,
 * beside the rest of the app. Publish from anywhere in the process with
 * `publish('board:1', ops)`.
 */
import { createFetchHandler } from 'patchwire'

export const events = createFetchHandler({ topicPrefix: 'board:' })

export const server = Bun.serve({
  port: Number(process.env['PORT'] ?? 3000),
  fetch(request, server) {
    if (new URL(request.url).pathname !== '/events') return new Response('the rest of the app')
    // Bun times out a connection after 10 s without traffic, before the
    // first heartbeat (15 s): lift that for the stream alone.
    server.timeout(request, 0)
    return events(request)
  },
})

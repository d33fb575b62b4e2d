/**
 * patchwire on Deno (`deno run --allow-net --allow-env server.ts`): the
 * event stream at `/events`, beside the rest of the app. Publish from
 * anywhere in the process with `publish('board:1', ops)`.
 */
import { createFetchHandler } from 'patchwire'

export const events = createFetchHandler({ topicPrefix: 'board:' })

export const server = Deno.serve({ port: Number(Deno.env.get('PORT') ?? 8000) }, (request) => {
  if (new URL(request.url).pathname !== '/events') return new Response('the rest of the app')
  return events(request)
})

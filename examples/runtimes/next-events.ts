/**
 * The Next.js recipe, part 1 (`lib/events.ts`): one handler for the
 * process, in a module of its own, so that the route file exports only what
 * Next.js allows and the rest of the server can reach the handler (for
 * `events.stats()` in a health route, or `events.close()` on shutdown).
 */
import { createFetchHandler } from 'patchwire'

export const events = createFetchHandler({ topicPrefix: 'board:' })

/**
 * The Next.js recipe, part 2 (`app/events/route.ts`): a route handler that
 * answers GET with the event stream. `force-dynamic` keeps Next.js from
 * rendering the route once at build time and caching it; the default
 * Node.js runtime is needed (the in-process broker lives in one long-lived
 * process, and the Edge runtime has no `node:crypto`).
 */
import { events } from './next-events.ts'

export const dynamic = 'force-dynamic'

export const GET = (request: Request) => events(request)

/**
 * The `better-sse` variant of the fan-out bench: one `Session` per request,
 * registered on one `Channel`, and `channel.broadcast(ops, 'patch')`. Default
 * options except `keepAlive`, set to the bench's heartbeat interval so that
 * every variant sends the same keep-alive traffic. better-sse serialises the
 * data and sanitises it per session, and runs one keep-alive timer per
 * session: that is its design, measured as it is.
 */
import { createChannel, Session } from 'better-sse'
import type { Variant, VariantOptions } from './variant.js'

/**
 * @param options - heartbeat interval
 * @returns the better-sse variant
 */
export function createBetterSseVariant(options: VariantOptions): Variant {
  const channel = createChannel()
  return {
    handle(req, res) {
      const session = new Session(req, res, { keepAlive: options.heartbeatMs })
      // A session writes its head on the next tick and refuses pushes before.
      session.once('connected', () => channel.register(session))
    },
    broadcast(ops) {
      channel.broadcast(ops, 'patch')
    },
    streams: () => channel.sessionCount,
  }
}

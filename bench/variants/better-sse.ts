/**
 * The `better-sse` variant of the benches: one `Session` per request,
 * registered on its topic's `Channel` (one channel per topic), and
 * `channel.broadcast(ops, 'patch')`. Default options except `keepAlive`, set
 * to the bench's heartbeat interval so that every variant sends the same
 * keep-alive traffic. better-sse serialises the data and sanitises it per
 * session, and runs one keep-alive timer per session: that is its design,
 * measured as it is.
 */
import { createChannel, Session } from 'better-sse'
import type { Channel } from 'better-sse'
import { topicOf, type Variant, type VariantOptions } from './variant.js'

/**
 * @param options - heartbeat interval
 * @returns the better-sse variant
 */
export function createBetterSseVariant(options: VariantOptions): Variant {
  const channels = new Map<string, Channel>()
  return {
    handle(req, res) {
      const topic = topicOf(req.url)
      let channel = channels.get(topic)
      if (channel === undefined) channels.set(topic, (channel = createChannel()))
      const session = new Session(req, res, { keepAlive: options.heartbeatMs })
      // A session writes its head on the next tick and refuses pushes before.
      session.once('connected', () => (channel as Channel).register(session))
    },
    publish(topic, ops) {
      channels.get(topic)?.broadcast(ops, 'patch')
    },
    streams() {
      let open = 0
      for (const channel of channels.values()) open += channel.sessionCount
      return open
    },
  }
}

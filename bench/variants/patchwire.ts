/**
 * The patchwire variant of the benches: `createHandler` with the bench's
 * heartbeat interval, and `publish` on the handler's broker (the in-process
 * default, or the Redis broker with `--processes K`). The handler reads the
 * topic and `Last-Event-ID` from the request itself.
 */
import { createHandler, defaultBroker, position, publish } from '../../src/index.js'
import type { Variant, VariantOptions } from './variant.js'

/**
 * @param options - heartbeat interval and optional broker
 * @returns the patchwire variant
 */
export function createPatchwireVariant(options: VariantOptions): Variant {
  const broker = options.broker ?? defaultBroker
  const handler = createHandler({ broker, heartbeatMs: options.heartbeatMs })
  return {
    handle(req, res) {
      handler(req, res)
    },
    publish(topic, ops) {
      void publish(broker, topic, ops)
    },
    streams: () => handler.stats().connections,
    position: (topic) => position(broker, topic),
    dropped: () => handler.stats().dropped,
  }
}

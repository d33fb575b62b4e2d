/**
 * The patchwire variant of the fan-out bench: `createHandler` with the
 * bench's heartbeat interval, and `publish` on the handler's broker (the
 * in-process default, or the Redis broker with `--processes K`).
 */
import { createHandler, defaultBroker, publish } from '../../src/index.js'
import type { Variant, VariantOptions } from './variant.js'

/**
 * @param options - heartbeat interval, topic and optional broker
 * @returns the patchwire variant
 */
export function createPatchwireVariant(options: VariantOptions): Variant {
  const broker = options.broker ?? defaultBroker
  const handler = createHandler({ broker, heartbeatMs: options.heartbeatMs })
  return {
    handle(req, res) {
      handler(req, res)
    },
    broadcast(ops) {
      void publish(broker, options.topic, ops)
    },
    streams: () => handler.stats().connections,
  }
}

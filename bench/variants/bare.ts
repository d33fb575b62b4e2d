/**
 * The bare `node:http` baseline of the fan-out bench: a `Set` of responses,
 * one `setInterval` heartbeat, and `res.write` of one string built once per
 * broadcast. Chunked transfer encoding, as Node does by default. This is what
 * a careful hand-written SSE endpoint costs; the targets are ratios
 * against it.
 */
import type { ServerResponse } from 'node:http'
import type { Variant, VariantOptions } from './variant.js'

/**
 * @param options - heartbeat interval
 * @returns the bare variant
 */
export function createBareVariant(options: VariantOptions): Variant {
  const streams = new Set<ServerResponse>()
  let seq = 0
  let timer: NodeJS.Timeout | undefined

  // One shared listener: `this` is the response, so a stream costs no closure.
  function onClose(this: ServerResponse): void {
    streams.delete(this)
    if (streams.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }

  function heartbeat(): void {
    for (const res of streams) res.write(':\n\n')
  }

  return {
    handle(_req, res) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' })
      res.write('retry: 3000\n\n')
      res.on('close', onClose)
      streams.add(res)
      if (timer === undefined) timer = setInterval(heartbeat, options.heartbeatMs).unref()
    },
    broadcast(ops) {
      seq++
      const frame = `id: ${seq}\nevent: patch\ndata: ${JSON.stringify(ops)}\n\n`
      for (const res of streams) res.write(frame)
    },
    streams: () => streams.size,
  }
}

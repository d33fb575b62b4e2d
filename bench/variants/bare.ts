/**
 * The bare `node:http` baseline of the benches: a `Set` of responses per
 * topic, one `setInterval` heartbeat, and `res.write` of one string built
 * once per publish. Chunked transfer encoding, as Node does by default. This
 * is what a careful hand-written SSE endpoint costs; the issues' targets are
 * ratios against it. With one topic (the fan-out bench) it is one `Set`
 * looped over, as it always was.
 */
import type { ServerResponse } from 'node:http'
import { topicOf, type Variant, type VariantOptions } from './variant.js'

/**
 * @param options - heartbeat interval
 * @returns the bare variant
 */
export function createBareVariant(options: VariantOptions): Variant {
  const topics = new Map<string, Set<ServerResponse>>()
  let open = 0
  let seq = 0
  let timer: NodeJS.Timeout | undefined

  // One shared listener: `this` is the response, and its request names the
  // topic, so a stream costs no closure and no extra field.
  function onClose(this: ServerResponse): void {
    const topic = topicOf(this.req.url)
    const set = topics.get(topic)
    if (set === undefined || !set.delete(this)) return
    open--
    if (set.size === 0) topics.delete(topic)
    if (open === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }

  function heartbeat(): void {
    for (const set of topics.values()) for (const res of set) res.write(':\n\n')
  }

  return {
    handle(req, res) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' })
      res.write('retry: 3000\n\n')
      res.on('close', onClose)
      const topic = topicOf(req.url)
      let set = topics.get(topic)
      if (set === undefined) topics.set(topic, (set = new Set()))
      set.add(res)
      open++
      if (timer === undefined) timer = setInterval(heartbeat, options.heartbeatMs).unref()
    },
    publish(topic, ops) {
      const set = topics.get(topic)
      seq++
      if (set === undefined) return
      const frame = `id: ${seq}\nevent: patch\ndata: ${JSON.stringify(ops)}\n\n`
      for (const res of set) res.write(frame)
    },
    streams: () => open,
  }
}

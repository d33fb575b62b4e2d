/**
 * The ceiling probe of the benches: what Node itself can do here. The
 * request still goes through `node:http` (so the per-stream parser and
 * request objects stay, as in every other variant), but the response head is
 * written once, straight to the socket, with a close-delimited body; each
 * frame is then one `socket.write` of one `Buffer` built once per publish.
 * No chunked framing, no `ServerResponse` bookkeeping, no coalescing; what
 * remains is libuv and the kernel's loopback TCP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { topicOf, type Variant, type VariantOptions } from './variant.js'

const HEAD = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-transform\r\n' +
    'X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 3000\n\n',
)
const HEARTBEAT = Buffer.from(':\n\n')

/** Node keeps the response in flight on its socket; the probe never ends it, so its request names the topic. */
type ProbeSocket = Socket & { _httpMessage?: ServerResponse & { req: IncomingMessage } }

/**
 * @param options - heartbeat interval
 * @returns the probe variant
 */
export function createProbeVariant(options: VariantOptions): Variant {
  const topics = new Map<string, Set<Socket>>()
  let open = 0
  let seq = 0
  let timer: NodeJS.Timeout | undefined

  function onClose(this: ProbeSocket): void {
    const topic = topicOf(this._httpMessage?.req.url)
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
    for (const set of topics.values()) for (const socket of set) socket.write(HEARTBEAT)
  }

  return {
    handle(req) {
      const socket = req.socket
      socket.write(HEAD)
      socket.on('close', onClose)
      const topic = topicOf(req.url)
      let set = topics.get(topic)
      if (set === undefined) topics.set(topic, (set = new Set()))
      set.add(socket)
      open++
      if (timer === undefined) timer = setInterval(heartbeat, options.heartbeatMs).unref()
    },
    publish(topic, ops) {
      const set = topics.get(topic)
      seq++
      if (set === undefined) return
      const frame = Buffer.from(`id: ${seq}\nevent: patch\ndata: ${JSON.stringify(ops)}\n\n`)
      for (const socket of set) socket.write(frame)
    },
    streams: () => open,
  }
}

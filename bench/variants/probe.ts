/**
 * The ceiling probe of the fan-out bench: what Node itself can do here. The
 * request still goes through `node:http` (so the per-stream parser and
 * request objects stay, as in every other variant), but the response head is
 * written once, straight to the socket, with a close-delimited body; each
 * frame is then one `socket.write` of one `Buffer` built once per broadcast.
 * No chunked framing, no `ServerResponse` bookkeeping; what remains is libuv
 * and the kernel's loopback TCP.
 */
import type { Socket } from 'node:net'
import type { Variant, VariantOptions } from './variant.js'

const HEAD = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-transform\r\n' +
    'X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 3000\n\n',
)
const HEARTBEAT = Buffer.from(':\n\n')

/**
 * @param options - heartbeat interval
 * @returns the probe variant
 */
export function createProbeVariant(options: VariantOptions): Variant {
  const sockets = new Set<Socket>()
  let seq = 0
  let timer: NodeJS.Timeout | undefined

  function onClose(this: Socket): void {
    sockets.delete(this)
    if (sockets.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }

  function heartbeat(): void {
    for (const socket of sockets) socket.write(HEARTBEAT)
  }

  return {
    handle(req) {
      const socket = req.socket
      socket.write(HEAD)
      socket.on('close', onClose)
      sockets.add(socket)
      if (timer === undefined) timer = setInterval(heartbeat, options.heartbeatMs).unref()
    },
    broadcast(ops) {
      seq++
      const frame = Buffer.from(`id: ${seq}\nevent: patch\ndata: ${JSON.stringify(ops)}\n\n`)
      for (const socket of sockets) socket.write(frame)
    },
    streams: () => sockets.size,
  }
}

import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import net from 'node:net'

/**
 * A free port below the ephemeral range, for a private server a test
 * starts (redis-server, PostgreSQL). A client reconnecting to a port of
 * that range while the server is down can be given that same port as its
 * own local port and connect to itself (TCP simultaneous open), which then
 * keeps the server from binding it again.
 */
export async function freePort(): Promise<number> {
  const [ephemeralStart] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number)
  const high = Math.min(ephemeralStart ?? 32768, 32768)
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * (high - 20000))
    const server = net.createServer()
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (bound) {
      server.close()
      await once(server, 'close')
      return port
    }
  }
}

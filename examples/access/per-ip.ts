/**
 * A cap per IP address behind a reverse proxy: a stream's identity is the
 * client's address, read from the entry the proxy appended to
 * X-Forwarded-For. README.md and docs/access.md show this file;
 * test/access.test.ts runs it.
 */
import type { NodeRequest } from 'patchwire'

/** The proxies in front of this server that append to X-Forwarded-For (a CDN, then a load balancer: 2). */
const TRUSTED_PROXIES = 1

/**
 * The client's address: the entry the outermost trusted proxy added, never
 * the first (a client can send any X-Forwarded-For it likes, and the proxy
 * appends to it); without the header, the socket's peer.
 */
export function clientAddress(req: NodeRequest): string | undefined {
  const header = req.headers['x-forwarded-for']
  const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((hop) => hop.trim()).filter(Boolean)
  return hops[hops.length - TRUSTED_PROXIES] ?? req.socket.remoteAddress
}

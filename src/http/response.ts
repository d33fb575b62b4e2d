import type { Refusal } from '../core/transport.js'

/**
 * What every transport answers the same way: the headers of a stream, and
 * the refusals a transport makes before the core sees the request.
 */

/** The headers of every stream; without `Connection`, which HTTP/2 forbids (HTTP/1 adds it). @internal */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
}

/** @internal */
export const NOT_FOUND: Refusal = { status: 404, message: 'Not Found' }
/** @internal */
export const NOT_GET: Refusal = { status: 405, message: 'Method Not Allowed: event streams are opened with GET' }

/** The headers of a refusal: plain text, never cached, and `Allow` on a 405. @internal */
export function refusalHeaders({ status, message }: Refusal): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(new TextEncoder().encode(message).length),
    'Cache-Control': 'no-store',
  }
  if (status === 405) headers['Allow'] = 'GET'
  return headers
}

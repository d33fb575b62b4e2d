/**
 * The shape every server variant of the benches implements, so that
 * `fanout-server.ts` measures them all the same way: one `node:http` server,
 * the same frames, the same heartbeat interval. A stream's topic is the
 * request's `?topic=` (one topic for the fan-out, one per stream for the
 * many-topics bench).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { PatchOp } from '../../src/patch-op.js'
import type { Broker } from '../../src/broker/broker.ts'

/** A server implementation under test. */
export interface Variant {
  /** Answers one request by opening an SSE stream on the request's topic. */
  handle(req: IncomingMessage, res: ServerResponse): void
  /** Sends the ops to every open stream of `topic`, as one `patch` frame. */
  publish(topic: string, ops: readonly PatchOp[]): void
  /** @returns how many streams are open */
  streams(): number
  /** patchwire: the broker's position of `topic` (resumes start from it). */
  position?(topic: string): Promise<string>
  /** patchwire: streams cut off as slow readers so far. */
  dropped?(): number
}

/** What the server process tells a variant. */
export interface VariantOptions {
  /** heartbeat (keep-alive comment) interval, ms */
  heartbeatMs: number
  /** a broker to use instead of the in-process default (patchwire behind Redis) */
  broker?: Broker
}

/** The variants, in the order they run within a round. */
export const VARIANT_NAMES = ['patchwire', 'bare', 'better-sse', 'probe'] as const

/** A variant's name. */
export type VariantName = (typeof VARIANT_NAMES)[number]

/**
 * The topic of a bench request, `?topic=<name>` (names are plain ASCII
 * here, so no decoding).
 * @param url - the request target
 * @returns the topic, or `''` when there is none
 */
export function topicOf(url: string | undefined): string {
  const at = url?.indexOf('topic=') ?? -1
  if (url === undefined || at === -1) return ''
  const end = url.indexOf('&', at)
  return url.slice(at + 6, end === -1 ? undefined : end)
}

/**
 * The shape every server variant of the fan-out bench implements, so that
 * `fanout-server.ts` measures them all the same way: one `node:http` server,
 * one topic, the same frames, the same heartbeat interval.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { PatchOp } from '../../src/patch-op.js'
import type { Broker } from '../../src/broker/broker.ts'

/** A server implementation under test. */
export interface Variant {
  /** Answers one request by opening an SSE stream. */
  handle(req: IncomingMessage, res: ServerResponse): void
  /** Sends the ops to every open stream, as one `patch` frame. */
  broadcast(ops: readonly PatchOp[]): void
  /** @returns how many streams are open */
  streams(): number
}

/** What the server process tells a variant. */
export interface VariantOptions {
  /** heartbeat (keep-alive comment) interval, ms */
  heartbeatMs: number
  /** the topic streams subscribe to */
  topic: string
  /** a broker to use instead of the in-process default (patchwire behind Redis) */
  broker?: Broker
}

/** The variants, in the order they run within a round. */
export const VARIANT_NAMES = ['patchwire', 'bare', 'better-sse', 'probe'] as const

/** A variant's name. */
export type VariantName = (typeof VARIANT_NAMES)[number]

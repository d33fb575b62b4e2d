/**
 * IPC messages between the fan-out bench's processes: the orchestrator
 * (`fanout.bench.ts`), the server under test (`fanout-server.ts`), the load
 * clients (`load-client.ts`) and, with `--processes K`, the Redis publisher
 * (`fanout-publisher.ts`).
 *
 * Every child is spawned with `serialization: 'advanced'`, so `bigint`
 * timestamps cross the pipe as they are. All timestamps are
 * `process.hrtime.bigint()` readings: on Linux that is `CLOCK_MONOTONIC`, one
 * clock shared by every process of the machine, so a server's publish time
 * and a client's arrival time can be subtracted directly.
 *
 * Not part of the library; not run by `npm test`.
 */
import type { PatchOp } from '../src/patch-op.js'

/** The byte that marks a broadcast frame: it appears exactly once in each one and never in headers, heartbeats, chunk sizes or `retry:`/`ready` frames. */
export const MARKER = 0x7e

/** The topic every stream subscribes to. */
export const TOPIC = 'bench'

/** The request path (and query) every load client sends. */
export const STREAM_PATH = `/events?topic=${TOPIC}`

/**
 * The ops of broadcast `seq`: a small dashboard-like update (about 120 bytes
 * on the wire) carrying the marker byte once.
 * @param seq - 1-based broadcast number
 * @returns the ops every variant sends for that broadcast
 */
export function benchOps(seq: number): PatchOp[] {
  return [['replace', '/fanout', { seq, label: '~ fan-out bench', load: [0.42, 0.37, 0.51], ok: true }]]
}

/** Orchestrator → server. */
export type ServerCommand =
  | { type: 'memory' }
  | { type: 'broadcast'; seq: number }
  | { type: 'cpu' }
  | { type: 'streams' }

/** A broadcast as the server saw it: publish time and the CPU its fan-out took. */
export interface BroadcastReport {
  type: 'broadcast'
  seq: number
  /** hrtime just before the publish call (or, behind Redis, when the payload arrived) */
  t0: bigint
  /** user + system CPU from before the publish until the `setImmediate` after it, µs */
  cpuUs: number
  /** wall time of the same window, µs */
  wallUs: number
}

/** Server → orchestrator. */
export type ServerReport =
  /** every port feeds the same HTTP server */
  | { type: 'listening'; ports: number[] }
  | { type: 'memory'; rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number }
  | BroadcastReport
  | { type: 'cpu'; cpuUs: number; t: bigint }
  | { type: 'streams'; count: number }
  | { type: 'error'; message: string }

/** One server a load client connects to. */
export interface ClientTarget {
  port: number
  count: number
}

/** Orchestrator → load client. */
export type ClientCommand =
  | {
      type: 'start'
      targets: ClientTarget[]
      /** source addresses to spread the streams over; empty lets the kernel pick 127.0.0.1 */
      localAddresses: string[]
      /** connections opened but not yet answered, at most */
      concurrency: number
    }
  | { type: 'watch-heartbeats'; on: boolean }

/** Load client → orchestrator. */
export type ClientReport =
  | { type: 'progress'; established: number }
  | { type: 'connected'; established: number; ms: number }
  | { type: 'delivered'; seq: number; first: bigint; last: bigint }
  | { type: 'heartbeat'; t: bigint }
  /** streams closed by the server so far */
  | { type: 'lost'; count: number }
  | { type: 'error'; message: string }

/** Orchestrator → Redis publisher. */
export type PublisherCommand = { type: 'broadcast'; seq: number }

/** Redis publisher → orchestrator. */
export type PublisherReport =
  | { type: 'ready' }
  | { type: 'published'; seq: number; t0: bigint }
  | { type: 'error'; message: string }

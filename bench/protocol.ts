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

/** The topic every stream subscribes to, unless each has its own ({@link streamTopic}). */
export const TOPIC = 'bench'

/**
 * The topic of stream `index` when every stream has its own (the
 * many-topics bench).
 * @param index - the stream's index over the whole run, from 0
 * @returns the topic's name
 */
export function streamTopic(index: number): string {
  return `t${index}`
}

/**
 * @param topic - the stream's topic
 * @returns the request target a load client sends
 */
export function streamPath(topic: string): string {
  return `/events?topic=${topic}`
}

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
  /** one publish on {@link TOPIC} */
  | { type: 'broadcast'; seq: number }
  /** `count` publishes on {@link TOPIC} in one event-loop turn, seqs `seq` … `seq + count - 1`; reported as one broadcast */
  | { type: 'burst'; seq: number; count: number }
  /** one publish on each of `topics` topics ({@link streamTopic} 0 …), all in one turn, or one per turn when `spread`; reported as one broadcast */
  | { type: 'topics'; seq: number; topics: number; spread: boolean }
  /**
   * Publishes on {@link TOPIC} at `rate` per second from seq `firstSeq`, the
   * k-th at its scheduled time (all those due in one timer callback), for
   * `durationMs` (0: until `stop-rate`); reported as `rate`.
   */
  | { type: 'rate'; firstSeq: number; rate: number; durationMs: number }
  | { type: 'stop-rate' }
  /** destroys every stream's socket at once (a server-side cut) */
  | { type: 'drop' }
  | { type: 'position' }
  /** samples `process.memoryUsage()` every 20 ms while on; off reports the peaks */
  | { type: 'watch-memory'; on: boolean }
  | { type: 'cpu' }
  | { type: 'streams' }
  /** two GCs, then `v8.writeHeapSnapshot(path)` */
  | { type: 'heap-snapshot'; path: string }

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

/** What a `rate` phase published. Publish k (from 0) was due at `startT + k × periodNs`. */
export interface RateReport {
  type: 'rate'
  firstSeq: number
  count: number
  startT: bigint
  periodNs: number
  /** how late the publish calls ran after their due time, ms: the largest, and the 99th percentile */
  lateMaxMs: number
  lateP99Ms: number
  /** server CPU from the phase's start until its last publish call, µs */
  cpuUs: number
}

/** Server → orchestrator. */
export type ServerReport =
  /** every port feeds the same HTTP server */
  | { type: 'listening'; ports: number[] }
  | { type: 'memory'; rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number }
  | { type: 'memory-peak'; rss: number; heapUsed: number; external: number; samples: number }
  | BroadcastReport
  | RateReport
  /** `seq`: the last seq published before the cut */
  | { type: 'dropped'; t: bigint; sockets: number; seq: number }
  | { type: 'position'; id: string }
  | { type: 'cpu'; cpuUs: number; t: bigint }
  | { type: 'streams'; count: number }
  | { type: 'heap-snapshot'; path: string }
  | { type: 'error'; message: string }

/** One server a load client connects to. */
export interface ClientTarget {
  port: number
  count: number
  /** where these streams reconnect after a drop (another process behind the same Redis); default `port` */
  reconnectPort?: number
}

/**
 * How a load client's streams resume after a drop: stream `i`, having
 * counted `c` broadcasts, sends `Last-Event-ID: <epoch>-<base + c>` (the
 * bench publishes nothing else on its broker, so ids are consecutive).
 */
export interface Resume {
  epoch: string
  base: number
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
      /** every stream on its own topic ({@link streamTopic} of `firstIndex + i`), instead of {@link TOPIC} */
      topicPerStream?: boolean
      /** the index of this client's first stream over the whole run */
      firstIndex?: number
    }
  | { type: 'watch-heartbeats'; on: boolean }
  /**
   * From now on a closed stream reconnects (at most `concurrency` unanswered),
   * with `Last-Event-ID` when `resume` is given; `drop: true` closes every
   * stream first (a client-side cut). Each stream counts as back on its new
   * status line, and as caught up once it has counted `target` broadcasts;
   * the client reports `storm` when all are both.
   */
  | { type: 'storm'; drop: boolean; resume?: Resume; target: number; concurrency: number }
  /** the storm's target, when it is known only after the drop (a server-side cut) */
  | { type: 'storm-target'; target: number }
  /** asks for the smallest and largest broadcast count over the streams */
  | { type: 'counts' }

/** Load client → orchestrator. */
export type ClientReport =
  | { type: 'progress'; established: number }
  | { type: 'connected'; established: number; ms: number }
  | { type: 'delivered'; seq: number; first: bigint; last: bigint }
  | { type: 'heartbeat'; t: bigint }
  /** streams closed by the server so far */
  | { type: 'lost'; count: number }
  /** a storm: when its streams were all back, all caught up; reconnects made, and responses that were not 200 */
  | { type: 'storm'; start: bigint; back: bigint; caughtUp: bigint; reconnects: number; refused: number }
  | { type: 'counts'; min: number; max: number }
  /** during a storm: streams back and caught up so far */
  | { type: 'storm-progress'; back: number; caughtUp: number; inFlight: number; queued: number; connecting: number }
  | { type: 'error'; message: string }

/** Orchestrator → Redis publisher: a broadcast, or a rate phase and the position, as a server takes them. */
export type PublisherCommand =
  | { type: 'broadcast'; seq: number }
  | Extract<ServerCommand, { type: 'rate' | 'stop-rate' | 'position' }>

/** Redis publisher → orchestrator. */
export type PublisherReport =
  | { type: 'ready' }
  | { type: 'published'; seq: number; t0: bigint }
  | RateReport
  | { type: 'position'; id: string }
  | { type: 'error'; message: string }

/** Orchestrator → hostile-bench server (`hostile-server.ts`). */
export type HostileCommand =
  | { type: 'streams' }
  /**
   * Publishes frames of about `frameBytes` on the wire, one per event-loop
   * turn, until `expect` streams are cut; after the frames that fill
   * `fraction` of the cut-off (counting 128 bytes per queued write), two GCs
   * and a memory reading.
   */
  | { type: 'flood'; frameBytes: number; expect: number; fraction: number; maxFrames: number }
  /**
   * Publishes frames of about `frameBytes`, one per turn, until one stalled
   * socket has a backlog the kernel did not take, two more, then nothing:
   * how long until the stall check cuts `expect` streams.
   */
  | { type: 'quiet'; frameBytes: number; expect: number; timeoutMs: number }

/** What a flood or a quiet stall did to the server. Times in ms; memory in bytes, summed (divide by streams). */
export interface HostileReport {
  type: 'flood' | 'quiet'
  /** bytes of one frame on the wire */
  frameLength: number
  frames: number
  /** streams cut (`stats().dropped`) */
  cut: number
  /** from the first publish to the end of the turn that cut the first stream */
  toFirstCutMs: number
  /** first cut → the turn in which the last was cut */
  cuttingMs: number
  /** first cut → the last stream's socket emitted `close` */
  closedMs: number
  /** the longest gap between two turns of the publishing loop (the turn that cut, and anything it deferred) */
  longestTurnMs: number
  /** the longest of those gaps from the turn that cut the first stream to the one that cut the last */
  longestCuttingTurnMs: number
  /** `monitorEventLoopDelay` (10 ms resolution) over the whole phase (the flood's own turns and GCs included): the largest delay */
  loopDelayMaxMs: number
  /** the same from the first cut until every cut socket closed: what cutting blocks */
  cuttingDelayMaxMs: number
  /** after two GCs, at `fraction` of the cut-off, minus the reading before the phase */
  retained?: { heapUsed: number; external: number; rss: number; frames: number }
  /** the largest readings during the phase (no GC), minus the reading before it */
  peak: { heapUsed: number; external: number; rss: number }
  /** summed `writableLength` of the stalled sockets at the retained reading */
  backlog?: number
  /** bytes the kernel took of the first stalled socket's stream at the retained reading (sent minus `writableLength`) */
  kernelPerStream?: number
}

/** Hostile-bench server → orchestrator. */
export type HostileServerReport =
  | { type: 'listening'; port: number }
  | { type: 'streams'; count: number }
  | HostileReport
  | { type: 'error'; message: string }

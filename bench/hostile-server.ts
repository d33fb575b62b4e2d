/**
 * The server process of the hostile-clients bench (`hostile.bench.ts`): one
 * patchwire handler over `node:http` on 127.0.0.1, its streams stalled by
 * `stalled-readers.py`, driven over IPC. Not meant to be run by hand; the
 * bench spawns it as
 *
 *   node --expose-gc [--max-old-space-size=M] --import tsx bench/hostile-server.ts [--heartbeat-ms H] [--max-buffered-bytes B]
 *
 * The broker keeps no history (`history: 0`), so that memory read here is
 * what the stalled streams hold, not what resume keeps.
 *
 * - flood: one publish per event-loop turn (`setImmediate`), so that every
 *   frame is its own write to every stream, the worst case for the runtime's
 *   write queue; until every stalled stream is cut. Once the first stalled
 *   socket's backlog fills `fraction` of `maxBufferedBytes` as the cut-off
 *   counts it (`writableLength` plus 128 per queued write), two GCs and
 *   `process.memoryUsage()`: what a stalled stream retains just before its
 *   cut.
 * - quiet: frames until the first stalled socket has a backlog the kernel
 *   did not take, two more, then nothing: the stall check (every heartbeat)
 *   must still cut the stalled streams.
 * - Timing: `handler.stats().dropped` after each turn for the cuts; the
 *   sockets' `close` events for when they are really gone;
 *   `monitorEventLoopDelay` and the gap between turns for how long the
 *   process froze.
 */
import http from 'node:http'
import type net from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { createBroker, createHandler, position, publish } from '../src/index.js'
import type { PatchOp } from '../src/patch-op.js'
import { reportToOrchestrator } from './peer.js'
import type { HostileCommand, HostileReport, HostileServerReport } from './protocol.js'

const argv = process.argv.slice(2)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
const heartbeatMs = Number(option('--heartbeat-ms') ?? 60_000)
const maxBufferedBytes = Number(option('--max-buffered-bytes') ?? 1024 * 1024)
const TOPIC = 'stalled'
const WRITE_ENTRY_BYTES = 128

const send = reportToOrchestrator<HostileServerReport>()
if (typeof gc !== 'function') throw new Error('run the server with --expose-gc')
const broker = createBroker({ history: 0 })
const handler = createHandler({ broker, heartbeatMs, maxBufferedBytes })
const sockets = new Set<net.Socket>()
let closed = 0
let onClosed: (() => void) | undefined
const server = http.createServer((req, res) => handler(req, res))
server.on('connection', (socket: net.Socket) => {
  sockets.add(socket)
  socket.once('close', () => {
    sockets.delete(socket)
    closed++
    onClosed?.()
  })
})
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  send({ type: 'listening', port: address.port })
})

process.on('message', (command: HostileCommand) => {
  switch (command.type) {
    case 'streams':
      send({ type: 'streams', count: handler.stats().connections })
      break
    case 'flood':
      void flood(command.frameBytes, command.expect, command.fraction, command.maxFrames).then(send)
      break
    case 'quiet':
      void quiet(command.frameBytes, command.expect, command.timeoutMs).then(send)
      break
  }
})

/** Ops whose frame is about `frameBytes` on the wire (`id:`, `event:`, `data:` lines included). */
async function opsFor(frameBytes: number): Promise<{ ops: PatchOp[]; frameLength: number }> {
  const id = await position(broker, TOPIC)
  const overhead = `id: ${id}\nevent: patch\ndata: \n\n`.length + 1
  const bare = JSON.stringify([['replace', '/a', '']]).length
  const ops: PatchOp[] = frameBytes - overhead <= 20 ? [['replace', '/a', 1]] : [['replace', '/a', 'x'.repeat(Math.max(0, frameBytes - overhead - bare))]]
  return { ops, frameLength: overhead + JSON.stringify(ops).length }
}

async function flood(frameBytes: number, expect: number, fraction: number, maxFrames: number): Promise<HostileReport> {
  const { ops, frameLength } = await opsFor(frameBytes)
  const sample = sockets.values().next().value as net.Socket
  const phase = await Phase.start()
  let retained: HostileReport['retained']
  let backlog: number | undefined
  let kernel: number | undefined
  let frames = 0
  const dropped0 = handler.stats().dropped
  while (handler.stats().dropped - dropped0 < expect && frames < maxFrames) {
    void publish(broker, TOPIC, ops)
    frames++
    await phase.turn(() => handler.stats().dropped - dropped0)
    if (retained === undefined && handler.stats().dropped === dropped0 && counted(sample) >= fraction * maxBufferedBytes) {
      phase.pause()
      const m = await collected()
      retained = { heapUsed: m.heapUsed - phase.before.heapUsed, external: m.external - phase.before.external, rss: m.rss - phase.before.rss, frames }
      backlog = 0
      for (const socket of sockets) backlog += socket.writableLength
      kernel = sample.bytesWritten - sample.writableLength
      await phase.resume()
    }
  }
  return { type: 'flood', frameLength, frames, ...(await phase.end(handler.stats().dropped - dropped0, expect)), ...(retained === undefined ? {} : { retained }), ...(backlog === undefined ? {} : { backlog }), ...(kernel === undefined ? {} : { kernelPerStream: kernel }) }
}

/** A socket's backlog as the cut-off counts it: bytes not yet taken by the kernel, plus 128 per write still queued. */
function counted(socket: net.Socket): number {
  const state = (socket as net.Socket & { _writableState: { buffered: unknown[]; bufferedIndex: number } })._writableState
  return socket.writableLength + WRITE_ENTRY_BYTES * (state.buffered.length - state.bufferedIndex)
}

async function quiet(frameBytes: number, expect: number, timeoutMs: number): Promise<HostileReport> {
  const { ops, frameLength } = await opsFor(frameBytes)
  const sample = sockets.values().next().value as net.Socket
  const phase = await Phase.start()
  const dropped0 = handler.stats().dropped
  let count = 0
  let extra = 2
  while (extra > 0 && count < 1000) {
    void publish(broker, TOPIC, ops)
    count++
    await phase.turn(() => handler.stats().dropped - dropped0)
    if (sample.writableLength > 0) extra--
  }
  phase.quietSince()
  const deadline = performance.now() + timeoutMs
  while (handler.stats().dropped - dropped0 < expect && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5))
    await phase.turn(() => handler.stats().dropped - dropped0)
  }
  return { type: 'quiet', frameLength, frames: count, ...(await phase.end(handler.stats().dropped - dropped0, expect)) }
}

/** Two GCs a turn apart, then a reading. */
async function collected(): Promise<NodeJS.MemoryUsage> {
  const collect = gc as () => void
  collect()
  await nextTurn()
  collect()
  return process.memoryUsage()
}

/** The timing and memory of one flood or quiet phase. */
class Phase {
  readonly before: NodeJS.MemoryUsage
  readonly #delay = monitorEventLoopDelay({ resolution: 10 })
  /** From the turn that cut the first stream on: what cutting itself blocks. */
  readonly #cutDelay = monitorEventLoopDelay({ resolution: 10 })
  #longestCutting = 0
  #start = performance.now()
  #previous = performance.now()
  #longest = 0
  #firstCut: number | undefined
  #lastCut: number | undefined
  #closedAtStart = closed
  #peak = { heapUsed: 0, external: 0, rss: 0 }
  #cutSoFar = 0
  #paused = false
  /** the histogram's maximum before a GC reading reset it, ns */
  #delayBefore = 0

  private constructor(before: NodeJS.MemoryUsage) {
    this.before = before
  }

  static async start(): Promise<Phase> {
    const phase = new Phase(await collected())
    phase.#delay.enable()
    phase.#start = performance.now()
    phase.#previous = phase.#start
    return phase
  }

  /** Times from here: what a quiet phase measures starts when publishing stops. */
  quietSince(): void {
    this.#start = performance.now()
  }

  /** Waits one turn and records it; `cutSoFar` counts the streams cut by then (read after the turn, which may have cut some). */
  async turn(cutSoFar: () => number): Promise<void> {
    await nextTurn()
    const now = performance.now()
    const cut = cutSoFar()
    const gap = now - this.#previous
    if (!this.#paused) this.#longest = Math.max(this.#longest, gap)
    this.#paused = false
    this.#previous = now
    if (cut > 0 && this.#firstCut === undefined) {
      this.#firstCut = now
      this.#cutDelay.enable()
    }
    // The turn that cut the first stream and every later one: the flood stops once all are cut.
    if (cut > 0) this.#longestCutting = Math.max(this.#longestCutting, gap)
    if (cut > this.#cutSoFar) this.#lastCut = now
    this.#cutSoFar = cut
    if (this.#firstCut === undefined) {
      const m = process.memoryUsage()
      this.#peak.heapUsed = Math.max(this.#peak.heapUsed, m.heapUsed)
      this.#peak.external = Math.max(this.#peak.external, m.external)
      this.#peak.rss = Math.max(this.#peak.rss, m.rss)
    }
  }

  /**
   * The GC reading is no freeze of the handler's making: kept out of the
   * turn gaps, and out of the loop-delay histogram, whose timer would record
   * the GC's block on its next firing (so the histogram's maximum so far is
   * kept, and it is reset once that firing is past).
   */
  pause(): void {
    this.#delayBefore = Math.max(this.#delayBefore, this.#delay.max)
  }

  async resume(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 25))
    this.#delay.reset()
    this.#paused = true
  }

  async end(cut: number, expect: number): Promise<Omit<HostileReport, 'type' | 'frameLength' | 'frames' | 'retained' | 'backlog' | 'kernelPerStream'>> {
    const lastCut = this.#lastCut ?? performance.now()
    // Every cut socket must also have closed.
    const target = this.#closedAtStart + Math.min(cut, expect)
    if (closed < target) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 60_000)
        onClosed = () => {
          if (closed < target) return
          clearTimeout(timer)
          resolve()
        }
      })
      onClosed = undefined
    }
    const closedAt = performance.now()
    this.#delay.disable()
    this.#cutDelay.disable()
    const first = this.#firstCut ?? lastCut
    return {
      cut,
      toFirstCutMs: first - this.#start,
      cuttingMs: lastCut - first,
      closedMs: closedAt - first,
      longestTurnMs: this.#longest,
      longestCuttingTurnMs: this.#longestCutting,
      loopDelayMaxMs: Math.max(this.#delayBefore, this.#delay.max) / 1e6,
      cuttingDelayMaxMs: this.#firstCut === undefined ? 0 : this.#cutDelay.max / 1e6,
      peak: { heapUsed: this.#peak.heapUsed - this.before.heapUsed, external: this.#peak.external - this.before.external, rss: this.#peak.rss - this.before.rss },
    }
  }
}

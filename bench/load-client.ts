/**
 * A load client of the fan-out benches: holds many idle SSE streams over raw
 * `node:net` sockets and reports when each broadcast reached its last stream;
 * in a reconnect storm, reconnects its streams and reports when they are all
 * back and caught up. Not meant to be run by hand; the benches spawn it as
 *
 *   node --import tsx bench/load-client.ts
 *
 * and send it the targets over IPC. One process holds at most 19 000 streams
 * (the file-descriptor cap here is 20 000).
 *
 * Method, kept cheap so that the client is never the bottleneck:
 * - Connecting: at most `concurrency` connections are in flight (connected
 *   but not yet answered). Each sends a bare `GET` and counts as established
 *   on its first bytes, which must be an `HTTP/1.1 200` status line. When
 *   the streams outnumber what one source address can hold in ephemeral
 *   ports, they are spread over `127.0.0.x` source addresses (`localAddress`).
 * - Reading: every socket reads into one shared buffer (`onread`), so a read
 *   allocates nothing but a view. Frames are not parsed: every broadcast
 *   frame carries the marker byte `~` exactly once and nothing else does, so
 *   counting that byte (`indexOf`, a `memchr`) counts broadcasts, whatever
 *   the framing (chunked or not) and however TCP splits the bytes.
 * - Arrival: when a stream's count passes `k`, broadcast `k` has reached one
 *   more stream; when it has reached all of them, `process.hrtime.bigint()`
 *   (CLOCK_MONOTONIC, shared with the server) is reported as its last
 *   arrival, with the first arrival alongside.
 * - Heartbeats: on request, the first stream also reports each comment line
 *   (`\n:`) it receives, which the orchestrator uses to align the idle-CPU
 *   window on heartbeat ticks.
 * - Storm: once armed, a stream that closes (cut by the server, or by this
 *   client on `drop`) reconnects at once, at most `concurrency` unanswered,
 *   with `Last-Event-ID: <epoch>-<base + its count>` when resuming. It is
 *   back on its new status line, and caught up once it has counted the
 *   storm's target (every broadcast published before the drop). A refusal
 *   (a status other than 200) is counted and retried.
 */
import net from 'node:net'
import { MARKER, streamPath, streamTopic, TOPIC } from './protocol.js'
import type { ClientCommand, ClientReport, ClientTarget, Resume } from './protocol.js'
import { reportToOrchestrator } from './peer.js'

const STATUS_OK = Buffer.from('HTTP/1.1 200')
const NEWLINE = 0x0a
const COLON = 0x3a

const send = reportToOrchestrator<ClientReport>()

/** One stream: where it connects, and its socket while it has one. */
interface Conn {
  readonly request: string
  readonly port: number
  readonly reconnectPort: number
  readonly localAddress: string | undefined
  socket: net.Socket | undefined
  isOpen: boolean
}

const readBuffer = Buffer.allocUnsafe(64 * 1024)
let conns: Conn[] = []
let counts = new Uint32Array(0)
/** reached[k]: streams that got broadcast k (index 0 unused) */
const reached: number[] = [0]
const firstArrival: bigint[] = [0n]
let total = 0
let established = 0
let watching = false
let lastByteOfFirst = 0
let failed = false
let lost = 0
let lostTimer: NodeJS.Timeout | undefined
let concurrency = 256
let inFlight = 0
const queue: number[] = []
let onEstablished: (() => void) | undefined
let storm: Storm | undefined

interface Storm {
  readonly start: bigint
  readonly resume: Resume | undefined
  target: number
  readonly back: Uint8Array
  readonly caught: Uint8Array
  backCount: number
  caughtCount: number
  lastBack: bigint
  lastCaught: bigint
  reconnects: number
  refused: number
  reported: boolean
  readonly progress: NodeJS.Timeout
}

process.on('message', (command: ClientCommand) => {
  switch (command.type) {
    case 'start':
      void start(command.targets, command.localAddresses, command.concurrency, command.topicPerStream === true, command.firstIndex ?? 0)
      break
    case 'watch-heartbeats':
      watching = command.on
      break
    case 'storm':
      startStorm(command.drop, command.resume, command.target, command.concurrency)
      break
    case 'storm-target':
      if (storm !== undefined) {
        storm.target = command.target
        for (let i = 0; i < total; i++) checkCaught(i)
      }
      break
    case 'counts': {
      let min = Infinity
      let max = 0
      for (const c of counts) {
        if (c < min) min = c
        if (c > max) max = c
      }
      send({ type: 'counts', min: total === 0 ? 0 : min, max })
      break
    }
  }
})

async function start(targets: ClientTarget[], localAddresses: string[], limit: number, topicPerStream: boolean, firstIndex: number): Promise<void> {
  total = targets.reduce((sum, t) => sum + t.count, 0)
  counts = new Uint32Array(total)
  concurrency = limit
  conns = []
  for (const target of targets) {
    for (let i = 0; i < target.count; i++) {
      const idx = conns.length
      const path = streamPath(topicPerStream ? streamTopic(firstIndex + idx) : TOPIC)
      conns.push({
        request: `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n`,
        port: target.port,
        reconnectPort: target.reconnectPort ?? target.port,
        localAddress: localAddresses.length === 0 ? undefined : localAddresses[idx % localAddresses.length],
        socket: undefined,
        isOpen: false,
      })
    }
  }
  const started = performance.now()
  const progress = setInterval(() => send({ type: 'progress', established }), 250)
  await new Promise<void>((resolve) => {
    onEstablished = () => {
      if (established === total) resolve()
    }
    for (let i = 0; i < total; i++) queue.push(i)
    pump()
  })
  onEstablished = undefined
  clearInterval(progress)
  send({ type: 'connected', established, ms: performance.now() - started })
}

/** Opens queued connections while fewer than `concurrency` are unanswered. */
function pump(): void {
  while (inFlight < concurrency && queue.length > 0) {
    inFlight++
    connect(queue.shift() as number)
  }
}

function connect(idx: number): void {
  const conn = conns[idx] as Conn
  const reconnecting = storm !== undefined
  let header = ''
  if (reconnecting && storm?.resume !== undefined) header = `Last-Event-ID: ${storm.resume.epoch}-${storm.resume.base + (counts[idx] ?? 0)}\r\n`
  conn.isOpen = false
  const socket = net.connect({
    port: reconnecting ? conn.reconnectPort : conn.port,
    host: '127.0.0.1',
    ...(conn.localAddress === undefined ? {} : { localAddress: conn.localAddress }),
    onread: {
      buffer: readBuffer,
      callback(nread: number, buf: Uint8Array): boolean {
        if (!conn.isOpen) {
          conn.isOpen = true
          inFlight--
          if (!STATUS_OK.equals(buf.subarray(0, STATUS_OK.length))) {
            if (storm === undefined) {
              fail(`stream ${idx}: expected an HTTP/1.1 200 response, got ${JSON.stringify(Buffer.from(buf.subarray(0, Math.min(nread, 80))).toString('latin1'))}`)
            } else {
              // Refused during a storm (503 while busy): try again.
              storm.refused++
              socket.destroy()
            }
            pump()
            return false
          }
          if (storm === undefined) {
            established++
            onEstablished?.()
          } else {
            backAgain(idx)
          }
          pump()
        }
        if (idx === 0 && watching) heartbeats(buf, nread)
        count(idx, buf, nread)
        return true
      },
    },
  })
  conn.socket = socket
  socket.setNoDelay(true)
  socket.on('connect', () => socket.write(`${conn.request}${header}\r\n`))
  socket.on('error', (error) => {
    if (storm === undefined) fail(`stream ${idx}: ${error.message}`)
  })
  socket.on('close', () => {
    if (conn.socket !== socket) return
    conn.socket = undefined
    if (!conn.isOpen) inFlight--
    if (storm !== undefined) {
      if (storm.back[idx] === 1) {
        storm.back[idx] = 0
        storm.backCount--
        if (storm.caught[idx] === 1) {
          storm.caught[idx] = 0
          storm.caughtCount--
        }
      }
      storm.reconnects++
      queue.push(idx)
      pump()
      return
    }
    lost++
    lostTimer ??= setTimeout(reportLost, 250)
  })
}

function startStorm(drop: boolean, resume: Resume | undefined, target: number, limit: number): void {
  concurrency = limit
  storm = {
    start: process.hrtime.bigint(),
    resume,
    target,
    back: new Uint8Array(total),
    caught: new Uint8Array(total),
    backCount: 0,
    caughtCount: 0,
    lastBack: 0n,
    lastCaught: 0n,
    reconnects: 0,
    refused: 0,
    reported: false,
    progress: setInterval(() => {
      if (storm !== undefined) send({ type: 'storm-progress', back: storm.backCount, caughtUp: storm.caughtCount, inFlight, queued: queue.length, connecting: connecting() })
    }, 250),
  }
  // The first progress report tells the orchestrator the storm is armed.
  send({ type: 'storm-progress', back: 0, caughtUp: 0, inFlight, queued: queue.length, connecting: connecting() })
  // An abortive close (RST): the client's ports are free at once, instead of
  // 15 000 of them sitting in TIME_WAIT, where Linux's port search for the
  // reconnects would make the client, not the server, set the pace.
  if (drop) for (const conn of conns) conn.socket?.resetAndDestroy()
}

/** Sockets still waiting for their TCP connection. */
function connecting(): number {
  let count = 0
  for (const conn of conns) if (conn.socket?.connecting === true) count++
  return count
}

function backAgain(idx: number): void {
  const s = storm as Storm
  s.back[idx] = 1
  s.backCount++
  s.lastBack = process.hrtime.bigint()
  checkCaught(idx)
}

function checkCaught(idx: number): void {
  const s = storm
  if (s === undefined || s.back[idx] !== 1 || s.caught[idx] === 1 || (counts[idx] ?? 0) < s.target) return
  s.caught[idx] = 1
  s.caughtCount++
  s.lastCaught = process.hrtime.bigint()
  if (s.caughtCount === total && s.backCount === total && !s.reported) {
    s.reported = true
    clearInterval(s.progress)
    send({ type: 'storm', start: s.start, back: s.lastBack, caughtUp: s.lastCaught, reconnects: s.reconnects, refused: s.refused })
  }
}

function count(idx: number, buf: Uint8Array, nread: number): void {
  // A view, so that indexOf stops at the bytes just read, not the shared buffer's stale tail.
  const view = nread === buf.length ? buf : buf.subarray(0, nread)
  let seen = 0
  for (let at = view.indexOf(MARKER); at !== -1; at = view.indexOf(MARKER, at + 1)) seen++
  if (seen === 0) return
  const before = counts[idx] ?? 0
  counts[idx] = before + seen
  for (let k = before + 1; k <= before + seen; k++) arrived(k)
  if (storm !== undefined) checkCaught(idx)
}

function arrived(k: number): void {
  const n = (reached[k] ?? 0) + 1
  reached[k] = n
  if (n === 1) firstArrival[k] = process.hrtime.bigint()
  if (n === total) send({ type: 'delivered', seq: k, first: firstArrival[k] ?? 0n, last: process.hrtime.bigint() })
}

function heartbeats(buf: Uint8Array, nread: number): void {
  let previous = lastByteOfFirst
  for (let i = 0; i < nread; i++) {
    const byte = buf[i] ?? 0
    if (byte === COLON && previous === NEWLINE) send({ type: 'heartbeat', t: process.hrtime.bigint() })
    previous = byte
  }
  lastByteOfFirst = previous
}

// Closes are batched: when the server goes away, thousands arrive at once.
function reportLost(): void {
  lostTimer = undefined
  send({ type: 'lost', count: lost })
}

function fail(message: string): void {
  if (failed) return
  failed = true
  process.send?.({ type: 'error', message } satisfies ClientReport, () => process.exit(1))
}

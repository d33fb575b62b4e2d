/**
 * A load client of the fan-out bench: holds many idle SSE streams over raw
 * `node:net` sockets and reports when each broadcast reached its last stream.
 * Not meant to be run by hand; `npm run bench` spawns it as
 *
 *   node --import tsx bench/load-client.ts
 *
 * and sends it the targets over IPC. One process holds at most 19 000 streams
 * (the file-descriptor cap here is 20 000).
 *
 * Method, kept cheap so that the client is never the bottleneck:
 * - Connecting: at most `concurrency` connections are in flight (connected
 *   but not yet answered). Each sends a bare `GET` and counts as established
 *   on its first bytes, which must be an `HTTP/1.1 200` status line. When
 *   the streams outnumber what one source address can hold in ephemeral
 *   ports, they are spread over `127.0.0.x` source addresses (`localAddress`).
 * - Reading: every socket reads into one shared buffer (`onread`), so a read
 *   allocates nothing. Frames are not parsed: every broadcast frame carries
 *   the marker byte `~` exactly once and nothing else does, so counting that
 *   byte counts broadcasts, whatever the framing (chunked or not) and however
 *   TCP splits the bytes.
 * - Arrival: when a stream's count passes `k`, broadcast `k` has reached one
 *   more stream; when it has reached all of them, `process.hrtime.bigint()`
 *   (CLOCK_MONOTONIC, shared with the server) is reported as its last
 *   arrival, with the first arrival alongside.
 * - Heartbeats: on request, the first stream also reports each comment line
 *   (`\n:`) it receives, which the orchestrator uses to align the idle-CPU
 *   window on heartbeat ticks.
 */
import net from 'node:net'
import { MARKER, STREAM_PATH } from './protocol.js'
import type { ClientCommand, ClientReport, ClientTarget } from './protocol.js'
import { reportToOrchestrator } from './peer.js'

const REQUEST = `GET ${STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`
const STATUS_OK = Buffer.from('HTTP/1.1 200')
const NEWLINE = 0x0a
const COLON = 0x3a

const send = reportToOrchestrator<ClientReport>()

const readBuffer = Buffer.allocUnsafe(64 * 1024)
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

process.on('message', (command: ClientCommand) => {
  if (command.type === 'start') void start(command.targets, command.localAddresses, command.concurrency)
  else watching = command.on
})

async function start(targets: ClientTarget[], localAddresses: string[], concurrency: number): Promise<void> {
  total = targets.reduce((sum, t) => sum + t.count, 0)
  counts = new Uint32Array(total)
  const plan: number[] = []
  for (const target of targets) for (let i = 0; i < target.count; i++) plan.push(target.port)

  const started = performance.now()
  const progress = setInterval(() => send({ type: 'progress', established }), 250)
  let next = 0
  let inFlight = 0
  await new Promise<void>((resolve) => {
    const open = (): void => {
      while (inFlight < concurrency && next < total) {
        const idx = next++
        inFlight++
        const port = plan[idx] ?? 0
        const localAddress = localAddresses.length === 0 ? undefined : localAddresses[idx % localAddresses.length]
        connect(idx, port, localAddress, () => {
          inFlight--
          if (established === total) resolve()
          else open()
        })
      }
    }
    open()
  })
  clearInterval(progress)
  send({ type: 'connected', established, ms: performance.now() - started })
}

function connect(idx: number, port: number, localAddress: string | undefined, onEstablished: () => void): void {
  let isOpen = false
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    ...(localAddress === undefined ? {} : { localAddress }),
    onread: {
      buffer: readBuffer,
      callback(nread: number, buf: Uint8Array): boolean {
        if (!isOpen) {
          isOpen = true
          if (!STATUS_OK.equals(buf.subarray(0, STATUS_OK.length))) {
            fail(`stream ${idx}: expected an HTTP/1.1 200 response, got ${JSON.stringify(Buffer.from(buf.subarray(0, Math.min(nread, 80))).toString('latin1'))}`)
          }
          established++
          onEstablished()
        }
        if (idx === 0 && watching) heartbeats(buf, nread)
        count(idx, buf, nread)
        return true
      },
    },
  })
  socket.setNoDelay(true)
  socket.on('connect', () => socket.write(REQUEST))
  socket.on('error', (error) => fail(`stream ${idx}: ${error.message}`))
  socket.on('close', () => {
    lost++
    lostTimer ??= setTimeout(reportLost, 250)
  })
}

function count(idx: number, buf: Uint8Array, nread: number): void {
  // A plain loop over the bytes just read: `indexOf` would run on into the
  // shared buffer's stale tail, and a `subarray` would allocate per read.
  let seen = 0
  for (let i = 0; i < nread; i++) if (buf[i] === MARKER) seen++
  if (seen === 0) return
  const before = counts[idx] ?? 0
  counts[idx] = before + seen
  for (let k = before + 1; k <= before + seen; k++) arrived(k)
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

/**
 * What access that ends (issue 22) costs: heap per open stream with
 * `identify` and `authorize → { until }` against the same handler without
 * them (the baseline, measured in the same run and process), and how long
 * ending N streams takes, by one `revoke({ identity })` per stream's
 * identity, by one `revoke({ topic })`, and by expiry (all at one `until`).
 *
 * Run: npm run bench:access [-- --n 2000]
 *
 * Method: one process; a `createHandler` on a real `node:http` server and
 * N raw TCP clients in the same process (their cost is the same in every
 * variant, so it cancels out of the difference). For heap: two GCs
 * (`--expose-gc`), `heapUsed` before the N streams connect and after every
 * one got its `ready` frame; (after − before) / N, per variant. For time:
 * from the call to the last client seeing its connection close. Warm-up: one
 * round of each variant first, discarded; expiry is timed from the `until`; 1.5 s between rounds, so that the
 * sockets an ended round holds for its grace are gone. Numbers go to stdout.
 */
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { createBroker, createHandler, revoke, type HandlerOptions, type NodeRequest } from '../src/index.ts'

const { values } = parseArgs({ options: { n: { type: 'string', default: '2000' } } })
const N = Number(values.n)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc (npm run bench:access does)')

interface Round {
  heapPerStream: number
  endMs: number
}

/** Opens N streams on a fresh handler, measures their heap, then ends them with `end` and times it. */
async function round(options: HandlerOptions, end: (handler: ReturnType<typeof createHandler>, broker: ReturnType<typeof createBroker>) => Promise<unknown> | unknown, endsAt?: () => number): Promise<Round> {
  const broker = createBroker()
  const handler = createHandler({ broker, maxStreamsPerIdentity: N, ...options })
  const server = http.createServer((req, res) => handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  gc?.()
  gc?.()
  const before = process.memoryUsage().heapUsed
  const sockets: net.Socket[] = []
  let ready = 0
  let closed = 0
  await new Promise<void>((resolve, reject) => {
    for (let i = 0; i < N; i++) {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET /?topic=doc&user=u${i % 100} HTTP/1.1\r\nHost: x\r\n\r\n`))
      let seen = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => {
        if (seen === 'ready') return
        seen += chunk
        if (seen.includes('event: ready')) {
          seen = 'ready'
          if (++ready === N) resolve()
        }
      })
      socket.on('close', () => {
        closed++
        // A client that never got its stream (a connect that failed on a loaded machine) would leave the round waiting for ever.
        if (seen !== 'ready') reject(new Error(`a client closed before its stream was ready: ${JSON.stringify(seen.slice(0, 200))}`))
      })
      socket.on('error', () => {})
      sockets.push(socket)
    }
  })
  gc?.()
  gc?.()
  const heapPerStream = (process.memoryUsage().heapUsed - before) / N
  // Expiry starts at the streams' until, not at a call.
  const started = performance.now() + (endsAt === undefined ? 0 : Math.max(0, endsAt() - Date.now()))
  await end(handler, broker)
  while (closed < N) await new Promise((resolve) => setImmediate(resolve))
  const endMs = performance.now() - started
  await handler.close({ reconnectSpreadMs: 0 })
  for (const socket of sockets) socket.destroy()
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  // An ended stream's socket is held for a one-second grace (see src/core/ending.ts): let it go before the next round measures.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  return { heapPerStream, endMs }
}

const userOf = (req: NodeRequest): string | undefined => new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined
const variants: [string, () => Promise<Round>][] = [
  ['baseline: no identify, no until; ended by handler.close()', () => round({}, (handler) => handler.close({ reconnectSpreadMs: 0 }))],
  ['identify + until; ended by revoke({ topic })', () => round({ identify: userOf, authorize: () => ({ until: Date.now() + 3_600_000 }) }, (_h, broker) => revoke(broker, { topic: 'doc' }))],
  ['identify + until; ended by 100 × revoke({ identity })', () => round({ identify: userOf, authorize: () => ({ until: Date.now() + 3_600_000 }) }, (_h, broker) => Promise.all(Array.from({ length: 100 }, (_, i) => revoke(broker, { identity: `u${i}` }))))],
]
let expireAt = 0
variants.push(['identify + until; ended by expiry (one until for all)', () => round({ identify: userOf, authorize: () => ({ until: expireAt }) }, () => undefined, () => expireAt)])

const results: [string, Round][] = []
for (const warm of [true, false]) {
  for (const [name, run] of variants) {
    expireAt = Date.now() + 60_000
    if (name.includes('expiry')) {
      // Long enough for N streams to open, short enough to wait for.
      expireAt = Date.now() + Math.max(10_000, N * 10)
    }
    process.stderr.write(`${warm ? 'warm-up' : 'measure'}: ${name}\n`)
    const result = await run()
    if (!warm) results.push([name, result])
  }
}
const base = (results[0] as [string, Round])[1]
console.log(`N = ${N}, Node ${process.version}`)
console.log('| variant | heap per stream | × baseline | N streams ended in |')
console.log('| --- | --- | --- | --- |')
for (const [name, { heapPerStream, endMs }] of results) {
  console.log(`| ${name} | ${Math.round(heapPerStream)} B | ${(heapPerStream / base.heapPerStream).toFixed(2)} | ${endMs.toFixed(0)} ms |`)
}

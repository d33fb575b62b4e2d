/**
 * createFetchHandler inside real runtimes, each a child process running a
 * recipe of examples/runtimes/ as it is, on the built package (`patchwire`
 * resolves to dist/, as it does for a user): Bun with `Bun.serve`, Deno with
 * `Deno.serve`, Node through a Fetch server (`@hono/node-server`), and the
 * Hono app on Node and on Bun. Beside the recipe, each process serves a
 * control endpoint (test/fixtures/runtimes/control.ts) through which the
 * test publishes, reads `stats()` and closes the handler, inside the
 * runtime. The same scenarios run in each.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { formatPatch, type HandlerStats, type PatchOp } from '../src/index.ts'
import { until } from './helpers/server.ts'
import { SseBody } from './fixtures/runtimes/sse-body.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = path.join(ROOT, 'node_modules', '.bin')
const FIXTURES = path.join('test', 'fixtures', 'runtimes')
/** Bounds a runtime's start (Deno compiles the TypeScript of its first run) and every test. */
const START_MS = 30_000
const TIMEOUT = { timeout: 30_000 }
/** The stall scenario publishes at most this much before it gives up on a cut. */
const STALL_LIMIT_BYTES = 64 * 1024 * 1024

interface Runtime {
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  /** A path the handler answers 404 to (where the recipe routes other paths to the app, none). */
  readonly notFound?: string
  /** The runtime's idle timeout, in seconds, that the recipe lifts for streams. */
  readonly idleTimeoutS?: number
}

const RUNTIMES: readonly Runtime[] = [
  { name: 'Bun: Bun.serve (examples/runtimes/bun.ts)', command: path.join(BIN, 'bun'), args: [path.join(FIXTURES, 'bun-server.ts')], idleTimeoutS: 10 },
  {
    name: 'Deno: Deno.serve (examples/runtimes/deno.ts)',
    command: path.join(BIN, 'deno'),
    args: ['run', '--no-lock', '--allow-net', '--allow-env', path.join(FIXTURES, 'deno-server.ts')],
  },
  { name: 'Node: @hono/node-server, no framework', command: process.execPath, args: ['--import', 'tsx', path.join(FIXTURES, 'node-server.ts')], notFound: '/elsewhere' },
  { name: 'Hono on Node (examples/runtimes/hono.ts)', command: process.execPath, args: ['--import', 'tsx', path.join(FIXTURES, 'hono-node-server.ts')], notFound: '/elsewhere' },
  { name: 'Hono on Bun (examples/runtimes/hono.ts)', command: path.join(BIN, 'bun'), args: [path.join(FIXTURES, 'hono-bun-server.ts')], notFound: '/elsewhere' },
]

/** One runtime process: the recipe's port and the control port. */
class Running {
  readonly child: ChildProcess
  readonly origin: string
  readonly control: string
  readonly #output: { stderr: string }

  constructor(child: ChildProcess, port: number, control: number, output: { stderr: string }) {
    this.child = child
    this.origin = `http://127.0.0.1:${port}`
    this.control = `http://127.0.0.1:${control}`
    this.#output = output
  }

  get port(): number {
    return Number(new URL(this.origin).port)
  }

  get stderr(): string {
    return this.#output.stderr
  }

  async stats(): Promise<HandlerStats> {
    return (await (await fetch(`${this.control}/stats`)).json()) as HandlerStats
  }

  async publish(topic: string, ops: PatchOp[]): Promise<string> {
    const response = await fetch(`${this.control}/publish`, { method: 'POST', body: JSON.stringify({ topic, ops }) })
    return ((await response.json()) as { id: string }).id
  }

  /** `count` frames of a `bytes`-character string, published in one turn of the runtime's event loop. */
  async publishLarge(topic: string, bytes: number, count: number): Promise<string[]> {
    const response = await fetch(`${this.control}/publish-large?topic=${encodeURIComponent(topic)}&bytes=${bytes}&count=${count}`, { method: 'POST' })
    return ((await response.json()) as { ids: string[] }).ids
  }

  async close(): Promise<void> {
    assert.equal(await (await fetch(`${this.control}/close`, { method: 'POST' })).text(), 'closed', 'the runtime\'s control server closed the handler')
  }

  async waitForConnections(count: number, what: string): Promise<void> {
    let last = -1
    const deadline = Date.now() + 5000
    while ((last = (await this.stats()).connections) !== count) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${last} connections, not ${count}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    killGroup(this.child)
    await exited
  }
}

/** Starts a runtime on free ports and waits for the line its fixture prints once both servers listen. */
async function startRuntime(runtime: Runtime): Promise<Running> {
  const child = spawn(runtime.command, runtime.args, {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', DENO_NO_UPDATE_CHECK: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A group of its own, killed whole: where npm's bin entry is a wrapper
    // script (the `deno` and `bun` packages fall back to one), the runtime is its child.
    detached: true,
  })
  const output = { stdout: '', stderr: '' }
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk))
  try {
    await until(() => output.stdout.includes('{"listening"') || child.exitCode !== null || child.signalCode !== null, START_MS, `${runtime.name} to listen`)
  } catch (error) {
    killGroup(child)
    throw new Error(`${runtime.name} did not start: ${output.stderr}`, { cause: error })
  }
  const line = output.stdout.split('\n').find((text) => text.startsWith('{"listening"'))
  if (line === undefined) throw new Error(`${runtime.name} exited (${child.exitCode}) before it listened: ${output.stderr}`)
  const { listening } = JSON.parse(line) as { listening: { port: number; control: number } }
  return new Running(child, listening.port, listening.control, output)
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-(child.pid as number), 'SIGKILL')
  } catch {
    // The group is gone already.
  }
}

/** What a fresh stream starts with: `retry:` (spread around 3000 ms), then `ready`. */
function opening(text: string): { retry: string; readyId: string } {
  const match = /^retry: (\d+)\n\nid: ([^\n]+)\nevent: ready\ndata: \2\n\n/.exec(text)
  assert.ok(match, `a stream opening: ${JSON.stringify(text.slice(0, 120))}`)
  const retry = Number(match[1])
  assert.ok(retry >= 2250 && retry <= 3750, `retry ${retry} within ±25 % of 3000`)
  return { retry: `retry: ${match[1]}\n\n`, readyId: match[2] as string }
}

for (const runtime of RUNTIMES) {
  describe(runtime.name, { timeout: 120_000 }, () => {
    let rt: Running
    const bodies: SseBody[] = []
    before(async () => {
      rt = await startRuntime(runtime)
    })
    after(async () => {
      for (const body of bodies) await body.cancel()
      await rt?.stop()
    })

    async function open(query: string, headers: Record<string, string> = {}): Promise<SseBody> {
      const response = await fetch(`${rt.origin}/events?${query}`, { headers })
      if (response.status !== 200) assert.fail(`the stream did not open: ${response.status} ${await response.text()}`)
      const body = new SseBody(response)
      bodies.push(body)
      await body.waitForReady()
      return body
    }

    it('opens a stream with the stream headers, then sends each patch byte for byte as formatPatch', TIMEOUT, async () => {
      // A client that accepts compressed bodies still gets the stream as it
      // is: a compressor would hold frames back.
      const body = await open('topic=board:open', { 'Accept-Encoding': 'gzip, br' })
      const { headers } = body.response
      assert.equal(body.response.status, 200, `${runtime.name}: the stream answers 200`)
      assert.equal(headers.get('content-type'), 'text/event-stream', `${runtime.name}: content-type is text/event-stream`)
      assert.equal(headers.get('cache-control'), 'no-cache, no-transform', `${runtime.name}: cache-control forbids caching and transforms`)
      assert.equal(headers.get('x-accel-buffering'), 'no', `${runtime.name}: x-accel-buffering turns off proxy buffering`)
      assert.equal(headers.get('content-encoding'), null, `${runtime.name}: the stream is not compressed for a client that accepts gzip`)
      const ops: PatchOp[] = [['replace', '/title', 'Größe \u2028 ✓']]
      const first = await rt.publish('board:open', ops)
      const second = await rt.publish('board:open', [['remove', '/title']])
      await body.waitFor(() => body.named('patch').length === 2, 'both patches')
      const { retry, readyId } = opening(body.text)
      assert.equal(body.text, retry + `id: ${readyId}\nevent: ready\ndata: ${readyId}\n\n` + formatPatch(ops, first) + formatPatch([['remove', '/title']], second), `${runtime.name}: retry, ready, then both patches byte for byte as formatPatch`)
      await body.cancel()
      await rt.waitForConnections(0, 'the stream to close')
    })

    it('carries several topics on one stream (?topic=a&topic=b), each frame naming its topic', TIMEOUT, async () => {
      const body = await open('topic=board:a&topic=board:b')
      const a = await rt.publish('board:a', [['replace', '/n', 1]])
      const b = await rt.publish('board:b', [['replace', '/n', 2]])
      await body.waitFor(() => body.named('patch').length === 2, 'a patch of each topic')
      const { retry, readyId } = opening(body.text)
      assert.equal(body.text, `${retry}id: ${readyId}\nevent: ready\ndata: ${readyId}\n\nid: ${a}\nevent: patch\ndata: "board:a"\ndata: [["replace","/n",1]]\n\nid: ${b}\nevent: patch\ndata: "board:b"\ndata: [["replace","/n",2]]\n\n`, `${runtime.name}: retry, ready, then one patch per topic, each naming its topic`)
      await body.cancel()
      await rt.waitForConnections(0, 'the stream to close')
    })

    it('refuses with the status codes of createHandler, in plain text, opening nothing', TIMEOUT, async () => {
      const cases: [string, RequestInit, number][] = [
        ['/events', {}, 400],
        ['/events?topic=other:x', {}, 403],
        [`/events?topic=board:${'x'.repeat(300)}`, {}, 414],
        ['/events?topic=board:x', { method: 'POST', body: 'x' }, 405],
      ]
      for (const [target, init, status] of cases) {
        const response = await fetch(`${rt.origin}${target}`, init)
        assert.equal(response.status, status, `${init.method ?? 'GET'} ${target}`)
        assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8', `${runtime.name}: the ${status} to ${target} is plain UTF-8 text`)
        if (status === 405) assert.equal(response.headers.get('allow'), 'GET', `${runtime.name}: the 405 answer says GET is allowed`)
        await response.text()
      }
      if (runtime.notFound !== undefined) {
        const response = await fetch(`${rt.origin}${runtime.notFound}?topic=board:x`)
        assert.equal(response.status, 404, `${runtime.name}: a path the app does not serve is answered 404`)
        await response.text()
      }
      const stats = await rt.stats()
      assert.equal(stats.connections, 0, `${runtime.name}: no stream opened by a refusal`)
      for (const [, , status] of cases) assert.equal(stats.refused[status], 1, `one ${status} counted`)
    })

    it('forgets a client that leaves, without any publish', TIMEOUT, async () => {
      const one = await open('topic=board:leave')
      const two = await open('topic=board:leave&topic=board:other')
      assert.equal((await rt.stats()).connections, 2, `${runtime.name}: two streams open`)
      await one.cancel()
      await rt.waitForConnections(1, 'the first stream to be forgotten')
      await two.cancel()
      await rt.waitForConnections(0, 'the second stream to be forgotten')
    })

    it('cuts a stalled reader, and a healthy reader gets every frame', TIMEOUT, async (t) => {
      const stalled = net.connect(rt.port, '127.0.0.1')
      stalled.on('error', () => {})
      // No 'data' listener: Node reads up to the socket's high-water mark, then
      // leaves the rest in the kernel, whose buffers fill, then the runtime's.
      stalled.write(`GET /events?topic=board:feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
      const healthy = await open('topic=board:feed')
      await rt.waitForConnections(2, 'the stalled stream to open')

      const blob = 64 * 1024
      const ids: string[] = []
      let sentToStalled = 0
      let stats = await rt.stats()
      while (stats.dropped === 0) {
        assert.ok(sentToStalled < STALL_LIMIT_BYTES, `no cut after ${sentToStalled} bytes`)
        // Four frames in one turn (one write per stream); the healthy reader
        // takes them before the next four, so only the stalled one falls behind.
        const batch = await rt.publishLarge('board:feed', blob, 4)
        ids.push(...batch)
        await healthy.waitFor(() => healthy.named('patch').length === ids.length, 'the healthy reader to keep up')
        stats = await rt.stats()
        if (stats.dropped === 0) for (const id of batch) sentToStalled += formatPatch([['replace', '/blob', 'x'.repeat(blob)]], id).length
      }
      assert.equal(stats.dropped, 1, `${runtime.name}: the stalled stream was cut once: ${JSON.stringify(stats)}`)
      assert.equal(stats.connections, 1, 'the healthy stream stays')
      assert.deepEqual(healthy.named('patch').map((event) => event.id), ids, 'every frame, in order')

      // What the stalled client can still read was in the kernel's buffers
      // when the stream was cut (less, where the runtime resets the
      // connection: Bun does, which discards the server's send queue).
      let received = 0
      stalled.on('data', (chunk: Buffer) => (received += chunk.length))
      stalled.resume()
      await until(() => stalled.destroyed || stalled.readableEnded, 10_000, 'the stalled connection to close')
      t.diagnostic(`${runtime.name}: cut after ${sentToStalled} bytes were sent to the stalled stream; the client could still read ${received} of them`)
      // The runtime logs the reason the body was errored with (Bun prefixed
      // with "error: "): one line, no stack trace; nothing else went wrong.
      const logged = rt.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('Listening on'))
      assert.ok(logged.length > 0 && logged.every((line) => line.includes('patchwire: event stream cut by the server')), JSON.stringify(rt.stderr))
      await healthy.cancel()
      await rt.waitForConnections(0, 'the healthy stream to close')
    })

    it('resumes exactly after Last-Event-ID', TIMEOUT, async () => {
      const dropped = await open('topic=board:resume')
      const seen = await rt.publish('board:resume', [['replace', '/n', 1]])
      await dropped.waitFor(() => dropped.named('patch').length === 1, 'the first patch')
      await dropped.cancel()
      await rt.waitForConnections(0, 'the dropped stream to be forgotten')
      const second = await rt.publish('board:resume', [['replace', '/n', 2]])
      const third = await rt.publish('board:resume', [['add', '/log/-', 'three']])
      const resumed = await open('topic=board:resume', { 'Last-Event-ID': seen })
      const retry = /^retry: \d+\n\n/.exec(resumed.text)?.[0] ?? assert.fail(`no retry: ${resumed.text}`)
      assert.equal(resumed.text, retry + formatPatch([['replace', '/n', 2]], second) + formatPatch([['add', '/log/-', 'three']], third) + `id: ${third}\nevent: ready\ndata: ${third}\n\n`, `${runtime.name}: the header position replays the two later patches, then ready`)
      assert.equal((await rt.stats()).replays, 1, `${runtime.name}: one exact replay counted`)
      await resumed.cancel()
      await rt.waitForConnections(0, 'the resumed stream to close')
    })

    if (runtime.idleTimeoutS !== undefined) {
      const idleTimeoutS = runtime.idleTimeoutS
      it(`keeps a quiet stream open past the runtime's ${idleTimeoutS} s idle timeout`, { timeout: (idleTimeoutS + 20) * 1000 }, async () => {
        const body = await open('topic=board:quiet')
        // Nothing to await here: what is tested is that no close comes
        // within the runtime's idle timeout, so the test waits it out. Bun
        // closes an idle connection about 12 s after its last byte (its
        // timer is coarse), and the first heartbeat comes at 15 s.
        await new Promise((resolve) => setTimeout(resolve, idleTimeoutS * 1000 + 3500))
        assert.equal(body.ended, undefined, 'the stream is still open')
        const id = await rt.publish('board:quiet', [['replace', '/awake', true]])
        await body.waitFor(() => body.named('patch').length === 1, 'a patch after the idle period')
        assert.equal(body.named('patch')[0]?.id, id, `${runtime.name}: the patch after the idle period arrives`)
        await body.cancel()
        await rt.waitForConnections(0, 'the quiet stream to close')
      })
    }

    it('close() ends every stream with a retry: hint, and later requests get 503', TIMEOUT, async () => {
      const single = await open('topic=board:close')
      const multi = await open('topic=board:close&topic=board:also')
      await rt.close()
      await Promise.all([single.waitForEnd(), multi.waitForEnd()])
      for (const body of [single, multi]) {
        assert.equal(body.ended, true, 'a clean end')
        assert.ok(body.text.endsWith('retry: 3000\n\n'), JSON.stringify(body.text.slice(-40)))
      }
      assert.equal((await rt.stats()).connections, 0, `${runtime.name}: no stream left after close()`)
      const refused = await fetch(`${rt.origin}/events?topic=board:close`)
      assert.equal(refused.status, 503, `${runtime.name}: a request after close() is answered 503`)
      await refused.text()
      assert.doesNotMatch(rt.stderr, /legacy behavior/, 'no Deno warning about request.signal')
    })
  })
}

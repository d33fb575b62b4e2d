/**
 * A reader that takes nothing of its opening (a large replay it resumed
 * into) is cut like any stalled reader, while one that takes it slowly but
 * steadily is not (issue 20, item 4).
 *
 * Over loopback, whose segments are 64 KiB, Linux sizes a connection's send
 * buffer at up to 4 MiB: the kernel takes a replay of 1.5 MB whole, nothing
 * waits in the process, and a check that looks only there never sees the
 * stall. The clients here are real tiny-window sockets (Python, with a
 * 4 KiB SO_RCVBUF set before connect: a paused Node socket would let the
 * client's kernel absorb the replay instead).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { describe, it, mock, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createBroker, createFetchHandler, position, publish, type Broker } from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'

/** The replay: 24 frames of 64 KB. */
const FRAMES = 24
const FRAME_BYTES = 64 * 1024
const STALLED = 10
const READERS = fileURLToPath(new URL('fixtures/tiny-window-readers.py', import.meta.url))

interface SteadyState {
  bytes: number
  ready: boolean
  ended: string
}

/** test/fixtures/tiny-window-readers.py, killed after the test. */
class TinyWindowReaders {
  readonly #lines: Record<string, unknown>[] = []

  readonly #child

  constructor(t: TestContext, port: number, path: string, stalled: number, steady: number) {
    this.#child = spawn('python3', [READERS, String(port), path, String(stalled), String(steady)], { stdio: ['pipe', 'pipe', 'inherit'] })
    t.after(async () => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
      const exited = once(this.#child, 'exit')
      this.#child.kill('SIGKILL')
      await exited
    })
    let rest = ''
    this.#child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) this.#lines.push(JSON.parse(line) as Record<string, unknown>)
    })
  }

  /** The latest report of the steady readers. */
  get steady(): SteadyState[] {
    const report = this.#lines.findLast((line) => 'steady' in line)
    return (report?.['steady'] ?? []) as SteadyState[]
  }

  async opened(): Promise<void> {
    await until(() => this.#lines.some((line) => 'open' in line) || this.#child.exitCode !== null, 10_000, 'the readers to connect')
    assert.ok(this.#lines.some((line) => 'open' in line), `the readers connected (python3 exited ${this.#child.exitCode})`)
  }

  /** How each stalled connection ended, as the client sees it. */
  async stalledEnds(): Promise<string[]> {
    this.#child.stdin.write('check\n')
    await until(() => this.#lines.some((line) => 'stalled' in line), 30_000, 'the stalled readers to be checked')
    return this.#lines.find((line) => 'stalled' in line)?.['stalled'] as string[]
  }
}

/** A quiet topic with the replay in its history, and the position before it. */
async function quietHistory(broker: Broker): Promise<string> {
  const from = await position(broker, 'quiet')
  for (let n = 0; n < FRAMES; n++) await publish(broker, 'quiet', [['replace', '/chunk', String(n).padEnd(FRAME_BYTES, 'q')]])
  return from
}

describe('a reader that takes nothing of its opening', () => {
  it('node:http, tiny-window sockets: every stalled reader is cut within the stall window and reset, a steady reader is not', {
    skip: process.platform === 'linux' ? false : 'only Linux tells how much a socket holds in the kernel',
    timeout: 120_000,
  }, async (t) => {
    const broker = createBroker()
    const { port, handler, server } = await startServer(t, { broker, heartbeatMs: 200 })
    const from = await quietHistory(broker)
    const readers = new TinyWindowReaders(t, port, `/?topic=quiet&lastEventId=${encodeURIComponent(from)}`, STALLED, 1)
    await readers.opened()
    await until(() => handler.stats().connections === STALLED + 1, 10_000, 'every stream to open')
    const opened = Date.now()

    // The stall window is two heartbeats and at least MIN_STALL_MS (10 s);
    // reading the kernel's counts adds at most a few seconds.
    await until(() => handler.stats().dropped >= STALLED, 40_000, `the ${STALLED} stalled readers to be cut`)
    t.diagnostic(`${STALLED} stalled readers cut ${Date.now() - opened} ms after they opened`)
    const [atCut] = readers.steady
    assert.ok(atCut !== undefined, 'the steady reader reports')
    assert.equal(handler.stats().dropped, STALLED, 'only the stalled readers were cut')
    assert.equal(handler.stats().connections, 1, 'the steady reader is still streaming')
    assert.equal(atCut.ended, '', 'the steady reader is still connected')
    assert.equal(atCut.ready, false, 'the steady reader was still reading its opening, so it was judged over the same window')
    const connections = await new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))))
    assert.equal(connections, 1, 'the server closed the stalled readers\' sockets')
    assert.deepEqual(await readers.stalledEnds(), Array<string>(STALLED).fill('reset'), 'each stalled client sees its connection reset, so the kernel let go of the replay it never took')

    // A few more seconds of steady progress, through more reads of the kernel's counts.
    await until(() => (readers.steady[0]?.bytes ?? 0) >= atCut.bytes + 3 * FRAME_BYTES, 30_000, 'the steady reader to read on')
    assert.equal(readers.steady[0]?.ended, '', 'the steady reader is still connected')
    assert.equal(handler.stats().dropped, STALLED, 'the steady reader was never cut')
  })

  describe('createFetchHandler (on a mocked heartbeat clock)', () => {
    it('cuts a body that takes nothing of a large opening after the stall window, not one that takes a piece per heartbeat', async (t) => {
      mock.timers.enable({ apis: ['setInterval'] })
      t.after(() => mock.timers.reset())
      const broker = createBroker()
      const handler = createFetchHandler({ broker, heartbeatMs: 1000 })
      t.after(() => handler.close({ reconnectSpreadMs: 0 }))
      const from = await quietHistory(broker)
      const open = async (): Promise<Response> => {
        const response = await handler(new Request(`http://patchwire.test/events?topic=quiet&lastEventId=${encodeURIComponent(from)}`))
        assert.equal(response.status, 200, 'the stream opens')
        return response
      }
      const stalled = await open()
      const steady = (await open()).body?.getReader()
      assert.ok(steady !== undefined, 'the stream has a body')
      let received = ''
      const decoder = new TextDecoder()
      const beat = async (): Promise<void> => {
        const { value } = await steady.read()
        received += decoder.decode(value, { stream: true })
        mock.timers.tick(1000)
      }

      for (let n = 0; n < 9; n++) await beat()
      assert.equal(handler.stats().dropped, 0, 'nobody is cut before 10 s')
      for (let n = 0; n < 3; n++) await beat()
      assert.equal(handler.stats().dropped, 1, 'the body that took nothing is cut once 10 s passed')
      assert.equal(handler.stats().connections, 1, 'the steady body still streams')
      assert.ok(!received.includes('event: ready'), 'the steady body was still reading its opening')
      await assert.rejects(stalled.body?.getReader().read() ?? Promise.resolve(), (reason) => typeof reason === 'string' && reason.includes('cut by the server'), 'the stalled body is errored as cut by the server')

      while (!received.includes('event: ready')) {
        const { value, done } = await steady.read()
        assert.equal(done, false, 'the steady body is not ended before its opening is read')
        received += decoder.decode(value, { stream: true })
      }
      assert.equal(handler.stats().dropped, 1, 'the steady body was never cut')
    })
  })
})

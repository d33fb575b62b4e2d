// The client in real headless Chromium: several tabs of one origin share
// ONE stream (a leader tab holds it, the others get its frames), a new leader
// takes over when the leader tab closes, a tab without Web Locks or
// BroadcastChannel keeps a stream of its own, and a reset followed by a
// snapshot reloads no page that has onSnapshot.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { build } from 'esbuild'
import type { BrowserContext, Page } from 'playwright-core'
import { createBroker, createHandler, publish, type Broker, type Handler, type HandlerOptions } from '../src/index.ts'
import { launchChromium, listenForPages, servePage, type LaunchedChromium } from './helpers/chromium.ts'
import { until } from './helpers/server.ts'

const WAIT = 15_000

// What a page records, read back with page.evaluate.
interface PageLog {
  n: Record<string, number>
  patches: number
  snapshots: number
  violations: string[]
  errors: string[]
}

// The page: `start(topics, withSnapshots)` subscribes; every patch must be
// the previous value + 1 (from the snapshot or the last patch), anything else
// is a skip or a repeat. `sessionStorage.loads` counts the page's loads.
const PAGE = `<!doctype html><meta charset="utf-8"><title>patchwire tabs</title>
<script type="module">
import { applyPatch, subscribe } from '/client.js'
sessionStorage.loads = String(Number(sessionStorage.loads ?? 0) + 1)
const log = (window.log = { n: {}, patches: 0, snapshots: 0, violations: [], errors: [] })
window.start = (topics, withSnapshots) => {
  for (const topic of topics) {
    subscribe(topic, (ops, meta) => {
      const before = log.n[topic]
      const state = applyPatch({ n: before }, ops)
      if (before === undefined || state.n !== before + 1) log.violations.push(topic + ': ' + before + ' then ' + state.n + ' at ' + meta.id)
      log.n[topic] = state.n
      log.patches++
    }, {
      path: '/events',
      onError: (error) => log.errors.push(error.code),
      ...(withSnapshots ? { onSnapshot: (state, meta) => { log.n[meta.topic] = state.n; log.snapshots++ } } : {}),
    })
  }
}
window.started = true
</script>`

describe('tabs in Chromium', { timeout: 120_000 }, () => {
  let chromium: LaunchedChromium
  let context: BrowserContext
  let server: http.Server
  let origin: string
  let broker: Broker
  let handler: Handler
  const values: Record<string, number> = {}
  // Requests for the event stream, to see that a new leader opened one.
  let streamRequests = 0
  const pageErrors: string[] = []
  const pages: Page[] = []

  const handlerOptions = (): HandlerOptions => ({ broker, path: '/events', retryMs: 100, snapshot: (_req, topic) => ({ n: values[topic] ?? 0 }) })

  before(async () => {
    const bundle = await build({ entryPoints: [new URL('../src/client/index.ts', import.meta.url).pathname], bundle: true, format: 'esm', write: false })
    const client = bundle.outputFiles[0]?.text ?? ''
    broker = createBroker()
    handler = createHandler(handlerOptions())
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/events?') === true) streamRequests++
      handler(req, res, () => servePage(res, req.url ?? '/', PAGE, client))
    })
    origin = await listenForPages(server)
    chromium = await launchChromium()
    context = await chromium.browser.newContext()
  })

  after(async () => {
    await chromium?.browser.close()
    await handler?.close()
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  async function open(topics: string[], options: { share?: boolean; withSnapshots?: boolean; into?: BrowserContext } = {}): Promise<Page> {
    const page = await (options.into ?? context).newPage()
    page.on('pageerror', (error) => pageErrors.push(error.message))
    if (options.share === false) {
      await page.addInitScript(() => {
        Object.defineProperty(Navigator.prototype, 'locks', { value: undefined })
        delete (window as { BroadcastChannel?: unknown }).BroadcastChannel
      })
    }
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => (window as { started?: boolean }).started === true, undefined, { timeout: WAIT })
    await page.evaluate(([list, withSnapshots]) => (window as unknown as { start: (topics: string[], withSnapshots: boolean) => void }).start(list, withSnapshots), [topics, options.withSnapshots ?? true] as const)
    return page
  }

  const read = (page: Page): Promise<PageLog> => page.evaluate(() => (window as unknown as { log: PageLog }).log)
  const loads = async (page: Page): Promise<number> => Number(await page.evaluate(() => sessionStorage.getItem('loads')))

  async function publishAll(topics: string[]): Promise<void> {
    for (const topic of topics) {
      values[topic] = (values[topic] ?? 0) + 1
      await publish(broker, topic, [['replace', '/n', values[topic]]])
    }
  }

  // Waits until the page shows every topic's current value, then checks that it skipped and repeated nothing.
  async function follows(page: Page, topics: string[]): Promise<void> {
    const want = Object.fromEntries(topics.map((topic) => [topic, values[topic] ?? 0]))
    await page.waitForFunction(
      (expected) => Object.entries(expected).every(([topic, n]) => (window as unknown as { log: PageLog }).log.n[topic] === n),
      want,
      { timeout: WAIT },
    )
    assert.deepEqual((await read(page)).violations, [], 'the page skipped or repeated no patch (violations are "topic: before then after at id")')
  }

  const topicsOf = (i: number): string[] => ['all', 'shared', `own:${i}`, `more:${i}`]

  it('three tabs of one browser, four topics each, share ONE server connection, and follow every publish', async () => {
    for (let i = 0; i < 3; i++) pages.push(await open(topicsOf(i)))
    for (let i = 0; i < 3; i++) await follows(pages[i] as Page, topicsOf(i))
    await until(() => handler.stats().connections === 1, WAIT, 'one connection for the three tabs')
    const everything = [...new Set([0, 1, 2].flatMap(topicsOf))]
    for (let round = 0; round < 10; round++) await publishAll(everything)
    for (let i = 0; i < 3; i++) await follows(pages[i] as Page, topicsOf(i))
    assert.equal(handler.stats().connections, 1, 'still one server connection for the three tabs')
    assert.equal(handler.stats().topics >= everything.length, true, `the one connection holds all ${everything.length} topics, stats: ${JSON.stringify(handler.stats())}`)
  })

  it('the leader tab crashes: another takes over and resumes, and no tab skips or repeats a patch', async () => {
    // The first tab took the lock first: its end makes another tab open the stream.
    const requests = streamRequests
    const leader = pages.shift() as Page
    const crashed = new Promise((resolve) => leader.once('crash', resolve))
    // A renderer crash: no unload, no goodbye; the browser releases the tab's locks.
    const session = await context.newCDPSession(leader)
    // The command never answers: the page it would answer from is gone.
    void session.send('Page.crash').catch(() => {})
    await crashed
    const left = [1, 2]
    const everything = [...new Set(left.flatMap(topicsOf))]
    // Publishing goes on while the new leader takes over.
    for (let round = 0; round < 20; round++) {
      await publishAll(everything)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    for (const [k, i] of left.entries()) await follows(pages[k] as Page, topicsOf(i))
    await until(() => handler.stats().connections === 1, WAIT, 'one connection again')
    assert.ok(streamRequests > requests, 'a new leader opened the stream')
    await publishAll(everything)
    for (const [k, i] of left.entries()) await follows(pages[k] as Page, topicsOf(i))
  })

  it('a tab without Web Locks or BroadcastChannel keeps a stream of its own', async () => {
    const alone = await open(['all', 'alone'], { share: false })
    pages.push(alone)
    await until(() => handler.stats().connections === 2, WAIT, 'a second connection')
    await publishAll(['all', 'alone', 'shared'])
    await follows(alone, ['all', 'alone'])
    for (const [k, i] of [1, 2].entries()) await follows(pages[k] as Page, topicsOf(i))
  })

  it('a reset followed by a snapshot reloads no tab that has onSnapshot; one without it reloads once', async () => {
    const control = await open(['all'], { withSnapshots: false })
    await follows(pages[0] as Page, topicsOf(1))
    const before = await Promise.all(pages.map(async (page) => (await read(page)).snapshots))
    // A new broker: every id the pages hold is foreign now.
    const old = handler
    broker = createBroker()
    handler = createHandler(handlerOptions())
    await old.close()
    await control.waitForFunction(() => sessionStorage.getItem('loads') === '2', undefined, { timeout: WAIT })
    for (const [k, page] of pages.entries()) {
      await page.waitForFunction((count) => (window as unknown as { log: PageLog }).log.snapshots > count, before[k] as number, { timeout: WAIT })
    }
    const everything = ['all', 'alone', ...new Set([1, 2].flatMap(topicsOf))]
    await publishAll(everything)
    await follows(pages[0] as Page, topicsOf(1))
    await follows(pages[1] as Page, topicsOf(2))
    await follows(pages[2] as Page, ['all', 'alone'])
    for (const page of pages) assert.equal(await loads(page), 1, 'no reload')
  })

  it('threw nothing in the pages and reported nothing but reconnects', async () => {
    assert.deepEqual(pageErrors, [], `no page threw: ${pageErrors.join(' | ')}`)
    for (const page of pages) assert.deepEqual((await read(page)).errors.filter((code) => code !== 'ERR_PATCHWIRE_DISCONNECTED'), [], 'the client reported no error code but ERR_PATCHWIRE_DISCONNECTED')
  })
})

// Tab sharing in real headless Chromium against a scripted SSE server that
// speaks the wire format (one topic or several, `<epoch>-<seq>` ids,
// snapshot, reset, ready) and records every request, so that each step of
// a hand-over can be checked: which tab opens what, from which id, and that
// no tab repeats a frame even when a server replays more than it was asked.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { build } from 'esbuild'
import type { BrowserContext, Page } from 'playwright-core'
import { launchChromium, listenForPages, servePage, type LaunchedChromium } from './helpers/chromium.ts'
import { until } from './helpers/server.ts'

const WAIT = 15_000

/** One request for the event stream. */
interface StreamRequest {
  topics: string[]
  /** `Last-Event-ID` header, else the `lastEventId` query parameter; `null` for a fresh stream. */
  from: string | null
  res: http.ServerResponse
  closed: boolean
}

/** What a page recorded: `<topic> <id>` per patch, `<topic> <json>` per snapshot, states per topic. */
interface PageLog {
  patches: string[]
  snapshots: string[]
  errors: string[]
  states: Record<string, string>
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>patchwire takeover</title>
<script type="module">
import { subscribe } from '/client.js'
sessionStorage.loads = String(Number(sessionStorage.loads ?? 0) + 1)
const log = (window.log = { patches: [], snapshots: [], errors: [], states: {} })
window.sub = (topic, withSnapshot) => {
  subscribe(topic, (ops, meta) => log.patches.push(meta.topic + ' ' + meta.id), {
    path: '/events',
    onError: (error) => log.errors.push(error.code),
    onStateChange: (state) => (log.states[topic] = state),
    ...(withSnapshot ? { onSnapshot: (state, meta) => log.snapshots.push(meta.topic + ' ' + JSON.stringify(state)) } : {}),
  })
}
window.started = true
</script>`

describe('tab hand-over in Chromium (scripted server)', { timeout: 120_000 }, () => {
  let chromium: LaunchedChromium
  let context: BrowserContext
  let server: http.Server
  let origin: string
  const requests: StreamRequest[] = []
  const frames: { seq: number; topic: string }[] = []
  let seq = 1
  // Frames before the asked id that the next resumed request gets again.
  let overlap = 0
  // The next resumed request gets a reset (and a snapshot) for each topic instead of a replay.
  let resetNext = false
  const pageErrors: string[] = []

  const open = (): StreamRequest[] => requests.filter((request) => !request.closed)
  const write = (request: StreamRequest, event: string, topic: string | undefined, body: string, id?: number): void => {
    const data = topic !== undefined && request.topics.length > 1 ? `data: ${JSON.stringify(topic)}\ndata: ${body}\n` : `data: ${body}\n`
    request.res.write(`${id === undefined ? '' : `id: e-${id}\n`}event: ${event}\n${data}\n`)
  }
  const snapshot = (request: StreamRequest, topic: string): void => write(request, 'snapshot', topic, JSON.stringify({ at: seq }))

  function publish(topic: string): void {
    seq++
    frames.push({ seq, topic })
    for (const request of open()) if (request.topics.includes(topic)) write(request, 'patch', topic, '[["replace","/n",1]]', seq)
  }

  before(async () => {
    const bundle = await build({ entryPoints: [new URL('../src/client/index.ts', import.meta.url).pathname], bundle: true, format: 'esm', write: false })
    const client = bundle.outputFiles[0]?.text ?? ''
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/events') {
        const header = req.headers['last-event-id']
        const request: StreamRequest = { topics: url.searchParams.getAll('topic'), from: typeof header === 'string' ? header : url.searchParams.get('lastEventId'), res, closed: false }
        requests.push(request)
        res.on('close', () => (request.closed = true))
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
        res.write('retry: 100\n\n')
        const from = request.from === null ? undefined : Number(request.from.slice(2))
        if (from === undefined) for (const topic of request.topics) snapshot(request, topic)
        else if (resetNext) {
          resetNext = false
          for (const topic of request.topics) {
            write(request, 'reset', undefined, JSON.stringify(request.topics.length > 1 ? { reason: 'history-exceeded', topic } : { reason: 'history-exceeded' }))
            snapshot(request, topic)
          }
        } else {
          for (const frame of frames) if (frame.seq > from - overlap && request.topics.includes(frame.topic)) write(request, 'patch', frame.topic, '[["replace","/n",1]]', frame.seq)
          overlap = 0
        }
        res.write(`id: e-${seq}\nevent: ready\ndata: e-${seq}\n\n`)
        return
      }
      servePage(res, url.pathname, PAGE, client)
    })
    origin = await listenForPages(server)
    chromium = await launchChromium()
    context = await chromium.browser.newContext()
  })

  after(async () => {
    await chromium?.browser.close()
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  async function tab(): Promise<Page> {
    const page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => (window as { started?: boolean }).started === true, undefined, { timeout: WAIT })
    return page
  }
  const sub = (page: Page, topic: string, withSnapshot = false): Promise<void> =>
    page.evaluate(([t, s]) => (window as unknown as { sub: (topic: string, withSnapshot: boolean) => void }).sub(t, s), [topic, withSnapshot] as const)
  const read = (page: Page): Promise<PageLog> => page.evaluate(() => (window as unknown as { log: PageLog }).log)
  // A follower is in once the leader told it the stream's state.
  const live = (page: Page, topic: string): Promise<unknown> =>
    page.waitForFunction((t) => (window as unknown as { log: PageLog }).log.states[t] === 'open', topic, { timeout: WAIT })
  const has = (page: Page, what: 'patches' | 'snapshots', count: number): Promise<unknown> =>
    page.waitForFunction(([w, n]) => (window as unknown as { log: PageLog }).log[w].length >= n, [what, count] as const, { timeout: WAIT })
  const ids = (topic: string, after: number): string[] => frames.filter((frame) => frame.topic === topic && frame.seq > after).map((frame) => `${topic} e-${frame.seq}`)

  const tabs: Page[] = []
  let start = 0

  it('three tabs on one topic: the first opens the only stream, the others join it without a request', async () => {
    for (let i = 0; i < 3; i++) {
      tabs.push(await tab())
      await sub(tabs[i] as Page, 'x', i === 0)
    }
    await until(() => requests.length === 1, WAIT, 'the first request')
    assert.deepEqual([requests[0]?.topics, requests[0]?.from], [['x'], null], 'the first tab opens a stream on x, from no id')
    await has(tabs[0] as Page, 'snapshots', 1)
    start = seq
    for (const page of tabs) await live(page, 'x')
    for (let i = 0; i < 4; i++) publish('x')
    for (const page of tabs) await has(page, 'patches', 4)
    for (const page of tabs) assert.deepEqual((await read(page)).patches, ids('x', start), 'every tab gets the 4 patches, each once, in order')
    assert.equal(requests.length, 1, 'one request for three tabs')
  })

  it('closing the leader: the next tab resumes from the last id, and a replay of frames it has repeats none', async () => {
    const before = requests.length
    overlap = 3
    await (tabs.shift() as Page).close()
    await until(() => requests.length > before, WAIT, 'the new leader\'s request')
    const resumed = requests[before] as StreamRequest
    assert.deepEqual([resumed.topics, resumed.from], [['x'], `e-${seq}`], 'the new leader resumes x from the last id')
    publish('x')
    for (const page of tabs) await has(page, 'patches', 5)
    for (const page of tabs) assert.deepEqual((await read(page)).patches, ids('x', start), 'the replayed frames repeat no patch in any tab')
  })

  it('a closed follower\'s topics leave the stream', async () => {
    // Opened after the others, this tab cannot be the leader.
    const follower = await tab()
    await sub(follower, 'only-here')
    await until(() => open().some((request) => request.topics.includes('only-here')), WAIT, 'the stream with only-here')
    await live(follower, 'only-here')
    const before = requests.length
    await follower.close()
    await until(() => open().length === 1 && !(open()[0] as StreamRequest).topics.includes('only-here'), WAIT, 'a stream without only-here')
    assert.ok(requests.length > before, `the leader opened a new stream without only-here (requests: ${before} → ${requests.length})`)
    publish('x')
    for (const page of tabs) await has(page, 'patches', 5)
    for (const page of tabs) assert.deepEqual((await read(page)).patches, ids('x', start), 'the new stream repeats no patch in the remaining tabs')
  })

  it('a tab subscribing with onSnapshot to a topic the stream carries gets its snapshot from a catch-up; no other tab gets one', async () => {
    const early = await tab()
    tabs.push(early)
    await sub(early, 'x', true)
    await has(early, 'snapshots', 1)
    const late = await tab()
    tabs.push(late)
    const before = requests.length
    await sub(late, 'x', true)
    await has(late, 'snapshots', 1)
    const catchUp = requests[before] as StreamRequest
    assert.deepEqual([catchUp.topics, catchUp.from], [['x'], null], 'the catch-up request asks for x from no id, for its snapshot')
    publish('x')
    for (const page of [early, late]) await has(page, 'patches', 1)
    for (const page of tabs.slice(0, 2)) await has(page, 'patches', 6)
    for (const page of [early, late]) assert.deepEqual(await read(page).then((log) => [log.patches, log.snapshots.length]), [ids('x', seq - 1), 1], 'each onSnapshot tab has one snapshot, then the new patch only')
  })

  it('a reset then a snapshot on the shared stream: a tab with onSnapshot gets the snapshot and does not reload; tabs without reload once', async () => {
    const plain = await tab()
    await sub(plain, 'x')
    await live(plain, 'x')
    const [first, second, early, late] = tabs as [Page, Page, Page, Page]
    resetNext = true
    // A drop: the leader reconnects with its last id and gets the reset.
    for (const request of open()) request.res.destroy()
    for (const page of [plain, first, second]) await page.waitForFunction(() => sessionStorage.getItem('loads') === '2', undefined, { timeout: WAIT })
    for (const page of [early, late]) {
      await has(page, 'snapshots', 2)
      assert.match((await read(page)).snapshots[1] ?? '', /^x \{"at":\d+\}$/, 'the second snapshot is the one sent after the reset')
      assert.equal(await page.evaluate(() => sessionStorage.getItem('loads')), '1', 'a tab with onSnapshot does not reload')
    }
    publish('x')
    for (const page of [early, late]) {
      await has(page, 'patches', 2)
      assert.deepEqual((await read(page)).patches.slice(1), [`x e-${seq}`], 'after the snapshot, the tab gets the next patch')
    }
    for (const page of [plain, first, second]) assert.equal(await page.evaluate(() => sessionStorage.getItem('loads')), '2', 'a tab without onSnapshot reloaded once')
  })

  it('threw nothing in the pages', () => {
    assert.deepEqual(pageErrors, [], `no page threw: ${pageErrors.join(' | ')}`)
  })
})

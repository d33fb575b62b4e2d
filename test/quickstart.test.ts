/**
 * A newcomer's first hour, in headless Chromium: the Quick start
 * (examples/quickstart, which the README shows byte for byte) run as
 * written with `node server.mjs`; a page that is a file finding its
 * handler by default; the CORS recipe (examples/cors) with and without
 * credentials; and the client's refusal errors naming the likely cause
 * (a wrong path, topicPrefix, CORS). Every page imports the client from
 * the handler (`<path>/client.js`).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import { after, before, describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { eventsServer } from '../examples/cors/events.ts'
import { createBroker, createHandler, publish, type Handler, type HandlerOptions } from '../src/index.ts'
import { launchChromium, listenForPages } from './helpers/chromium.ts'
import { listen, until } from './helpers/server.ts'
import { spawnTied } from './helpers/tied-process.ts'

const WAIT = { timeout: 15_000 }
const QUICKSTART = fileURLToPath(new URL('../examples/quickstart/server.mjs', import.meta.url))

/** What a test page records: its subscription's states, patches, snapshots and errors. */
interface Seen {
  states: string[]
  snapshots: unknown[]
  patches: unknown[]
  errors: { code: string; message: string }[]
}

/**
 * A page that imports the client from `clientUrl` and subscribes with the
 * given options (JSON), recording what happens in `window.seen`.
 */
function probePage(clientUrl: string, topic: string, options: Record<string, unknown>): string {
  return `<!doctype html><title>probe</title><script type="module">
  import { subscribe } from ${JSON.stringify(clientUrl)}
  const seen = (window.seen = { states: [], snapshots: [], patches: [], errors: [] })
  subscribe(${JSON.stringify(topic)}, (ops) => seen.patches.push(ops), {
    ...${JSON.stringify(options)},
    onSnapshot: (state) => seen.snapshots.push(state),
    onStateChange: (state) => seen.states.push(state),
    onError: (error) => seen.errors.push({ code: error.code, message: error.message }),
  })
</script>`
}

/** Serves `pages` (pathname → HTML) and, for other paths, `fallback` or 404. */
async function pageServer(t: TestContext, pages: Record<string, string>, fallback?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<string> {
  const server = http.createServer((req, res) => {
    const page = pages[new URL(req.url ?? '/', 'http://x').pathname]
    if (page !== undefined) res.writeHead(200, { 'Content-Type': 'text/html' }).end(page)
    else if (fallback !== undefined) fallback(req, res)
    else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found')
  })
  const origin = await listenForPages(server)
  t.after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return origin
}

/** Waits until the page's record satisfies `condition`. */
async function waitFor(page: Page, what: string, condition: (s: Seen) => boolean): Promise<Seen> {
  let last: Seen | undefined
  await until(async () => {
    last = await page.evaluate(() => (window as unknown as { seen?: Seen }).seen)
    return last !== undefined && condition(last)
  }, WAIT.timeout, `${what} (the page saw ${JSON.stringify(last)})`)
  return last as Seen
}

describe('a newcomer\'s first hour, in Chromium', { timeout: 120_000 }, () => {
  let browser: Browser
  const pageErrors: string[] = []

  before(async () => {
    ;({ browser } = await launchChromium())
  })

  after(async () => {
    await browser?.close()
  })

  async function open(t: TestContext, url: string): Promise<Page> {
    const context = await browser.newContext()
    t.after(() => context.close())
    const page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(`${url}: ${error.message}`))
    await page.goto(url)
    return page
  }

  it('runs the Quick start as written: node server.mjs, and the page counts', async (t) => {
    const child = spawnTied(process.execPath, [QUICKSTART], { env: { ...process.env, PORT: '0' } })
    t.after(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    })
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    await until(() => /http:\/\/localhost:\d+/.test(output) || child.exitCode !== null, 20_000, `the server's address (it printed: ${output})`)
    const url = /http:\/\/localhost:\d+/.exec(output)?.[0]
    assert.ok(url !== undefined, `the server printed its address: ${output}`)
    const page = await open(t, url)
    await page.waitForFunction(() => /^\d+$/.test(document.querySelector('#counter')?.textContent ?? ''), undefined, WAIT)
    const first = Number(await page.textContent('#counter'))
    await page.waitForFunction((n) => Number(document.querySelector('#counter')?.textContent) > n, first, WAIT)
    assert.deepEqual(pageErrors, [], 'no error in the page')
  })

  it('finds the handler from a page that is a file: /reports/q3.html connects to /reports/__events', async (t) => {
    const broker = createBroker()
    const events = createHandler({ broker, path: '/reports/__events', snapshot: () => ({ counter: 1 }) })
    const origin = await pageServer(t, { '/reports/q3.html': probePage('/reports/__events/client.js', 'counter', {}) }, (req, res) => events(req, res))
    t.after(() => events.close())
    const page = await open(t, `${origin}/reports/q3.html`)
    await waitFor(page, 'the snapshot', (s) => s.snapshots.length === 1)
    await publish(broker, 'counter', [['replace', '/counter', 2]])
    const record = await waitFor(page, 'the patch', (s) => s.patches.length === 1)
    assert.deepEqual(record.snapshots, [{ counter: 1 }], 'the snapshot came from /reports/__events')
    assert.deepEqual(record.errors, [], 'no error')
  })

  describe('the CORS recipe (examples/cors): the page on one origin, the events on another', () => {
    /**
     * A page origin and the recipe's events server for it; the events'
     * snapshot says which cookie came along. The page's HTML is set once
     * the events' origin is known.
     */
    async function corsSetup(t: TestContext): Promise<{ pages: Record<string, string>; pageOrigin: string; events: string; broker: ReturnType<typeof createBroker> }> {
      const pages: Record<string, string> = {}
      const pageOrigin = await pageServer(t, pages)
      const broker = createBroker()
      const handler = createHandler({ broker, path: '/events', snapshot: (req) => ({ cookie: req.headers.cookie ?? null }) })
      const { origin } = await listen(t, eventsServer(pageOrigin, handler as Handler), handler)
      return { pages, pageOrigin, events: origin, broker }
    }

    async function openWithCookie(t: TestContext, url: string, cookieUrl: string): Promise<Page> {
      const context = await browser.newContext()
      t.after(() => context.close())
      await context.addCookies([{ name: 'session', value: 'abc', url: cookieUrl }])
      const page = await context.newPage()
      page.on('pageerror', (error) => pageErrors.push(`${url}: ${error.message}`))
      await page.goto(url)
      return page
    }

    it('with credentials: the stream opens, and the page\'s cookie reaches the server', async (t) => {
      const { pages, pageOrigin, events, broker } = await corsSetup(t)
      pages['/'] = probePage(`${events}/events/client.js`, 'counter', { path: `${events}/events`, withCredentials: true })
      const page = await openWithCookie(t, `${pageOrigin}/`, events)
      const record = await waitFor(page, 'the snapshot', (s) => s.snapshots.length === 1 || s.errors.length > 0)
      assert.deepEqual(record.errors, [], 'no error')
      assert.deepEqual(record.snapshots, [{ cookie: 'session=abc' }], 'the cookie came along')
      await publish(broker, 'counter', [['replace', '/n', 1]])
      await waitFor(page, 'the patch', (s) => s.patches.length === 1)
    })

    it('without credentials: the stream opens, and no cookie is sent', async (t) => {
      const { pages, pageOrigin, events, broker } = await corsSetup(t)
      pages['/'] = probePage(`${events}/events/client.js`, 'counter', { path: `${events}/events` })
      const page = await openWithCookie(t, `${pageOrigin}/`, events)
      const record = await waitFor(page, 'the snapshot', (s) => s.snapshots.length === 1 || s.errors.length > 0)
      assert.deepEqual(record.errors, [], 'no error')
      assert.deepEqual(record.snapshots, [{ cookie: null }], 'no cookie without withCredentials')
      await publish(broker, 'counter', [['replace', '/n', 1]])
      await waitFor(page, 'the patch', (s) => s.patches.length === 1)
    })

    it('a page of an origin the server does not name is refused by the browser, and the error says CORS (control)', async (t) => {
      const { events } = await corsSetup(t)
      // The client module is public (Access-Control-Allow-Origin: *); the stream is not.
      const other = await pageServer(t, { '/': probePage(`${events}/events/client.js`, 'counter', { path: `${events}/events` }) })
      const page = await open(t, `${other}/`)
      const record = await waitFor(page, 'the refusal', (s) => s.errors.length > 0)
      assert.equal(record.errors[0]?.code, 'ERR_PATCHWIRE_REFUSED', JSON.stringify(record.errors))
      assert.match(record.errors[0]?.message ?? '', /no HTTP answer. Likely cause: CORS/, 'the error names CORS')
      assert.deepEqual(record.snapshots, [], 'nothing arrived')
    })
  })

  describe('refusal errors in the page name the likely cause', () => {
    async function refused(t: TestContext, options: HandlerOptions, subscribePath: string): Promise<string> {
      const events = createHandler({ broker: createBroker(), path: '/events', ...options })
      t.after(() => events.close())
      const origin = await pageServer(t, { '/': probePage('/events/client.js', 'counter', { path: subscribePath }) }, (req, res) =>
        events(req, res, () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('my app')))
      const page = await open(t, `${origin}/`)
      const record = await waitFor(page, 'the refusal', (s) => s.errors.length > 0)
      assert.equal(record.errors[0]?.code, 'ERR_PATCHWIRE_REFUSED', JSON.stringify(record.errors))
      return record.errors[0]?.message ?? ''
    }

    it('a wrong path, answered by the app with 200 text/plain', async (t) => {
      assert.match(await refused(t, {}, '/evnets'), /200 text\/plain "my app". Likely cause: a wrong path/, 'the error names the path')
    })

    it('a topic outside topicPrefix (403)', async (t) => {
      assert.match(await refused(t, { topicPrefix: 'dashboard:' }, '/events'), /403 text\/plain "Forbidden: the topic "counter" does not start with the handler's topicPrefix "dashboard:"". Likely cause: topicPrefix or authorize/, 'the error names topicPrefix')
    })
  })

  it('saw no error in any page', () => {
    assert.deepEqual(pageErrors, [], 'no page error')
  })
})

// Revocation in real headless Chromium (issue 22): two tabs of one origin
// share ONE stream; one topic that both tabs subscribe to is revoked. Every
// tab's subscription to it gets onRevoked and the state `revoked`, no tab
// asks for the topic again, and the shared stream reopens without it and
// resumes the other topics with no skip and no repeat.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { build } from 'esbuild'
import type { BrowserContext, Page } from 'playwright-core'
import { createBroker, createHandler, publish, revoke, type Broker, type Handler } from '../src/index.ts'
import { launchChromium, listenForPages, servePage, type LaunchedChromium } from './helpers/chromium.ts'
import { until } from './helpers/server.ts'

const WAIT = 15_000

interface PageLog {
  n: Record<string, number>
  violations: string[]
  revoked: string[]
  states: Record<string, string>
  errors: string[]
}

// `start(topics)` subscribes; every patch must be the previous value + 1
// (from the snapshot or the last patch). `states()` reads each
// subscription's `stop.state`.
const PAGE = `<!doctype html><meta charset="utf-8"><title>patchwire revoke</title>
<script type="module">
import { applyPatch, subscribe } from '/client.js'
const log = (window.log = { n: {}, violations: [], revoked: [], states: {}, errors: [] })
const stops = {}
window.start = (topics) => {
  for (const topic of topics) {
    stops[topic] = subscribe(topic, (ops, meta) => {
      const before = log.n[topic]
      const state = applyPatch({ n: before }, ops)
      if (before === undefined || state.n !== before + 1) log.violations.push(topic + ': ' + before + ' then ' + state.n + ' at ' + meta.id)
      log.n[topic] = state.n
    }, {
      path: '/events',
      onError: (error) => log.errors.push(error.code),
      onSnapshot: (state, meta) => { log.n[meta.topic] = state.n },
      onRevoked: (revoked) => log.revoked.push(revoked),
    })
  }
}
window.states = () => Object.fromEntries(Object.entries(stops).map(([topic, stop]) => [topic, stop.state]))
window.started = true
</script>`

describe('revocation across tabs in Chromium', { timeout: 120_000 }, () => {
  let chromium: LaunchedChromium
  let context: BrowserContext
  let server: http.Server
  let origin: string
  let broker: Broker
  let handler: Handler
  const values: Record<string, number> = {}
  // The topics of every stream request, in order.
  const requests: string[][] = []
  const pageErrors: string[] = []

  before(async () => {
    const bundle = await build({ entryPoints: [new URL('../src/client/index.ts', import.meta.url).pathname], bundle: true, format: 'esm', write: false })
    const client = bundle.outputFiles[0]?.text ?? ''
    broker = createBroker()
    handler = createHandler({ broker, path: '/events', retryMs: 100, snapshot: (_req, topic) => ({ n: values[topic] ?? 0 }) })
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/events?') === true) requests.push(new URL(req.url, 'http://x').searchParams.getAll('topic'))
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

  async function open(topics: string[]): Promise<Page> {
    const page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => (window as { started?: boolean }).started === true, undefined, { timeout: WAIT })
    await page.evaluate((list) => (window as unknown as { start: (topics: string[]) => void }).start(list), topics)
    return page
  }

  const read = (page: Page): Promise<PageLog> => page.evaluate(() => (window as unknown as { log: PageLog }).log)
  const states = (page: Page): Promise<Record<string, string>> => page.evaluate(() => (window as unknown as { states: () => Record<string, string> }).states())

  async function publishAll(topics: string[]): Promise<void> {
    for (const topic of topics) {
      values[topic] = (values[topic] ?? 0) + 1
      await publish(broker, topic, [['replace', '/n', values[topic]]])
    }
  }

  async function follows(page: Page, topics: string[]): Promise<void> {
    const want = Object.fromEntries(topics.map((topic) => [topic, values[topic] ?? 0]))
    await page.waitForFunction(
      (expected) => Object.entries(expected).every(([topic, n]) => (window as unknown as { log: PageLog }).log.n[topic] === n),
      want,
      { timeout: WAIT },
    )
    assert.deepEqual((await read(page)).violations, [], 'no skip and no repeat')
  }

  it('every tab\'s subscription to the revoked topic gets onRevoked, none asks for it again, and the other topics go on exactly', async () => {
    const tabs = [await open(['doc', 'keep', 'own:0']), await open(['doc', 'keep', 'own:1'])]
    const all = ['doc', 'keep', 'own:0', 'own:1']
    await publishAll(all)
    await follows(tabs[0] as Page, ['doc', 'keep', 'own:0'])
    await follows(tabs[1] as Page, ['doc', 'keep', 'own:1'])
    await until(() => handler.stats().connections === 1, WAIT, 'one connection for the two tabs')
    const before = requests.length

    await revoke(broker, { topic: 'doc' })
    for (const tab of tabs) await tab.waitForFunction(() => (window as unknown as { log: PageLog }).log.revoked.length === 1, undefined, { timeout: WAIT })
    // Patches keep coming, on the revoked topic too.
    for (let round = 0; round < 5; round++) await publishAll(all)
    await until(() => handler.stats().connections === 1, WAIT, 'the shared stream to reopen')
    await follows(tabs[0] as Page, ['keep', 'own:0'])
    await follows(tabs[1] as Page, ['keep', 'own:1'])

    for (const tab of tabs) {
      const log = await read(tab)
      assert.deepEqual(log.revoked, ['doc'], 'onRevoked once, with the topic')
      assert.equal(log.n['doc'], 1, 'the revoked topic got nothing after its revocation')
      assert.equal((await states(tab))['doc'], 'revoked', 'stop.state is revoked')
      assert.equal((await states(tab))['keep'], 'open', 'the other subscriptions are open')
    }
    const after = requests.slice(before)
    assert.ok(after.length >= 1, 'the stream was reopened')
    assert.deepEqual(after.filter((topics) => topics.includes('doc')), [], `no tab asked for the revoked topic again: ${JSON.stringify(after)}`)
    assert.equal(handler.stats().revoked, 1, 'one stream was revoked')
    assert.deepEqual(pageErrors, [], 'no page error')
  })
})

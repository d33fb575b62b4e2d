// Drives the demo dashboard (examples/dashboard) in headless Chromium: the
// browser's own EventSource, the built client from dist/client, a real page
// with two topics on one stream, its state only from snapshots and patches.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startDashboard, type Dashboard } from '../examples/dashboard/server.ts'
import { launchChromium } from './helpers/chromium.ts'
import { until } from './helpers/server.ts'

const CLIENT = new URL('../dist/client/index.js', import.meta.url)
const WAIT = { timeout: 10_000 }

describe('dashboard in Chromium', { timeout: 90_000 }, () => {
  let browser: Browser
  let context: BrowserContext
  let dashboard: Dashboard
  const errors: string[] = []

  before(async () => {
    if (!existsSync(CLIENT)) throw new Error('dist/client/index.js is missing: run npm run build (npm test does it first)')
    dashboard = await startDashboard({ port: 0, host: '127.0.0.1', tickMs: 0 })
    ;({ browser } = await launchChromium())
    context = await browser.newContext()
  })

  after(async () => {
    await browser?.close()
    await dashboard?.close()
  })

  async function open(): Promise<Page> {
    const page = await context.newPage()
    page.on('pageerror', (error) => errors.push(error.message))
    await page.goto(dashboard.url)
    // A page load marks the window; a reload would lose the mark.
    await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true))
    await page.waitForSelector('#status[data-state="open"]', WAIT)
    await shows(page)
    return page
  }

  // Waits until the page shows the server's state.
  async function shows(page: Page): Promise<void> {
    const { stats, orders } = dashboard.state
    await page.waitForFunction((rev) => document.getElementById('rev')?.textContent === String(rev), stats.rev, WAIT)
    assert.equal(await page.textContent('#counter'), stats.counter.toLocaleString('en-US'), `the page shows the counter of rev ${stats.rev}`)
    await page.waitForFunction((count) => document.querySelectorAll('#orders li').length === count, orders.orders.length, WAIT)
    assert.deepEqual(
      await page.$$eval('#orders li', (items) => items.map((li) => li.textContent)),
      orders.orders.map((order) => `#${order.id}${order.product}${order.status}`),
      `the page lists the orders of rev ${stats.rev}, in order`,
    )
  }

  const marked = (page: Page): Promise<boolean> => page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce === true)
  const count = async (page: Page, id: string): Promise<number> => Number(await page.textContent(`#${id}`))

  let first: Page
  let second: Page

  it('starts from the snapshots and follows each publish in the DOM', async () => {
    await dashboard.tick()
    first = await open()
    assert.equal(await count(first, 'snapshots'), 2, 'one snapshot per topic')
    for (let i = 0; i < 7; i++) {
      await dashboard.tick()
      await shows(first)
    }
    assert.equal(await first.locator('#orders li').count(), 5, 'the page lists the 5 newest orders, the length the dashboard keeps')
  })

  it('shares one stream between two tabs, which show the same state', async () => {
    second = await open()
    await dashboard.tick()
    await shows(first)
    await shows(second)
    await until(() => dashboard.stats().connections === 1, 5000, 'one stream for both tabs and both topics')
  })

  it('resumes after the server drops every connection, missing nothing, with no snapshot', async () => {
    const before = await count(first, 'snapshots')
    dashboard.dropAllConnections()
    await dashboard.tick()
    await dashboard.tick()
    for (const page of [first, second]) await shows(page)
    assert.equal(await count(first, 'snapshots'), before, 'an exact resume needs no snapshot')
    assert.equal(await count(first, 'resets'), 0, 'an exact resume is no reset')
  })

  it('takes a snapshot after a server restart (reset), without reloading the page', async () => {
    await dashboard.restartEvents()
    await dashboard.tick()
    for (const page of [first, second]) {
      await page.waitForFunction(() => Number(document.getElementById('resets')?.textContent) >= 1, undefined, WAIT)
      await shows(page)
      assert.equal(await marked(page), true, 'the page was not reloaded')
    }
    await dashboard.tick()
    await shows(first)
    await shows(second)
  })

  it('threw nothing in the pages', () => {
    assert.deepEqual(errors, [], `no page threw: ${errors.join(' | ')}`)
  })
})

// Drives the demo dashboard (examples/dashboard) in headless Chromium: the
// browser's own EventSource, the built client from dist/client, a real page.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { startDashboard, type Dashboard } from '../examples/dashboard/server.ts'
import { launchChromium } from './helpers/chromium.ts'

const CLIENT = new URL('../dist/client/index.js', import.meta.url)
const WAIT = { timeout: 10_000 }

describe('dashboard in Chromium', { timeout: 60_000 }, () => {
  let browser: Browser
  let dashboard: Dashboard
  const errors: string[] = []

  before(async () => {
    if (!existsSync(CLIENT)) throw new Error('dist/client/index.js is missing: run npm run build (npm test does it first)')
    dashboard = await startDashboard({ port: 0, host: '127.0.0.1', tickMs: 0 })
    ;({ browser } = await launchChromium())
  })

  after(async () => {
    await browser?.close()
    await dashboard?.close()
  })

  async function open(): Promise<Page> {
    const page = await browser.newPage()
    page.on('pageerror', (error) => errors.push(error.message))
    await page.goto(dashboard.url)
    await page.waitForSelector('#status[data-state="open"]', WAIT)
    await shows(page, dashboard.state.rev)
    return page
  }

  // Waits until the page shows the server's state at `rev`.
  async function shows(page: Page, rev: number): Promise<void> {
    await page.waitForFunction((r) => document.getElementById('rev')?.textContent === String(r), rev, WAIT)
    const { counter, orders } = dashboard.state
    assert.equal(await page.textContent('#counter'), String(counter))
    assert.deepEqual(
      await page.$$eval('#orders li', (items) => items.map((li) => li.textContent)),
      orders.map((order) => `#${order.id}${order.product}${order.status}`),
    )
  }

  const reloads = async (page: Page): Promise<number> => Number(await page.textContent('#reloads'))

  let first: Page
  let second: Page

  it('follows each publish in the DOM', async () => {
    await dashboard.tick()
    first = await open()
    for (let i = 0; i < 7; i++) {
      await dashboard.tick()
      await shows(first, dashboard.state.rev)
    }
    assert.equal(await first.locator('#orders li').count(), 5)
    assert.match((await first.textContent('#patch')) ?? '', /"upsert","\/orders\/0"/)
  })

  it('shows the same state in a second tab on the same topic', async () => {
    second = await open()
    await dashboard.tick()
    await shows(first, dashboard.state.rev)
    await shows(second, dashboard.state.rev)
    assert.equal(await first.textContent('#event-id'), await second.textContent('#event-id'))
  })

  it('resumes after the server drops every connection, missing nothing', async () => {
    dashboard.dropAllConnections()
    await first.waitForSelector('#status[data-state="connecting"]', WAIT)
    // Published while the pages are disconnected: they get it replayed.
    await dashboard.tick()
    await dashboard.tick()
    for (const page of [first, second]) {
      await page.waitForSelector('#status[data-state="open"]', WAIT)
      await shows(page, dashboard.state.rev)
      assert.equal(await reloads(page), 0, 'an exact resume needs no reload')
    }
  })

  it('reloads its state when the stream cannot be resumed (reset)', async () => {
    await dashboard.restartEvents()
    await dashboard.tick()
    for (const page of [first, second]) {
      await page.waitForFunction(() => document.getElementById('reloads')?.textContent === '1', undefined, WAIT)
      await shows(page, dashboard.state.rev)
    }
    await dashboard.tick()
    await shows(first, dashboard.state.rev)
    await shows(second, dashboard.state.rev)
  })

  it('threw nothing in the pages', () => {
    assert.deepEqual(errors, [])
  })
})

/**
 * The framework bindings in headless Chromium, with the real frameworks
 * (React 19, Svelte 5, Vue 3) built as their users build them: React with
 * esbuild, Svelte and Vue with Vite and their official plugins. Each page
 * mounts the framework's example component (examples/<framework>/) three
 * times, against a real server: the snapshot shows, patches update the view,
 * the three share one stream, and unmounting every one of them closes it.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { build as esbuild } from 'esbuild'
import { build as viteBuild, type Plugin } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import vue from '@vitejs/plugin-vue'
import type { Browser, Page } from 'playwright-core'
import { applyPatch, type PatchOp } from '../src/client/index.ts'
import { createBroker, createHandler, publish, type Broker, type Handler } from '../src/index.ts'
import { bindingAliases } from './helpers/bindings.ts'
import { launchChromium, listenForPages, servePage } from './helpers/chromium.ts'
import { ROOT } from './helpers/package.ts'
import { until } from './helpers/server.ts'

const BUILD_TIMEOUT = { timeout: 180_000 }
const TIMEOUT = { timeout: 30_000 }
const WAIT = { timeout: 10_000 }

const example = (file: string): string => JSON.stringify(fileURLToPath(new URL(`../examples/${file}`, import.meta.url)))

/**
 * Each framework's page script: mount the example into every `.slot` with
 * the slot's topic, and let the test unmount one (`window.unmount(i)`) or
 * give it another topic (`window.retopic(i, topic)`, where the framework can
 * change a mounted component's props from outside).
 */
const FRAMEWORKS = [
  {
    name: 'React 19 (esbuild)',
    retopic: true,
    entry: `import { createElement } from 'react'
import { createRoot } from 'react-dom/client'
import { OrderCount } from ${example('react/OrderCount.tsx')}
const roots = [...document.querySelectorAll('.slot')].map((slot) => {
  const root = createRoot(slot)
  root.render(createElement(OrderCount, { topic: slot.dataset.topic }))
  return root
})
window.unmount = (i) => roots[i].unmount()
window.retopic = (i, topic) => roots[i].render(createElement(OrderCount, { topic }))
`,
    build: buildWithEsbuild,
  },
  {
    name: 'Svelte 5 (Vite, @sveltejs/vite-plugin-svelte)',
    retopic: false,
    entry: `import { mount, unmount } from 'svelte'
import OrderCount from ${example('svelte/OrderCount.svelte')}
const apps = [...document.querySelectorAll('.slot')].map((target) => mount(OrderCount, { target, props: { topic: target.dataset.topic } }))
window.unmount = (i) => unmount(apps[i])
`,
    build: (entry: string) => buildWithVite(entry, svelte()),
  },
  {
    name: 'Vue 3 (Vite, @vitejs/plugin-vue)',
    retopic: false,
    entry: `import { createApp } from 'vue'
import OrderCount from ${example('vue/OrderCount.vue')}
const apps = [...document.querySelectorAll('.slot')].map((slot) => {
  const app = createApp(OrderCount, { topic: slot.dataset.topic })
  app.mount(slot)
  return app
})
window.unmount = (i) => apps[i].unmount()
`,
    build: (entry: string) => buildWithVite(entry, vue()),
  },
] as const

const PAGE = `<!doctype html><meta charset="utf-8"><title>bindings</title>
<div class="slot" data-topic="orders"></div><div class="slot" data-topic="orders"></div><div class="slot" data-topic="orders"></div>
<script type="module" src="/client.js"></script>
`

/** React's users bundle with esbuild (or a tool over it): production React, the tsconfig's JSX. */
async function buildWithEsbuild(entry: string): Promise<string> {
  const result = await esbuild({
    stdin: { contents: entry, resolveDir: ROOT, loader: 'js', sourcefile: 'main.js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
    alias: bindingAliases(),
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  return result.outputFiles[0]?.text ?? ''
}

/** `vite build` of one entry, kept in memory; the entry is a virtual module so that it resolves from the repository. */
async function buildWithVite(entry: string, plugin: Plugin | Plugin[]): Promise<string> {
  const virtual: Plugin = {
    name: 'bindings-entry',
    resolveId: (id) => (id === 'virtual:bindings-entry' ? '\0bindings-entry' : undefined),
    load: (id) => (id === '\0bindings-entry' ? entry : undefined),
  }
  const output = await viteBuild({
    root: ROOT,
    configFile: false,
    logLevel: 'silent',
    plugins: [virtual, plugin],
    resolve: { alias: bindingAliases() },
    build: { write: false, minify: false, rollupOptions: { input: 'virtual:bindings-entry' } },
  })
  const results = Array.isArray(output) ? output : [output]
  const chunks = results.flatMap((result) => ('output' in result ? result.output : [])).filter((file) => file.type === 'chunk')
  assert.equal(chunks.length, 1, `one chunk: ${chunks.map((chunk) => chunk.fileName).join(', ')}`)
  return chunks[0]?.type === 'chunk' ? chunks[0].code : ''
}

describe('framework bindings in Chromium', { timeout: 600_000 }, () => {
  let browser: Browser

  before(async () => {
    ;({ browser } = await launchChromium())
  })

  after(async () => {
    await browser?.close()
  })

  for (const framework of FRAMEWORKS) {
    describe(framework.name, () => {
      let broker: Broker
      let handler: Handler
      let server: http.Server
      let page: Page
      const errors: string[] = []
      const states = new Map<string, unknown>([['orders', { count: 2, latest: 'tea' }], ['other', { count: 9, latest: 'pie' }]])
      // The server's state follows what it publishes, so that a snapshot is current.
      const change = (topic: string, ops: PatchOp[]): Promise<string> => {
        applyPatch(states.get(topic), ops)
        return publish(broker, topic, ops)
      }
      const texts = (): Promise<string[]> => page.$$eval('.slot', (slots) => slots.map((slot) => slot.textContent ?? ''))
      const showing = async (expected: string[], what: string): Promise<void> => {
        await page.waitForFunction((want) => JSON.stringify(Array.from(document.querySelectorAll('.slot'), (slot) => slot.textContent)) === want, JSON.stringify(expected), WAIT)
          .catch(async (error: unknown) => assert.fail(`${what}: the page shows ${JSON.stringify(await texts())}, not ${JSON.stringify(expected)} (${String(error)}; page errors: ${errors.join('; ')})`))
      }

      before(async () => {
        const bundle = await framework.build(framework.entry)
        assert.ok(bundle.length > 1000, 'the app was built')
        broker = createBroker()
        handler = createHandler({ broker, path: '/events', lingerMs: 0, snapshot: (_req, topic) => states.get(topic) ?? null })
        server = http.createServer((req, res) => handler(req, res, () => servePage(res, new URL(req.url ?? '/', 'http://x').pathname, PAGE, bundle)))
        const origin = await listenForPages(server)
        page = await browser.newPage()
        page.on('pageerror', (error) => errors.push(error.message))
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(message.text())
        })
        await page.goto(`${origin}/`)
      }, BUILD_TIMEOUT)

      after(async () => {
        await page?.close()
        await handler?.close()
        server?.closeAllConnections()
        await new Promise((resolve) => server?.close(resolve))
      })

      it('shows the snapshot in each of three components, which share one stream', TIMEOUT, async () => {
        await showing(Array(3).fill('2 orders, latest tea'), 'the snapshot')
        await until(() => handler.stats().connections === 1, 5000, 'one stream for the three components')
        assert.equal(handler.stats().topics, 1, 'one topic on it')
      })

      it('updates the view with each patch', TIMEOUT, async () => {
        await change('orders', [['replace', '/count', 3], ['replace', '/latest', 'jam']])
        await showing(Array(3).fill('3 orders, latest jam'), 'the first patch')
        await change('orders', [['replace', '/count', 4]])
        await showing(Array(3).fill('4 orders, latest jam'), 'the second patch')
        assert.equal(handler.stats().connections, 1, 'still one stream')
      })

      if (framework.retopic) {
        it('resubscribes when a component\'s topic changes', TIMEOUT, async () => {
          await page.evaluate(() => (window as unknown as { retopic(i: number, topic: string): void }).retopic(0, 'other'))
          await showing(['9 orders, latest pie', '4 orders, latest jam', '4 orders, latest jam'], 'the new topic\'s snapshot')
          await until(() => handler.stats().topics === 2, 5000, 'both topics on the stream')
          assert.equal(handler.stats().connections, 1, 'on the one stream')
          await change('other', [['replace', '/count', 10]])
          await showing(['10 orders, latest pie', '4 orders, latest jam', '4 orders, latest jam'], 'the new topic\'s patch')
          await page.evaluate(() => (window as unknown as { retopic(i: number, topic: string): void }).retopic(0, 'orders'))
          await showing(Array(3).fill('4 orders, latest jam'), 'back on the first topic')
          await until(() => handler.stats().topics === 1, 5000, 'the other topic dropped')
        })
      }

      it('keeps the stream while one component is mounted, and closes it when the last one unmounts', TIMEOUT, async () => {
        const unmount = (i: number) => page.evaluate((index) => (window as unknown as { unmount(i: number): void }).unmount(index), i)
        await unmount(0)
        await unmount(1)
        await change('orders', [['replace', '/count', 5]])
        await showing(['', '', '5 orders, latest jam'], 'the last component, still updated')
        assert.equal(handler.stats().connections, 1, 'the stream stays for the last component')
        await unmount(2)
        await until(() => handler.stats().connections === 0, 5000, 'the stream to close with the last component')
        assert.deepEqual(errors, [], 'no error in the page')
      })
    })
  }
})

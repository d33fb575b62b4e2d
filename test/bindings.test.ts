/**
 * The framework bindings under Node: their state (snapshot, patches applied
 * immutably, a failing patch, a reset, the server-rendered start), their
 * options and lifecycle, over a real server and a real EventSource
 * (`eventsource`); and server-side rendering of each framework's example
 * component, where there is no EventSource. The Svelte store and the Vue
 * ref run here as they are; React's hook needs a renderer, so its state
 * and lifecycle are tested in Chromium (test/bindings-browser.test.ts).
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { describe, it, type TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import { createElement } from 'react'
import { renderToString } from 'react-dom/server'
import { createServer as createVite } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import vue from '@vitejs/plugin-vue'
import { createSSRApp, effectScope, h, nextTick, ref, type Component } from 'vue'
import { renderToString as renderVue } from 'vue/server-renderer'
import type { EventSourceConstructor, PatchwireError, ResetReason, SubscriptionState } from '../src/client/index.ts'
import { createBroker, position, publish } from '../src/index.ts'
import { useLive as useLiveReact } from '../src/bindings/react.ts'
import { live, type LiveOptions } from '../src/bindings/svelte.ts'
import { useLive as useLiveVue } from '../src/bindings/vue.ts'
import { OrderCount } from '../examples/react/OrderCount.tsx'
import { bindingAliases } from './helpers/bindings.ts'
import { startServer, until } from './helpers/server.ts'

const TIMEOUT = { timeout: 20_000 }

interface Orders {
  count: number
  latest: string
  items: { id: number; name: string }[]
}

/** A server whose snapshot of each topic is `states.get(topic)`, and the options a binding needs to reach it. */
async function setup(t: TestContext) {
  const broker = createBroker()
  const states = new Map<string, Orders>()
  const server = await startServer(t, { broker, path: '/events', lingerMs: 0, snapshot: (_req, topic) => states.get(topic) ?? null })
  const errors: PatchwireError[] = []
  const options: LiveOptions<Orders> = { path: `${server.origin}/events`, EventSource, shareTabs: false, onError: (error) => errors.push(error) }
  return { broker, states, server, errors, options }
}

/** A store's values, as a component using `$store` sees them. */
function watchStore<State>(t: TestContext, store: { subscribe(run: (state: State | undefined) => void): () => void }) {
  const seen: (State | undefined)[] = []
  const unsubscribe = store.subscribe((state) => seen.push(state))
  t.after(unsubscribe)
  return { seen, unsubscribe, last: () => seen.at(-1) }
}

const ORDERS: Orders = { count: 2, latest: 'tea', items: [{ id: 1, name: 'tea' }, { id: 2, name: 'cake' }] }

describe('patchwire/svelte live()', () => {
  it('starts undefined, takes the snapshot, then a new object for each patch that shares what the patch did not touch', TIMEOUT, async (t) => {
    const { broker, states, server, errors, options } = await setup(t)
    states.set('orders', ORDERS)
    const store = watchStore(t, live<Orders>('orders', options))
    assert.deepEqual(store.seen, [undefined], 'a store gives its value at once: undefined before the snapshot')
    await until(() => store.seen.length === 2, 5000, 'the snapshot')
    const snapshot = store.last()
    assert.deepEqual(snapshot, ORDERS, 'the snapshot is the state')

    await publish(broker, 'orders', [['replace', '/count', 3], ['replace', '/latest', 'jam']])
    await until(() => store.seen.length === 3, 5000, 'the patch')
    const patched = store.last()
    assert.deepEqual(patched, { ...ORDERS, count: 3, latest: 'jam' }, 'the patch is applied')
    assert.notEqual(patched, snapshot, 'a new reference per change')
    assert.equal(patched?.items, snapshot?.items, 'the branch the patch did not touch is shared')
    assert.deepEqual(snapshot, ORDERS, 'the previous state is left as it was (immutable)')
    assert.equal(server.handler.stats().connections, 1, 'one stream')
    assert.deepEqual(errors, [], 'no error')
  })

  it('reports a patch that cannot apply to onError (ERR_PATCHWIRE_PATCH), keeps the state, and goes on with the next patch', TIMEOUT, async (t) => {
    const { broker, states, errors, options } = await setup(t)
    states.set('orders', ORDERS)
    const store = watchStore(t, live<Orders>('orders', options))
    await until(() => store.seen.length === 2, 5000, 'the snapshot')
    await publish(broker, 'orders', [['replace', '/count', 9], ['remove', '/missing']])
    await until(() => errors.length === 1, 5000, 'the error')
    assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_PATCH', `the patch's own error: ${errors[0]?.message}`)
    assert.equal(store.seen.length, 2, 'no new state for a patch that failed')
    assert.equal(store.last()?.count, 2, 'all or nothing: the op before the failed one is not applied either')
    await publish(broker, 'orders', [['replace', '/count', 4]])
    await until(() => store.seen.length === 3, 5000, 'the next patch')
    assert.equal(store.last()?.count, 4, 'the next patch applies to the state as it was')
  })

  it('without onError, logs a failed patch to console.error and does not throw', TIMEOUT, async (t) => {
    const { broker, states, options } = await setup(t)
    const { onError: _onError, ...quiet } = options
    const logged: unknown[][] = []
    t.mock.method(console, 'error', (...args: unknown[]) => logged.push(args))
    states.set('orders', ORDERS)
    const store = watchStore(t, live<Orders>('orders', quiet))
    await until(() => store.seen.length === 2, 5000, 'the snapshot')
    await publish(broker, 'orders', [['remove', '/missing']])
    await until(() => logged.length === 1, 5000, 'the log line')
    assert.match(String(logged[0]?.[0]), /ERR_PATCHWIRE_PATCH/, 'the log names the code')
  })

  it('a reset with a snapshot replaces the state, and onReset and onSnapshot still hear of it', TIMEOUT, async (t) => {
    const { states, errors, options } = await setup(t)
    states.set('orders', ORDERS)
    const resets: ResetReason[] = []
    const snapshots: unknown[] = []
    const stale: Orders = { count: 0, latest: 'stale', items: [] }
    // A position the server cannot resume from: it resets the topic and sends its snapshot.
    const store = watchStore(t, live<Orders>('orders', {
      ...options,
      initial: { state: stale, position: 'not-an-event-id' },
      onReset: (reason) => resets.push(reason),
      onSnapshot: (state) => snapshots.push(state),
    }))
    assert.equal(store.seen[0], stale, 'it starts from the initial state')
    await until(() => store.seen.length === 2, 5000, 'the snapshot after the reset')
    assert.deepEqual(store.last(), ORDERS, 'the snapshot replaced the state')
    assert.deepEqual(resets, ['malformed-id'], 'onReset is called with the reason')
    assert.deepEqual(snapshots, [ORDERS], 'onSnapshot is called with the snapshot')
    assert.deepEqual(errors, [], 'no error')
  })

  it('initial: starts from the server-rendered state, never undefined, and resumes from its position without a snapshot', TIMEOUT, async (t) => {
    const { broker, options } = await setup(t)
    // The server renders: position first, then the state.
    const at = await position(broker, 'orders')
    const rendered: Orders = { ...ORDERS, count: 5 }
    // Published between the render and the page's subscription: it must not be lost.
    await publish(broker, 'orders', [['replace', '/count', 6]])
    const snapshots: unknown[] = []
    const store = watchStore(t, live<Orders>('orders', { ...options, initial: { state: rendered, position: at }, onSnapshot: (state) => snapshots.push(state) }))
    assert.deepEqual(store.seen, [rendered], 'the first value is the rendered state, at once')
    await until(() => store.seen.length === 2, 5000, 'the patch published after the position')
    assert.equal(store.last()?.count, 6, 'the patch applies to the rendered state')
    await publish(broker, 'orders', [['replace', '/count', 7]])
    await until(() => store.seen.length === 3, 5000, 'a live patch')
    assert.deepEqual(store.seen.map((state) => state?.count), [5, 6, 7], 'no undefined, no gap, no repeat')
    assert.deepEqual(snapshots, [], 'no snapshot was needed')
  })

  it('subscribes with the first subscriber, shares one stream across stores of a path, and stops with the last unsubscribe', TIMEOUT, async (t) => {
    const { broker, states, server, options } = await setup(t)
    states.set('a', ORDERS)
    states.set('b', { ...ORDERS, count: 9 })
    const storeA = live<Orders>('a', options)
    const storeB = live<Orders>('b', options)
    assert.equal(server.handler.stats().connections, 0, 'making a store subscribes to nothing')
    const first = watchStore(t, storeA)
    const second = watchStore(t, storeA)
    const third = watchStore(t, storeB)
    await until(() => first.seen.length === 2 && second.seen.length === 2 && third.seen.length === 2, 5000, 'the snapshots')
    await until(() => server.handler.stats().connections === 1 && server.handler.stats().topics === 2, 5000, 'one stream with both topics')
    await publish(broker, 'a', [['replace', '/count', 3]])
    await until(() => first.seen.length === 3 && second.seen.length === 3, 5000, 'the patch, to both subscribers of the store')
    assert.equal(first.last(), second.last(), 'one state, shared')

    first.unsubscribe()
    third.unsubscribe()
    await publish(broker, 'a', [['replace', '/count', 4]])
    await until(() => second.last()?.count === 4, 5000, 'the store goes on for its remaining subscriber')
    second.unsubscribe()
    await until(() => server.handler.stats().connections === 0, 5000, 'the stream to close with the last subscriber')

    const again = watchStore(t, storeA)
    assert.equal(again.seen[0]?.count, 4, 'a new subscriber gets the last value at once')
    await until(() => again.seen.length === 2, 5000, 'a fresh snapshot on restart')
    assert.deepEqual(again.last(), ORDERS, 'the restart starts from the snapshot')
  })

  it('passes subscribe options through: EventSource, withCredentials, onStateChange', TIMEOUT, async (t) => {
    const { states, options } = await setup(t)
    states.set('orders', ORDERS)
    const inits: unknown[] = []
    const Recording = class extends EventSource {
      constructor(url: string | URL, init?: { withCredentials?: boolean }) {
        super(url, init)
        inits.push(init)
      }
    } as unknown as EventSourceConstructor
    const changes: SubscriptionState[] = []
    const store = watchStore(t, live<Orders>('orders', { ...options, EventSource: Recording, withCredentials: true, onStateChange: (state) => changes.push(state) }))
    await until(() => store.seen.length === 2, 5000, 'the snapshot')
    assert.deepEqual(inits, [{ withCredentials: true }], 'the given EventSource, with the credentials option')
    assert.deepEqual(changes, ['open'], 'onStateChange is called')
  })

  it('throws the TypeError of subscribe for a bad topic, on the first subscriber', () => {
    const store = live('', { path: 'http://127.0.0.1:1/events', EventSource: class {} as unknown as EventSourceConstructor })
    assert.throws(() => store.subscribe(() => {}), (error: unknown) => error instanceof TypeError && /topic must be a non-empty string/.test(error.message), 'the TypeError names the topic')
  })

  it('on the server (no EventSource): the initial state or undefined, nothing subscribed', () => {
    assert.equal(typeof (globalThis as { EventSource?: unknown }).EventSource, 'undefined', 'Node 20 has no global EventSource')
    const seen: unknown[] = []
    live('orders', { path: '/events' }).subscribe((state) => seen.push(state))()
    live('orders', { path: '/events', initial: { state: ORDERS, position: '1' } }).subscribe((state) => seen.push(state))()
    assert.deepEqual(seen, [undefined, ORDERS], 'undefined, then the initial state')
  })
})

describe('patchwire/vue useLive()', () => {
  it('is a shallow ref: undefined, the snapshot, a new object per patch; a changed topic resubscribes; the scope\'s end stops it', TIMEOUT, async (t) => {
    const { broker, states, server, options } = await setup(t)
    states.set('a', ORDERS)
    states.set('b', { ...ORDERS, count: 9 })
    const topic = ref('a')
    const scope = effectScope()
    t.after(() => scope.stop())
    const state = scope.run(() => useLiveVue<Orders>(topic, options))
    assert.ok(state !== undefined, 'the scope ran')
    assert.equal(state.value, undefined, 'undefined before the snapshot')
    await until(() => state.value !== undefined, 5000, 'the snapshot')
    const snapshot = state.value as Orders | undefined
    assert.deepEqual(snapshot, ORDERS, 'the snapshot')
    await publish(broker, 'a', [['replace', '/count', 3]])
    await until(() => state.value?.count === 3, 5000, 'the patch')
    assert.notEqual(state.value, snapshot, 'a new reference per change')
    assert.equal((state.value as Orders | undefined)?.items, snapshot?.items, 'the untouched branch is shared')

    topic.value = 'b'
    await nextTick()
    assert.equal(state.value, undefined, 'a changed topic shows nothing of the old one')
    await until(() => state.value?.count === 9, 5000, 'the new topic\'s snapshot')
    await until(() => server.handler.stats().topics === 1, 5000, 'the old topic to be dropped from the stream')
    await publish(broker, 'a', [['replace', '/count', 100]])
    await publish(broker, 'b', [['replace', '/count', 10]])
    await until(() => state.value?.count === 10, 5000, 'the new topic\'s patch')

    scope.stop()
    await until(() => server.handler.stats().connections === 0, 5000, 'the stream to close when the scope ends')
  })

  it('initial: the rendered state at once, then the patches after its position', TIMEOUT, async (t) => {
    const { broker, options } = await setup(t)
    const at = await position(broker, 'orders')
    await publish(broker, 'orders', [['replace', '/count', 6]])
    const scope = effectScope()
    t.after(() => scope.stop())
    const rendered = { ...ORDERS, count: 5 }
    const state = scope.run(() => useLiveVue<Orders>('orders', { ...options, initial: { state: rendered, position: at } }))
    assert.equal(state?.value, rendered, 'the rendered state, at once')
    await until(() => state?.value?.count === 6, 5000, 'the patch after the position')
  })

  it('reports a failing patch to onError and keeps the state', TIMEOUT, async (t) => {
    const { broker, states, errors, options } = await setup(t)
    states.set('orders', ORDERS)
    const scope = effectScope()
    t.after(() => scope.stop())
    const state = scope.run(() => useLiveVue<Orders>('orders', options))
    await until(() => state?.value !== undefined, 5000, 'the snapshot')
    const before = state?.value
    await publish(broker, 'orders', [['remove', '/items/7']])
    await until(() => errors.length === 1, 5000, 'the error')
    assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_PATCH', 'the patch error')
    assert.equal(state?.value, before, 'the state is kept')
  })
})

describe('server-side rendering (no EventSource)', () => {
  const example = (file: string): string => fileURLToPath(new URL(`../examples/${file}`, import.meta.url))

  it('React: renderToString of the example renders the loading state; with initial, the state', () => {
    assert.equal(renderToString(createElement(OrderCount, { topic: 'orders' })), '<p>Loading…</p>', 'the example renders before the snapshot')
    const WithInitial = () => {
      const state = useLiveReact<Orders>('orders', { path: '/events', initial: { state: ORDERS, position: '1' } })
      return createElement('p', null, `${state?.count} orders`)
    }
    assert.equal(renderToString(createElement(WithInitial)), '<p>2 orders</p>', 'the initial state is rendered')
  })

  describe('Svelte and Vue, loaded through Vite as SvelteKit and Nuxt load them', () => {
    async function loader(t: TestContext) {
      const vite = await createVite({
        configFile: false,
        logLevel: 'silent',
        appType: 'custom',
        server: { middlewareMode: true, watch: null, hmr: false, ws: false },
        plugins: [svelte(), vue()],
        resolve: { alias: bindingAliases() },
      })
      t.after(() => vite.close())
      return vite
    }

    it('Svelte: the example renders the loading state and does not throw', TIMEOUT, async (t) => {
      const vite = await loader(t)
      // Svelte's server renderer from the same module graph as the component, as SvelteKit has it.
      const { render } = await vite.ssrLoadModule('svelte/server') as typeof import('svelte/server')
      const { default: OrderCountSvelte } = await vite.ssrLoadModule(example('svelte/OrderCount.svelte')) as { default: Parameters<typeof render>[0] }
      const { body } = render(OrderCountSvelte, { props: { topic: 'orders' } } as Parameters<typeof render>[1])
      assert.match(body, /<p>Loading…<\/p>/, `the loading state: ${body}`)
    })

    it('Vue: the example renders the loading state and does not throw', TIMEOUT, async (t) => {
      const vite = await loader(t)
      const { default: OrderCountVue } = await vite.ssrLoadModule(example('vue/OrderCount.vue')) as { default: Component }
      const html = await renderVue(createSSRApp({ render: () => h(OrderCountVue, { topic: 'orders' }) }))
      assert.match(html, /<p>Loading…<\/p>/, `the loading state: ${html}`)
    })
  })
})

/**
 * The shared stream of a page, driven frame by frame: a scripted
 * EventSource records every URL the client opens and replays the wire
 * format of the server (patch, snapshot, reset, ready; one topic or several).
 */
import assert from 'node:assert/strict'
import { describe, it, mock, type TestContext } from 'node:test'
import { subscribe, type PatchOp, type PatchwireError, type ResetReason, type SubscribeOptions, type Subscription, type SubscriptionState } from '../src/client/index.ts'

/** Lets the microtasks (the stream's batch) and one turn of I/O run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

type Listener = (event: MessageEvent<string>) => void

/** An EventSource whose frames the test writes; every instance is kept in `sources`. */
function scripted(): { EventSource: new (url: string, init?: { withCredentials?: boolean }) => Scripted; sources: Scripted[] } {
  const sources: Scripted[] = []
  class Source extends Scripted {
    constructor(url: string, init?: { withCredentials?: boolean }) {
      super(url, init)
      sources.push(this)
    }
  }
  return { EventSource: Source, sources }
}

class Scripted {
  readyState = 0
  lastEventId = ''
  closed = false
  readonly url: string
  readonly init: { withCredentials?: boolean } | undefined
  readonly #listeners = new Map<string, Listener[]>()
  constructor(url: string, init?: { withCredentials?: boolean }) {
    this.url = url
    this.init = init
  }
  addEventListener(type: string, listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener])
  }
  close(): void {
    this.readyState = 2
    this.closed = true
  }
  get topics(): string[] {
    return new URL(this.url, 'http://x').searchParams.getAll('topic')
  }
  /** The `lastEventId` query parameter, `null` for a fresh stream. */
  get from(): string | null {
    return new URL(this.url, 'http://x').searchParams.get('lastEventId')
  }
  #fire(type: string, data = '', id?: string, message?: string): void {
    assert.ok(!this.closed, `a frame on a closed source ${this.url}`)
    if (id !== undefined) this.lastEventId = id
    const event = { type, data, lastEventId: this.lastEventId, ...(message === undefined ? {} : { message }) }
    for (const listener of this.#listeners.get(type) ?? []) listener(event as unknown as MessageEvent<string>)
  }
  // The data of a frame: the topic line first on a stream of several topics.
  #data(topic: string, body: string): string {
    return this.topics.length > 1 ? `${JSON.stringify(topic)}\n${body}` : body
  }
  open(): void {
    this.readyState = 1
    this.#fire('open')
  }
  patch(id: string, topic: string, ops: PatchOp[]): void {
    this.#fire('patch', this.#data(topic, JSON.stringify(ops)), id)
  }
  raw(type: string, data: string, id?: string): void {
    this.#fire(type, data, id)
  }
  snapshot(topic: string, state: unknown): void {
    this.#fire('snapshot', this.#data(topic, JSON.stringify(state)))
  }
  reset(reason: ResetReason, topic?: string, id?: string): void {
    this.#fire('reset', JSON.stringify(this.topics.length > 1 ? { reason, topic } : { reason }), id)
  }
  ready(id: string): void {
    this.#fire('ready', id, id)
  }
  drop(): void {
    this.readyState = 0
    this.#fire('error')
  }
  refuse(): void {
    this.readyState = 2
    this.#fire('error', '', undefined, 'Non-200 status code (403)')
  }
}

interface Probe {
  stop: Subscription
  /** `<topic>:<id>` of each patch, in order, and its ops. */
  got: string[]
  ops: PatchOp[][]
  snapshots: unknown[]
  resets: ResetReason[]
  states: SubscriptionState[]
  errors: PatchwireError[]
}

let paths = 0
/** A path no other test uses: hubs live as long as the module. */
const freshPath = (): string => `/stream-${++paths}`

function probe(t: TestContext, topic: string, options: SubscribeOptions): Probe {
  const p: Omit<Probe, 'stop'> = { got: [], ops: [], snapshots: [], resets: [], states: [], errors: [] }
  const stop = subscribe(
    topic,
    (ops, meta) => {
      assert.equal(meta.topic, topic, `a patch of ${meta.topic} reaches only the subscribers of ${topic}`)
      p.got.push(`${meta.topic}:${meta.id}`)
      p.ops.push(ops)
    },
    { onError: (error) => p.errors.push(error), onStateChange: (state) => p.states.push(state), ...options },
  )
  t.after(stop)
  return { stop, ...p }
}

const op = (n: number): PatchOp[] => [['replace', '/n', n]]

describe('the shared stream of a page', () => {
  describe('batches', () => {
    it('opens ONE EventSource for every topic subscribed in the same tick, each topic percent-encoded', async (t) => {
      const { EventSource, sources } = scripted()
      const path = `${freshPath()}?x=1#frag`
      for (const topic of ['a', 'b c', 'ü&d=1', 'a']) probe(t, topic, { path, EventSource })
      assert.equal(sources.length, 0, 'nothing opens before the end of the tick')
      await tick()
      assert.equal(sources.length, 1, 'one EventSource for the whole tick')
      assert.equal(sources[0]?.url, `${path.slice(0, -5)}&topic=a&topic=b%20c&topic=%C3%BC%26d%3D1`, 'the URL keeps the query, drops the fragment and adds each topic once, percent-encoded')
      assert.deepEqual(sources[0]?.topics, ['a', 'b c', 'ü&d=1'], 'the stream carries each topic once, in order')
      assert.equal(sources[0]?.from, null, 'a first stream starts fresh')
    })

    it('reopens once per batch from the last id seen when topics come and go; the others lose and repeat nothing', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      const b = probe(t, 'b', { path, EventSource })
      await tick()
      const first = sources[0] as Scripted
      first.open()
      first.ready('e-1')
      first.patch('e-2', 'a', op(1))
      first.patch('e-3', 'b', op(1))

      const c = probe(t, 'c', { path, EventSource })
      const d = probe(t, 'd', { path, EventSource })
      await tick()
      assert.equal(sources.length, 2, 'one reopen for two new topics')
      assert.ok(first.closed, 'the reopen closes the first stream')
      const second = sources[1] as Scripted
      assert.deepEqual(second.topics, ['a', 'b', 'c', 'd'], `the reopen carries the old and the new topics: ${second.topics.join()}`)
      assert.equal(second.from, 'e-3', 'the reopen starts from the last id seen')
      second.open()
      second.patch('e-4', 'a', op(2))
      second.patch('e-5', 'c', op(2))
      second.ready('e-5')
      second.patch('e-6', 'd', op(3))

      b.stop()
      d.stop()
      await tick()
      assert.equal(sources.length, 3, 'one reopen for two stops')
      const third = sources[2] as Scripted
      assert.deepEqual([third.topics, third.from], [['a', 'c'], 'e-6'], `the third stream carries a and c from e-6: ${third.url}`)
      third.patch('e-7', 'a', op(3))

      assert.deepEqual(a.got, ['a:e-2', 'a:e-4', 'a:e-7'], `a gets each of its patches once, in order, across both reopens: ${a.got.join()}`)
      assert.deepEqual(b.got, ['b:e-3'], `b gets its patch before its stop, once: ${b.got.join()}`)
      assert.deepEqual(c.got, ['c:e-5'], `c gets its patch once, in order: ${c.got.join()}`)
      assert.deepEqual(d.got, ['d:e-6'], `d gets its patch before its stop, once: ${d.got.join()}`)
      assert.deepEqual(a.states, ['open'], 'a reopen is not a drop')
      assert.deepEqual(c.states, ['open'], `a reopen is not a drop for c either: ${c.states.join()}`)

      a.stop()
      c.stop()
      await tick()
      assert.ok(third.closed, 'the stream closes once no topic of it is wanted')
      assert.equal(sources.length, 3, 'the last stop closes the stream')
    })

    it('adds a subscription to a topic the stream carries without reopening it', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const one = probe(t, 'a', { path, EventSource })
      await tick()
      const source = sources[0] as Scripted
      source.open()
      source.ready('e-1')
      const two = probe(t, 'a', { path, EventSource })
      await tick()
      assert.equal(sources.length, 1, 'a topic the stream carries opens no second stream')
      assert.equal(two.stop.state, 'open', 'the new subscription is open at once')
      source.patch('e-2', 'a', op(1))
      one.stop()
      await tick()
      assert.equal(sources.length, 1, 'the topic still has a subscriber')
      source.patch('e-3', 'a', op(2))
      assert.deepEqual(one.got, ['a:e-2'], `the stopped subscription got only the patch before its stop: ${one.got.join()}`)
      assert.deepEqual(two.got, ['a:e-2', 'a:e-3'], `the remaining subscription gets both patches: ${two.got.join()}`)
    })

    it('keeps paths and credentials apart', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      probe(t, 'a', { path, EventSource })
      probe(t, 'b', { path, EventSource, withCredentials: true })
      probe(t, 'c', { path: `${path}-other`, EventSource })
      await tick()
      assert.deepEqual(sources.map((source) => [source.topics, source.init?.withCredentials]), [[['a'], false], [['b'], true], [['c'], false]], 'a stream for each path and credentials mode')
    })
  })

  describe('frames', () => {
    it('routes frames of a stream of several topics to each topic only, with the id and topic', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      const b = probe(t, 'b"\n', { path, EventSource })
      await tick()
      const source = sources[0] as Scripted
      source.open()
      source.patch('e-1', 'b"\n', op(1))
      source.patch('e-2', 'a', [['add', '/l/-', { x: '"\n' }]])
      assert.deepEqual(a.got, ['a:e-2'], `a gets only its own patch, with its id: ${a.got.join()}`)
      assert.deepEqual(a.ops, [[['add', '/l/-', { x: '"\n' }]]], 'the ops of a arrive as sent, newline and quote included')
      assert.deepEqual(b.got, ['b"\n:e-1'], `b gets only its own patch, under its topic with a quote and newline: ${JSON.stringify(b.got)}`)
    })

    it('reports frames that name no topic of the stream, or carry no ops, as ERR_PATCHWIRE_FRAME and goes on', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      const b = probe(t, 'b', { path, EventSource })
      await tick()
      const source = sources[0] as Scripted
      source.raw('patch', '[["replace","/n",1]]', 'e-1')
      source.raw('patch', '"zzz"\n[["replace","/n",1]]', 'e-2')
      source.raw('patch', '"a\n[]', 'e-3')
      source.raw('patch', '"a"\n{"op":"add"}', 'e-4')
      source.raw('snapshot', '{}')
      source.patch('e-5', 'b', op(5))
      assert.deepEqual(a.errors.map((error) => error.code), ['ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME', 'ERR_PATCHWIRE_FRAME'], `a gets one ERR_PATCHWIRE_FRAME per bad frame: ${a.errors.map((error) => error.message).join(' | ')}`)
      assert.equal(b.errors.length, 4, 'the bad ops of a were only reported to a')
      assert.match(b.errors[3]?.message ?? '', /bad snapshot frame on .*: \{\}$/, `the snapshot frame without a topic line is reported to every topic: ${b.errors[3]?.message}`)
      assert.deepEqual(b.got, ['b:e-5'], `b still gets its good patch after the bad frames: ${b.got.join()}`)
    })
  })

  describe('lastEventId', () => {
    it('starts a first stream at the oldest lastEventId; each topic skips what it already has', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource, lastEventId: 'e-5' })
      const b = probe(t, 'b', { path, EventSource, lastEventId: 'e-3' })
      await tick()
      const source = sources[0] as Scripted
      assert.equal(source.from, 'e-3', 'the first stream starts at the oldest lastEventId of its topics')
      for (const [id, topic] of [['e-4', 'a'], ['e-4', 'b'], ['e-5', 'a'], ['e-6', 'a'], ['e-7', 'b']] as const) source.patch(id, topic, op(1))
      source.ready('e-7')
      source.patch('e-8', 'a', op(1))
      assert.deepEqual(a.got, ['a:e-6', 'a:e-8'], `a skips up to its own lastEventId e-5: ${a.got.join()}`)
      assert.deepEqual(b.got, ['b:e-4', 'b:e-7'], `b gets every patch after its lastEventId e-3: ${b.got.join()}`)
    })

    it('joins a positioned stream with a later lastEventId, skipping up to it', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      probe(t, 'a', { path, EventSource })
      await tick()
      ;(sources[0] as Scripted).ready('e-2')
      const b = probe(t, 'b', { path, EventSource, lastEventId: 'e-4' })
      await tick()
      const second = sources[1] as Scripted
      assert.deepEqual([second.topics, second.from], [['a', 'b'], 'e-2'], `the reopen with b starts at the position of the stream, e-2: ${second.url}`)
      second.patch('e-3', 'b', op(3))
      second.patch('e-4', 'b', op(4))
      second.patch('e-5', 'b', op(5))
      assert.deepEqual(b.got, ['b:e-5'], `b skips up to its own lastEventId e-4: ${b.got.join()}`)
    })

    it('brings an older lastEventId to the stream with a catch-up stream, then merges it: nothing lost or repeated', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      await tick()
      const main = sources[0] as Scripted
      main.open()
      main.ready('e-10')
      const b = probe(t, 'b', { path, EventSource, lastEventId: 'e-4' })
      await tick()
      assert.equal(sources.length, 2, 'a catch-up stream opens beside the main one')
      const catchUp = sources[1] as Scripted
      assert.deepEqual([catchUp.topics, catchUp.from], [['b'], 'e-4'], 'the main stream does not go back for b')
      assert.ok(!main.closed, 'the main stream stays open while the catch-up runs')
      catchUp.open()
      catchUp.patch('e-6', 'b', op(6))
      main.patch('e-11', 'a', op(11))
      catchUp.patch('e-12', 'b', op(12))
      catchUp.ready('e-12')
      assert.ok(catchUp.closed, 'the catch-up closes at its ready')
      main.patch('e-13', 'a', op(13))
      await tick()
      assert.equal(sources.length, 3, 'one merged stream opens after the catch-up')
      const merged = sources[2] as Scripted
      assert.ok(main.closed, 'the merged stream replaces the main one, which is closed')
      assert.deepEqual([merged.topics, merged.from], [['a', 'b'], 'e-12'], `the merged stream carries a and b from the catch-up's ready, e-12: ${merged.url}`)
      merged.patch('e-13', 'a', op(13))
      merged.patch('e-14', 'b', op(14))
      merged.ready('e-14')
      assert.deepEqual(a.got, ['a:e-11', 'a:e-13'], `a gets each patch once across the merge: ${a.got.join()}`)
      assert.deepEqual(b.got, ['b:e-6', 'b:e-12', 'b:e-14'], `b gets each patch once across the catch-up and the merge: ${b.got.join()}`)
    })

    it('lets a catch-up behind the main stream pull it back a little, each reader skipping what it has', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      await tick()
      const main = sources[0] as Scripted
      main.ready('e-10')
      const b = probe(t, 'b', { path, EventSource, lastEventId: 'e-9' })
      await tick()
      const catchUp = sources[1] as Scripted
      catchUp.ready('e-11')
      main.patch('e-12', 'a', op(12))
      main.patch('e-13', 'a', op(13))
      await tick()
      const merged = sources[2] as Scripted
      assert.deepEqual([merged.topics, merged.from], [['a', 'b'], 'e-11'], `the merged stream starts at the catch-up's ready, e-11, behind the main stream: ${merged.url}`)
      merged.patch('e-12', 'a', op(12))
      merged.patch('e-12', 'b', op(12))
      merged.patch('e-13', 'a', op(13))
      merged.patch('e-14', 'a', op(14))
      assert.deepEqual(a.got, ['a:e-12', 'a:e-13', 'a:e-14'], `a skips nothing it lacks and repeats nothing it has: ${a.got.join()}`)
      assert.deepEqual(b.got, ['b:e-12'], `b gets the patch after its catch-up's ready once: ${b.got.join()}`)
    })

    it('sends a lastEventId of another epoch to a catch-up of its own: the server decides', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      probe(t, 'a', { path, EventSource })
      await tick()
      ;(sources[0] as Scripted).ready('new-3')
      const b = probe(t, 'b', { path, EventSource, lastEventId: 'old-900', onReset: (reason) => b.resets.push(reason) })
      await tick()
      const catchUp = sources[1] as Scripted
      assert.deepEqual([catchUp.topics, catchUp.from], [['b'], 'old-900'], `the foreign lastEventId goes to a catch-up of b alone: ${catchUp.url}`)
      catchUp.reset('foreign-id')
      catchUp.ready('new-4')
      await tick()
      assert.deepEqual(b.resets, ['foreign-id'], `b is reset as the server says: ${b.resets.join()}`)
      assert.deepEqual([sources[2]?.topics, sources[2]?.from], [['a', 'b'], 'new-3'], `the merge starts at the main stream's position: ${sources[2]?.url}`)
    })
  })

  describe('snapshots and resets', () => {
    it('gives each subscriber its own copy of a fresh stream\'s snapshot, then the patches', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const states: { n: number }[] = []
      const onSnapshot = (state: unknown, meta: { topic: string }): void => {
        assert.equal(meta.topic, 'a', `the snapshot is handed to the subscribers of its topic, a, not ${meta.topic}`)
        states.push(state as { n: number })
      }
      const one = probe(t, 'a', { path, EventSource, onSnapshot })
      const two = probe(t, 'a', { path, EventSource, onSnapshot })
      await tick()
      const source = sources[0] as Scripted
      assert.equal(source.from, null, 'a fresh stream asks for no lastEventId')
      source.snapshot('a', { n: 1 })
      source.ready('e-1')
      source.patch('e-2', 'a', op(2))
      assert.deepEqual(states, [{ n: 1 }, { n: 1 }], `each subscriber gets the snapshot once: ${JSON.stringify(states)}`)
      assert.notEqual(states[0], states[1], 'each subscriber gets its own copy of the snapshot')
      assert.deepEqual([one.got, two.got], [['a:e-2'], ['a:e-2']], 'both subscribers get the patch after the snapshot')
    })

    it('gets a snapshot for a topic added to a positioned stream from a fresh catch-up stream', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const snapshots: unknown[] = []
      const a = probe(t, 'a', { path, EventSource, onSnapshot: () => snapshots.push('a') })
      await tick()
      const main = sources[0] as Scripted
      main.snapshot('a', {})
      main.ready('e-1')
      const late = probe(t, 'a', { path, EventSource, onSnapshot: (state) => snapshots.push(state) })
      await tick()
      const catchUp = sources[1] as Scripted
      assert.deepEqual([catchUp.topics, catchUp.from], [['a'], null], `the late subscriber's catch-up is a fresh stream of a alone: ${catchUp.url}`)
      catchUp.snapshot('a', { late: true })
      main.patch('e-2', 'a', op(2))
      catchUp.ready('e-2')
      await tick()
      assert.deepEqual(snapshots, ['a', { late: true }], 'the first subscriber got no second snapshot')
      assert.equal(sources.length, 2, 'at the position of the stream, on a topic it carries: no reopen')
      main.patch('e-3', 'a', op(3))
      assert.deepEqual(a.got, ['a:e-2', 'a:e-3'], `the first subscriber gets every patch once: ${a.got.join()}`)
      assert.deepEqual(late.got, ['a:e-3'], `the late subscriber gets the patches after its catch-up's ready: ${late.got.join()}`)
    })

    it('with onSnapshot: a reset goes to onReset, then the snapshot replaces the state, and nothing reloads', async (t) => {
      const reloads: number[] = []
      Object.defineProperty(globalThis, 'location', { value: { reload: () => reloads.push(1) }, configurable: true })
      t.after(() => delete (globalThis as { location?: unknown }).location)
      const { EventSource, sources } = scripted()
      const path = `http://127.0.0.1${freshPath()}`
      const seen: string[] = []
      const a = probe(t, 'a', { path, EventSource, onSnapshot: (state) => seen.push(`snapshot ${JSON.stringify(state)}`), onReset: (reason) => seen.push(`reset ${reason}`) })
      const quiet = probe(t, 'a', { path, EventSource, onSnapshot: (state) => seen.push(`quiet ${JSON.stringify(state)}`) })
      const b = probe(t, 'b', { path, EventSource, onReset: (reason) => seen.push(`b ${reason}`) })
      await tick()
      const source = sources[0] as Scripted
      source.ready('e-1')
      source.reset('history-exceeded', 'a', 'e-7')
      source.snapshot('a', { n: 7 })
      source.patch('e-8', 'a', op(8))
      source.patch('e-9', 'b', op(9))
      assert.deepEqual(seen, ['reset history-exceeded', 'snapshot {"n":7}', 'quiet {"n":7}'], `onReset first, then the snapshot to each subscriber of a: ${seen.join(' | ')}`)
      assert.deepEqual(reloads, [], 'a reset with onSnapshot reloads nothing')
      assert.deepEqual([a.got, quiet.got, b.got], [['a:e-8'], ['a:e-8'], ['b:e-9']], 'each subscriber gets the patches after the reset')
      assert.deepEqual(a.errors, [], `no error for a handled reset: ${a.errors.map((error) => error.message).join(' | ')}`)
    })

    it('without onSnapshot or onReset: one reload for a reset in a browser, ERR_PATCHWIRE_RESET elsewhere', async (t) => {
      const { EventSource, sources } = scripted()
      const path = `http://127.0.0.1${freshPath()}`
      const elsewhere = probe(t, 'a', { path, EventSource })
      await tick()
      ;(sources[0] as Scripted).reset('broker-gap')
      assert.deepEqual(elsewhere.errors.map((error) => error.code), ['ERR_PATCHWIRE_RESET'], `a reset without onSnapshot or onReset is ERR_PATCHWIRE_RESET outside a browser: ${elsewhere.errors.map((error) => error.message).join(' | ')}`)
      assert.match(elsewhere.errors[0]?.message ?? '', /reset a \(broker-gap\); give onReset or onSnapshot/, `the error names the topic and reason: ${elsewhere.errors[0]?.message}`)

      const reloads: number[] = []
      Object.defineProperty(globalThis, 'location', { value: { reload: () => reloads.push(1) }, configurable: true })
      t.after(() => delete (globalThis as { location?: unknown }).location)
      probe(t, 'a', { path, EventSource })
      probe(t, 'b', { path, EventSource })
      await tick()
      const source = sources[1] as Scripted
      source.reset('foreign-id', 'a')
      assert.deepEqual(reloads, [1], 'once for the two subscribers of a')
      source.reset('foreign-id', 'b')
      assert.deepEqual(reloads, [1, 1], 'a second reload for the reset of b')
    })

    it('resets every topic for a reset that names none', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource, onReset: (reason) => a.resets.push(reason) })
      const b = probe(t, 'b', { path, EventSource, onReset: (reason) => b.resets.push(reason) })
      await tick()
      ;(sources[0] as Scripted).raw('reset', '{"reason":"malformed-id"}')
      assert.deepEqual([a.resets, b.resets], [['malformed-id'], ['malformed-id']], 'a reset without a topic reaches every topic')
    })

    it('resumes a subscriber reset before its snapshot came with a fresh catch-up, not from the stream position', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const snapshots: unknown[] = []
      probe(t, 'a', { path, EventSource, onSnapshot: (state) => snapshots.push(state) })
      await tick()
      const main = sources[0] as Scripted
      main.snapshot('a', 1)
      main.ready('e-1')
      main.reset('broker-gap', 'a', 'e-5')
      // A subscribe in the same turn, before the snapshot frame is dispatched.
      probe(t, 'b', { path, EventSource })
      await tick()
      const catchUp = sources.find((source) => source.topics.join() === 'a' && source.from === null && source !== main)
      assert.ok(catchUp, `a fresh catch-up for a: ${sources.map((source) => source.url).join(' ')}`)
      catchUp.snapshot('a', 2)
      assert.deepEqual(snapshots, [1, 2], `the reset subscriber gets the catch-up's snapshot after the first: ${JSON.stringify(snapshots)}`)
    })
  })

  describe('refusals and drops', () => {
    it('refuses only the new topic when a stream of accepted topics is refused with it', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      await tick()
      ;(sources[0] as Scripted).open()
      ;(sources[0] as Scripted).ready('e-1')
      const secret = probe(t, 'secret', { path, EventSource })
      const other = probe(t, 'other', { path, EventSource })
      await tick()
      const both = sources[1] as Scripted
      assert.deepEqual(both.topics, ['a', 'secret', 'other'], `the reopen carries the accepted and the new topics: ${both.topics.join()}`)
      both.refuse()
      await tick()
      const retried = sources.slice(2).map((source) => [source.topics.join(), source.from])
      assert.deepEqual(retried.sort(), [['a', 'e-1'], ['other', null], ['secret', null]], `after the refusal each new topic retries alone, fresh, and a from its position: ${JSON.stringify(retried)}`)
      const alone = (topic: string): Scripted => sources.find((source) => source.topics.join() === topic && source !== both) as Scripted
      alone('secret').refuse()
      alone('other').open()
      alone('other').ready('e-2')
      await tick()
      assert.equal(secret.stop.state, 'closed', 'the refused topic is closed')
      assert.deepEqual(secret.states, ['closed'], `the refused topic goes straight to closed: ${secret.states.join()}`)
      assert.deepEqual(secret.errors.map((error) => error.code), ['ERR_PATCHWIRE_REFUSED'], `the refused topic gets ERR_PATCHWIRE_REFUSED once: ${secret.errors.map((error) => error.message).join(' | ')}`)
      assert.match(secret.errors[0]?.message ?? '', /refused the stream .*topic=secret.*403/, `the refusal names the stream of secret and its status: ${secret.errors[0]?.message}`)
      assert.deepEqual(a.errors, [], `the accepted topic gets no error: ${a.errors.map((error) => error.message).join(' | ')}`)
      assert.equal(a.stop.state, 'open', 'the accepted topic stays open')
      const last = sources.at(-1) as Scripted
      assert.deepEqual([last.topics, last.from], [['a', 'other'], 'e-1'], `the accepted topics come back together on one stream from e-1: ${last.url}`)
      assert.deepEqual(other.errors, [], `the topic accepted alone gets no error: ${other.errors.map((error) => error.message).join(' | ')}`)
    })

    it('refuses every subscriber of a refused stream whose topics all were accepted before', async (t) => {
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const a = probe(t, 'a', { path, EventSource })
      const b = probe(t, 'b', { path, EventSource })
      await tick()
      const source = sources[0] as Scripted
      source.open()
      source.drop()
      source.refuse()
      await tick()
      assert.equal(sources.length, 1, 'a refused stream of accepted topics is not retried')
      assert.deepEqual([a.stop.state, b.stop.state], ['closed', 'closed'], 'every subscriber of the refused stream is closed')
      assert.deepEqual(a.states, ['open', 'connecting', 'closed'], `a goes through connecting to closed: ${a.states.join()}`)
      assert.match(a.errors.at(-1)?.message ?? '', /refused the stream .*: Non-200 status code \(403\) \(2 topics: over maxTopics\?\)$/, `the refusal names the status and hints at maxTopics: ${a.errors.at(-1)?.message}`)
    })

    it('reports an EventSource constructor that throws as ERR_PATCHWIRE_REFUSED, out of the microtask', async (t) => {
      const boom = new SyntaxError('no such URL')
      class Throwing {
        readyState = 0
        constructor() {
          throw boom
        }
        addEventListener(): void {}
        close(): void {}
      }
      const p = probe(t, 'a', { path: freshPath(), EventSource: Throwing })
      await tick()
      await tick()
      assert.equal(p.stop.state, 'closed', 'a constructor that throws closes the subscription')
      assert.deepEqual(p.errors.map((error) => error.code), ['ERR_PATCHWIRE_REFUSED'], `a constructor that throws is ERR_PATCHWIRE_REFUSED: ${p.errors.map((error) => error.message).join(' | ')}`)
      assert.match(p.errors[0]?.message ?? '', /could not be opened: SyntaxError: no such URL/, `the refusal carries the thrown error: ${p.errors[0]?.message}`)
    })

    it('keeps a drop off the console by default: only the state says connecting; a given onError gets ERR_PATCHWIRE_DISCONNECTED', async (t) => {
      const logged: unknown[][] = []
      mock.method(console, 'error', (...args: unknown[]) => logged.push(args))
      t.after(() => mock.restoreAll())
      const { EventSource, sources } = scripted()
      const path = freshPath()
      const states: SubscriptionState[] = []
      t.after(subscribe('a', () => {}, { path, EventSource, onStateChange: (state) => states.push(state) }))
      const loud = probe(t, 'a', { path, EventSource })
      await tick()
      const source = sources[0] as Scripted
      source.open()
      source.drop()
      source.drop()
      source.open()
      assert.deepEqual(states, ['open', 'connecting', 'open'], `a drop only shows in the state: ${states.join()}`)
      assert.deepEqual(logged, [], `a drop writes nothing to the console: ${JSON.stringify(logged)}`)
      assert.deepEqual(loud.errors.map((error) => error.code), ['ERR_PATCHWIRE_DISCONNECTED', 'ERR_PATCHWIRE_DISCONNECTED'], `a given onError gets each drop: ${loud.errors.map((error) => error.message).join(' | ')}`)
      source.raw('patch', 'nope', 'e-1')
      assert.equal(logged.length, 1, 'other errors still reach the console')
      assert.match(String(logged[0]?.[0]), /ERR_PATCHWIRE_FRAME/, `the console gets the frame error: ${String(logged[0]?.[0])}`)
    })
  })
})

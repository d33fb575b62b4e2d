/**
 * Access that ends (issue 22), over real sockets: `authorize` → `{ until }`
 * (expiry with a spread `retry:`, and an exact resume by a real
 * EventSource), `identify` and `maxStreamsPerIdentity` (429), `revoke` and
 * `handler.revoke` (the `revoked` frames, then the end), on both handlers,
 * and every error path.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import {
  createBroker, createFetchHandler, createHandler, publish, revoke,
  type Broker, type BrokerListener, type FetchHandler, type NodeRequest, type PatchwireError,
} from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'
import { openRaw, openStream, type SseClient } from './helpers/sse-client.ts'
import { SseBody } from './fixtures/runtimes/sse-body.ts'
import { clientAddress } from '../examples/access/per-ip.ts'

/** The user a request says it is: `?user=` (a stand-in for a session cookie). */
function userOf(req: NodeRequest): string | undefined {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined
}

/** Opens a stream of several topics (and a query of its own) and waits until it is ready or refused. */
async function openTopics(t: TestContext, port: number, topics: readonly string[], query = ''): Promise<SseClient> {
  const client = await openRaw(t, port, `/?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}${query}`)
  await until(() => client.named('ready').length > 0 || client.closed || (client.response?.status ?? 200) !== 200, 5000, `the stream on ${topics.join(', ')}`)
  return client
}

function revokedTopics(client: SseClient): unknown[] {
  return client.named('revoked').map((event) => JSON.parse(event.data) as unknown)
}

/** A broker with the two required methods only: no history, no revocation capability. */
function minimalBroker(): Broker {
  const listeners = new Map<string, Set<BrokerListener>>()
  return {
    publish(topic, payload) {
      for (const listener of listeners.get(topic) ?? []) listener(payload)
      return Promise.resolve()
    },
    subscribe(topic, listener) {
      const set = listeners.get(topic) ?? new Set()
      listeners.set(topic, set.add(listener))
      return () => set.delete(listener)
    },
  }
}

describe('authorize → { until }', () => {
  it('ends a stream when its earliest until passes, with a retry: spread around retryMs, and counts it', async (t) => {
    const broker = createBroker()
    let until0 = 0
    const server = await startServer(t, {
      broker, retryMs: 2000,
      authorize: (_req, topic) => (topic === 'soon' ? { until: (until0 = Date.now() + 300) } : { until: new Date(Date.now() + 60_000) }),
    })
    const client = await openTopics(t, server.port, ['soon', 'later'])
    assert.equal(client.response?.status, 200, 'an until in the future authorizes')
    await client.waitForClose(5000)
    assert.ok(Date.now() >= until0, 'the stream ended no earlier than its until')
    assert.equal(client.retries.length, 2, `one retry: on open and one at the end: ${JSON.stringify(client.raw)}`)
    const last = client.retries[1] as number
    assert.ok(last >= 1500 && last <= 2500, `the end's retry ${last} is within 0.75–1.25 × retryMs`)
    assert.equal(client.named('revoked').length, 0, 'an expiry is not a revocation')
    const stats = server.handler.stats()
    assert.equal(stats.expired, 1, 'stats().expired counts it')
    assert.equal(stats.connections, 0, 'the stream is forgotten')
  })

  it('spreads the retry: of streams that expire together', async (t) => {
    // Far enough ahead for the eight streams to open on a loaded machine.
    const until0 = Date.now() + 2000
    const server = await startServer(t, { broker: createBroker(), retryMs: 10_000, authorize: () => ({ until: until0 }) })
    const clients = await Promise.all(Array.from({ length: 8 }, () => openStream(t, server.port, 'room')))
    assert.ok(clients.every((client) => client.response?.status === 200), 'every stream opened before the until')
    await Promise.all(clients.map((client) => client.waitForClose()))
    const retries = clients.map((client) => client.retries[1])
    assert.ok(retries.every((ms) => ms !== undefined && ms >= 7500 && ms <= 12_500), `each within the spread: ${retries.join(', ')}`)
    assert.ok(new Set(retries).size > 1, `not all the same: ${retries.join(', ')}`)
    assert.equal(server.handler.stats().expired, 8, 'every stream counted')
  })

  it('a real EventSource expiring every few hundred ms while patches flow gets every patch once, in order, with no reset', async (t) => {
    const broker = createBroker()
    let opens = 0
    const server = await startServer(t, {
      broker, retryMs: 50,
      // Each (re)connect is authorized again, for 250 ms more.
      authorize: () => {
        opens++
        return { until: Date.now() + 250 }
      },
    })
    const source = new EventSource(`${server.origin}/?topic=feed`)
    t.after(() => source.close())
    const received: number[] = []
    let resets = 0
    source.addEventListener('patch', (event) => received.push((JSON.parse(event.data) as [[string, string, number]])[0][2]))
    source.addEventListener('reset', () => resets++)
    await until(() => opens === 1 && server.handler.stats().connections === 1, 5000, 'the first stream')
    let sent = 0
    // Publishes keep flowing while the stream expires and comes back, four times at least.
    while (server.handler.stats().expired < 4) {
      await publish(broker, 'feed', [['replace', '/n', ++sent]])
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await until(() => received.length >= sent, 10_000, `all ${sent} patches (have ${received.length})`)
    assert.deepEqual(received, Array.from({ length: sent }, (_, i) => i + 1), 'every patch once, in order')
    assert.equal(resets, 0, 'no reset')
    assert.ok(opens >= 4, `authorize ran again on each reconnect (${opens} opens)`)
  })

  it('ends streams in the order of their until, each at its own time; one that closes first is forgotten', async (t) => {
    const start = Date.now()
    const server = await startServer(t, {
      broker: createBroker(), retryMs: 5000,
      authorize: (req) => ({ until: start + Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms')) }),
    })
    const ended: number[] = []
    const offsets = [1800, 600, 2400, 1200]
    const clients = await Promise.all(offsets.map((ms) => openStream(t, server.port, 'room', [], `/?ms=${ms}`)))
    assert.ok(clients.every((client) => client.response?.status === 200), 'every stream opened before its until')
    clients.forEach((client, i) => client.socket.on('close', () => ended.push(offsets[i] as number)))
    // The 1800 ms one leaves by itself before its time.
    clients[0]?.destroy()
    await until(() => ended.length === 4, 5000, 'every stream to end')
    assert.deepEqual(ended, [1800, 600, 1200, 2400], 'the one that left first, then by until')
    assert.equal(server.handler.stats().expired, 3, 'three expired; the one that left is not counted')
    assert.ok(Date.now() - start >= 2400, 'the last one ended no earlier than its until')
  })

  it('refuses an until already past with 403, as a number or a Date', async (t) => {
    for (const until0 of [Date.now() - 1, new Date(Date.now() - 1000)]) {
      const server = await startServer(t, { broker: createBroker(), authorize: () => ({ until: until0 }) })
      const client = await openStream(t, server.port, 'room')
      assert.equal(client.response?.status, 403, `an until in the past (${String(until0)}) refuses`)
      assert.match(client.response?.body ?? '', /until/, 'the refusal says why')
      assert.equal(server.handler.stats().refused['403'], 1, 'counted as a 403')
    }
  })

  it('answers 500 and reports ERR_PATCHWIRE_AUTHORIZE for a verdict of another shape', async (t) => {
    const shapes: unknown[] = [{ until: 'soon' }, { until: Number.NaN }, { until: new Date('nope') }, { expires: 1 }, { until: Date.now() + 1000, extra: 1 }, {}, new Date(Date.now() + 1000)]
    for (const shape of shapes) {
      for (const async of [false, true]) {
        const errors: PatchwireError[] = []
        const server = await startServer(t, {
          broker: createBroker(),
          authorize: (() => (async ? Promise.resolve(shape) : shape)) as () => boolean,
          onError: (error) => errors.push(error),
        })
        const client = await openStream(t, server.port, 'room')
        assert.equal(client.response?.status, 500, `${JSON.stringify(shape)} (async: ${async}) answers 500`)
        assert.equal(errors.length, 1, 'reported once')
        assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_AUTHORIZE', 'with the authorize code')
        assert.match(errors[0]?.message ?? '', /\{ until \}/, `the message names the shape expected: ${errors[0]?.message}`)
      }
    }
  })

  it('works in the Fetch handler: the stream ends at its until with a spread retry:', async (t) => {
    const handler: FetchHandler = createFetchHandler({ broker: createBroker(), retryMs: 1000, authorize: () => ({ until: Date.now() + 200 }) })
    t.after(() => handler.close())
    const body = new SseBody(await handler(new Request('http://x/?topic=room')))
    await body.waitForReady()
    await body.waitForEnd()
    assert.equal(body.ended, true, 'the body ends cleanly')
    const last = body.retries[1]
    assert.ok(last !== undefined && last >= 750 && last <= 1250, `the end's retry (${String(last)}) is spread`)
    assert.equal(handler.stats().expired, 1, 'counted')
    const past = await handler(new Request('http://x/?topic=room', { headers: { 'last-event-id': 'x' } }))
    assert.equal(past.status, 200, 'a later request is authorized again')
    await past.body?.cancel()
  })
})

describe('identify and maxStreamsPerIdentity', () => {
  it('refuses the stream over the cap with 429, counts it, and frees the place when a stream closes', async (t) => {
    const server = await startServer(t, { broker: createBroker(), identify: userOf, maxStreamsPerIdentity: 2 })
    const a1 = await openStream(t, server.port, 'room', [], '/?user=a')
    await openStream(t, server.port, 'room', [], '/?user=a')
    const third = await openStream(t, server.port, 'room', [], '/?user=a')
    assert.equal(third.response?.status, 429, 'the third stream of a is refused')
    assert.match(third.response?.body ?? '', /maxStreamsPerIdentity/, 'the refusal names the option')
    const other = await openStream(t, server.port, 'room', [], '/?user=b')
    assert.equal(other.response?.status, 200, 'another identity is not affected')
    const anonymous = await Promise.all([1, 2, 3].map(() => openStream(t, server.port, 'room')))
    assert.ok(anonymous.every((client) => client.response?.status === 200), 'streams without identity are not capped')
    assert.equal(server.handler.stats().refused['429'], 1, 'stats counts the 429')
    a1.destroy()
    await until(() => server.handler.stats().connections === 5, 5000, 'the closed stream to be forgotten')
    const again = await openStream(t, server.port, 'room', [], '/?user=a')
    assert.equal(again.response?.status, 200, 'a place is free again')
  })

  it('caps per IP address behind a proxy with the recipe of examples/access/per-ip.ts: the entry the proxy appended counts, not the first', async (t) => {
    const server = await startServer(t, { broker: createBroker(), identify: clientAddress, maxStreamsPerIdentity: 1 })
    const first = await openStream(t, server.port, 'room', ['X-Forwarded-For: 198.51.100.7'])
    assert.equal(first.response?.status, 200, 'the first stream of 198.51.100.7')
    // The client sent a made-up address; the proxy appended the real one.
    const spoofed = await openStream(t, server.port, 'room', ['X-Forwarded-For: 203.0.113.9, 198.51.100.7'])
    assert.equal(spoofed.response?.status, 429, 'a second stream of 198.51.100.7 is refused, whatever the client put first')
    const other = await openStream(t, server.port, 'room', ['X-Forwarded-For: 198.51.100.8'])
    assert.equal(other.response?.status, 200, 'another address has its own cap')
    const direct = await openStream(t, server.port, 'room')
    assert.equal(direct.response?.status, 200, 'without the header, the socket peer (127.0.0.1) is the identity')
    const directAgain = await openStream(t, server.port, 'room')
    assert.equal(directAgain.response?.status, 429, 'and it is capped too')
  })

  it('defaults to 32 streams per identity', async (t) => {
    const server = await startServer(t, { broker: createBroker(), identify: () => 'same' })
    const clients = await Promise.all(Array.from({ length: 33 }, () => openStream(t, server.port, 'room')))
    const statuses = clients.map((client) => client.response?.status)
    assert.equal(statuses.filter((status) => status === 200).length, 32, '32 open')
    assert.equal(statuses.filter((status) => status === 429).length, 1, 'the 33rd is refused')
  })

  it('counts requests still opening against the cap, and gives the place back when one is refused', async (t) => {
    let release = (): void => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const server = await startServer(t, {
      broker: createBroker(), identify: () => 'u', maxStreamsPerIdentity: 1,
      authorize: async (_req, topic) => {
        await gate
        return topic !== 'no'
      },
    })
    const first = openStream(t, server.port, 'no')
    await until(() => server.handler.stats().pending === 1, 5000, 'the first request to wait')
    const second = await openStream(t, server.port, 'room')
    assert.equal(second.response?.status, 429, 'a request while the first is opening is over the cap')
    release()
    assert.equal((await first).response?.status, 403, 'the first is refused by authorize')
    const third = await openStream(t, server.port, 'room')
    assert.equal(third.response?.status, 200, 'its place was given back')
  })

  it('answers 500 when identify throws, rejects or gives something other than a non-empty string or undefined', async (t) => {
    const answers: (() => unknown)[] = [
      () => { throw new Error('no session store') },
      () => Promise.reject(new Error('no session store')),
      () => 42,
      () => '',
      () => Promise.resolve(null),
    ]
    for (const identify of answers) {
      const errors: PatchwireError[] = []
      const server = await startServer(t, { broker: createBroker(), identify: identify as () => string, onError: (error) => errors.push(error) })
      const client = await openStream(t, server.port, 'room')
      assert.equal(client.response?.status, 500, `${String(identify)} answers 500`)
      assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_AUTHORIZE', 'reported with the access code')
      assert.match(errors[0]?.message ?? '', /identify/, 'the message names identify')
      assert.equal(server.handler.stats().connections, 0, 'no stream')
    }
  })

  it('identifies a request once, and a Promise of an identity works', async (t) => {
    let calls = 0
    const server = await startServer(t, {
      broker: createBroker(),
      identify: async (req) => {
        calls++
        return userOf(req)
      },
    })
    const client = await openTopics(t, server.port, ['a', 'b', 'c'], '&user=u')
    assert.equal(client.response?.status, 200, 'opened')
    assert.equal(calls, 1, 'identify is asked once per stream, not per topic')
    assert.equal(server.handler.revoke({ identity: 'u' }), 1, 'the identity it gave is the one revoke finds')
  })

  it('refuses bad options with the option named', () => {
    assert.throws(() => createHandler({ maxStreamsPerIdentity: 0 }), (error: Error) => error instanceof RangeError && /maxStreamsPerIdentity/.test(error.message), 'a cap of 0')
    assert.throws(() => createHandler({ maxStreamsPerIdentity: 1.5 }), RangeError, 'a fractional cap')
    assert.throws(() => createHandler({ identify: 'user' as never }), (error: Error) => error instanceof TypeError && /"identify" must be a function/.test(error.message), 'identify not a function')
  })
})

describe('revoke', () => {
  it('ends every stream of an identity with a revoked frame per topic; other streams go on', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker, identify: userOf })
    const multi = await openTopics(t, server.port, ['doc:1', 'doc:2'], '&user=a')
    const single = await openStream(t, server.port, 'doc:1', [], '/?user=a')
    const other = await openStream(t, server.port, 'doc:1', [], '/?user=b')
    await revoke(broker, { identity: 'a' })
    await multi.waitForClose(1000)
    await single.waitForClose(1000)
    assert.deepEqual(revokedTopics(multi), [{ topic: 'doc:1' }, { topic: 'doc:2' }], 'one frame per topic of the stream')
    assert.deepEqual(revokedTopics(single), [{ topic: 'doc:1' }], 'its one topic')
    assert.match(single.raw, /\nevent: revoked\ndata: \{"topic":"doc:1"\}\n\n$/, `the exact frame, last on the stream: ${JSON.stringify(single.raw.slice(-80))}`)
    await publish(broker, 'doc:1', [['replace', '/x', 1]])
    await until(() => other.named('patch').length === 1, 5000, 'the other identity to get the patch')
    assert.equal(other.closed, false, 'the other identity keeps its stream')
    const stats = server.handler.stats()
    assert.equal(stats.revoked, 2, 'stats().revoked counts streams')
    assert.equal(stats.connections, 1, 'the revoked streams are forgotten')
  })

  it('{ identity, topic } ends only that identity\'s streams carrying the topic, with that topic\'s frame', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker, identify: userOf })
    const both = await openTopics(t, server.port, ['room:1', 'room:2'], '&user=a')
    const otherTopic = await openStream(t, server.port, 'room:2', [], '/?user=a')
    const otherUser = await openStream(t, server.port, 'room:1', [], '/?user=b')
    await revoke(broker, { identity: 'a', topic: 'room:1' })
    await both.waitForClose(1000)
    assert.deepEqual(revokedTopics(both), [{ topic: 'room:1' }], 'only the revoked topic is named')
    assert.equal(otherTopic.closed || otherUser.closed, false, 'the others stay open')
    assert.equal(server.handler.stats().revoked, 1, 'one stream ended')
  })

  it('{ topic } ends every stream of the topic, and a new stream is judged by authorize again', async (t) => {
    const broker = createBroker()
    let deleted = false
    const server = await startServer(t, { broker, authorize: () => !deleted })
    const a = await openStream(t, server.port, 'doc:9')
    const b = await openTopics(t, server.port, ['doc:9', 'doc:10'])
    const again = await openStream(t, server.port, 'doc:9')
    await revoke(broker, { topic: 'doc:9' })
    await Promise.all([a.waitForClose(1000), b.waitForClose(1000), again.waitForClose(1000)])
    assert.deepEqual(revokedTopics(b), [{ topic: 'doc:9' }], 'the multi-topic stream names the topic only')
    const reopened = await openStream(t, server.port, 'doc:9')
    assert.equal(reopened.response?.status, 200, 'not a deny list: authorize still says yes, so it opens')
    deleted = true
    const refused = await openStream(t, server.port, 'doc:9')
    assert.equal(refused.response?.status, 403, 'authorize decides')
  })

  it('revoke(filter) uses the default broker', async (t) => {
    const server = await startServer(t, { identify: () => 'default-broker-user' })
    const client = await openStream(t, server.port, 'room')
    await revoke({ identity: 'default-broker-user' })
    await client.waitForClose(1000)
    assert.equal(revokedTopics(client).length, 1, 'revoked')
  })

  it('reaches every handler of the broker, and handler.revoke only its own, returning the count', async (t) => {
    const broker = createBroker()
    const one = await startServer(t, { broker, identify: userOf })
    const two = await startServer(t, { broker, identify: userOf })
    const a = await openStream(t, one.port, 'room', [], '/?user=a')
    const b = await openStream(t, two.port, 'room', [], '/?user=a')
    assert.equal(one.handler.revoke({ identity: 'a' }), 1, 'one stream on that handler')
    await a.waitForClose(1000)
    assert.equal(b.closed, false, 'the other handler\'s stream is untouched by handler.revoke')
    assert.equal(one.handler.revoke({ identity: 'nobody' }), 0, 'nothing matches: 0')
    await revoke(broker, { identity: 'a' })
    await b.waitForClose(1000)
    assert.equal(two.handler.stats().revoked, 1, 'the broker carried it to the other handler')
  })

  it('a broker without the capability revokes on the local handlers that use it, and the call resolves', async (t) => {
    const broker = minimalBroker()
    const server = await startServer(t, { broker, identify: userOf })
    const unrelated = await startServer(t, { broker: minimalBroker(), identify: userOf })
    const client = await openStream(t, server.port, 'room', [], '/?user=a')
    const elsewhere = await openStream(t, unrelated.port, 'room', [], '/?user=a')
    await revoke(broker, { identity: 'a' })
    await client.waitForClose(1000)
    assert.deepEqual(revokedTopics(client), [{ topic: 'room' }], 'revoked locally')
    assert.equal(elsewhere.closed, false, 'a handler on another broker object is not touched')
  })

  it('a request still opening when the revocation comes opens, gets its revoked frame and ends', async (t) => {
    const broker = createBroker()
    let release = (): void => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const server = await startServer(t, { broker, identify: userOf, snapshot: async () => { await gate; return {} } })
    const opening = openStream(t, server.port, 'room', [], '/?user=a')
    await until(() => server.handler.stats().pending === 1, 5000, 'the request to wait for its snapshot')
    await revoke(broker, { identity: 'a' })
    release()
    const client = await opening
    await client.waitForClose(1000)
    assert.deepEqual(revokedTopics(client), [{ topic: 'room' }], 'revoked right after its opening')
    assert.equal(server.handler.stats().revoked, 1, 'counted')
  })

  it('a request whose identify is still running when its identity is revoked opens, gets its revoked frames and ends', async (t) => {
    const broker = createBroker()
    let release = (): void => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    let asked = 0
    const identify = async (req: NodeRequest): Promise<string | undefined> => {
      asked++
      await gate
      return userOf(req)
    }
    const server = await startServer(t, { broker, identify })
    const opening = openTopics(t, server.port, ['room', 'lobby'], '&user=a')
    const other = openTopics(t, server.port, ['room'], '&user=b')
    await until(() => asked === 2, 5000, 'both requests to wait for identify')
    await revoke(broker, { identity: 'a', topic: 'lobby' })
    await revoke(broker, { identity: 'a', topic: 'elsewhere' })
    release()
    const client = await opening
    await client.waitForClose(1000)
    assert.deepEqual(revokedTopics(client), [{ topic: 'lobby' }], `revoked right after its opening, for the revoked topic only: ${JSON.stringify(revokedTopics(client))}`)
    const untouched = await other
    assert.equal(untouched.named('ready').length, 1, 'another identity\'s request opens')
    assert.deepEqual(revokedTopics(untouched), [], 'and gets no revoked frame')
    assert.equal(untouched.closed, false, 'and stays open')
    assert.equal(server.handler.stats().revoked, 1, 'one stream counted as revoked')
  })

  it('ends matching streams of the Fetch handler', async (t) => {
    const broker = createBroker()
    const handler = createFetchHandler({ broker, identify: (request) => request.headers.get('x-user') ?? undefined })
    t.after(() => handler.close())
    const body = new SseBody(await handler(new Request('http://x/?topic=t1&topic=t2', { headers: { 'x-user': 'a' } })))
    await body.waitForReady()
    await revoke(broker, { identity: 'a', topic: 't2' })
    await body.waitForEnd(1000)
    assert.deepEqual(body.named('revoked').map((event) => JSON.parse(event.data) as unknown), [{ topic: 't2' }], 'the frame, then the end')
    assert.equal(handler.revoke({ topic: 't1' }), 0, 'nothing left to revoke')
    assert.equal(handler.stats().revoked, 1, 'counted')
  })

  it('refuses a bad filter with a TypeError naming the fix', async (t) => {
    const server = await startServer(t, { broker: createBroker() })
    const cases: [unknown, RegExp][] = [
      [{}, /identity, a topic or both/],
      [{ identity: undefined }, /identity, a topic or both/],
      [{ identity: 42 }, /filter\.identity must be a non-empty string/],
      [{ identity: '' }, /filter\.identity must be a non-empty string/],
      [{ topic: null }, /filter\.topic must be a non-empty string/],
      [{ user: 'a' }, /unknown filter key\(s\) "user"; the keys are identity and topic/],
      [null, /filter must be an object/],
      ['a', /filter must be an object/],
    ]
    for (const [filter, message] of cases) {
      assert.throws(() => revoke(filter as never), (error: Error) => error instanceof TypeError && message.test(error.message), `revoke(${JSON.stringify(filter)})`)
      assert.throws(() => revoke(createBroker(), filter as never), TypeError, `revoke(broker, ${JSON.stringify(filter)})`)
      assert.throws(() => server.handler.revoke(filter as never), (error: Error) => error instanceof TypeError && /^handler\.revoke/.test(error.message), `handler.revoke(${JSON.stringify(filter)})`)
    }
    assert.throws(() => revoke({} as Broker, { topic: 'a' }), /broker must implement Broker/, 'a broker that is not one')
  })

  it('a broker revocation listener that throws is reported, and the others still get it', async (t) => {
    const errors: PatchwireError[] = []
    const broker = createBroker({ onError: (error) => errors.push(error) })
    broker.onRevoke?.(() => { throw new Error('listener bug') })
    const server = await startServer(t, { broker })
    const client = await openStream(t, server.port, 'doc')
    await revoke(broker, { topic: 'doc' })
    await client.waitForClose(1000)
    assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_LISTENER', 'reported')
    assert.deepEqual(revokedTopics(client), [{ topic: 'doc' }], 'the handler still got it')
  })

  it('does nothing on a closed handler', async (t) => {
    const broker = createBroker()
    const handler = createHandler({ broker })
    await handler.close()
    assert.equal(handler.revoke({ topic: 'a' }), 0, 'nothing to end')
    await revoke(broker, { topic: 'a' })
    assert.equal(handler.stats().revoked, 0, 'a closed handler no longer listens')
    t.diagnostic('closed handler ignores revocations')
  })
})

import assert from 'node:assert/strict'
import http from 'node:http'
import type { Socket } from 'node:net'
import { describe, it, mock } from 'node:test'
import { EventSource } from 'eventsource'
import { createBroker, createHandler, publish, type Broker, type PatchwireError } from '../src/index.ts'
import { streamCounts, listen, startServer, until } from './helpers/server.ts'
import { openQuiet, openRaw, openStream, type SseClient } from './helpers/sse-client.ts'

const gc = globalThis.gc as (() => void) | undefined

/** The counter carried by a test patch `[['replace', '/n', n]]`. */
function counterOf(data: string): number {
  return (JSON.parse(data) as [[string, string, number]])[0][2]
}

function counters(client: SseClient): number[] {
  return client.named('patch').map((event) => counterOf(event.data))
}

function lastId(client: SseClient): string {
  const id = client.events.at(-1)?.id
  assert.ok(id, 'the stream carried an id')
  return id
}

function resetReason(client: SseClient): string | undefined {
  const reset = client.named('reset')[0]
  return reset === undefined ? undefined : (JSON.parse(reset.data) as { reason: string }).reason
}

/** A server whose connections the test can cut from the server side. */
async function startCuttableServer(t: Parameters<typeof startServer>[0], broker: Broker, options: Parameters<typeof createHandler>[0] = {}) {
  const handler = createHandler({ broker, ...options })
  const server = http.createServer((req, res) => handler(req, res))
  const sockets = new Set<Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  const started = await listen(t, server, handler)
  return { ...started, dropAll: () => sockets.forEach((socket) => socket.destroy()) }
}

describe('resume', () => {
  describe('event ids', () => {
    it('gives every patch frame an increasing id from the broker: the same on every handler of the broker, another on another broker', async (t) => {
      const broker = createBroker()
      const { port } = await startServer(t, { broker })
      const client = await openStream(t, port, 'ids')
      for (let n = 0; n < 5; n++) await publish(broker, 'ids', [['replace', '/n', n]])
      await client.waitForEvents(6)
      const ids = client.named('patch').map((event) => event.id ?? '')
      const [epoch] = (ids[0] ?? '').split('-')
      assert.ok(ids.every((id) => id.startsWith(`${epoch}-`)), `every id is of one epoch: ${ids.join(', ')}`)
      const seqs = ids.map((id) => Number(id.split('-')[1]))
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `the ids' sequence numbers rise: ${ids.join(', ')}`)
      assert.equal(new Set(seqs).size, 5, `five distinct ids for five patches: ${ids.join(', ')}`)

      const sibling = await startServer(t, { broker })
      const siblingClient = await openStream(t, sibling.port, 'ids')
      assert.equal(siblingClient.named('ready')[0]?.id, ids.at(-1), 'another handler of the broker stands at the same position')
      const other = await startServer(t, { broker: createBroker() })
      const otherClient = await openStream(t, other.port, 'ids')
      assert.notEqual(otherClient.named('ready')[0]?.id?.split('-')[0], epoch, 'another broker has another epoch')
    })

    it('sends a fresh stream its position and no older frames', async (t) => {
      const broker = createBroker()
      const { port } = await startServer(t, { broker })
      const first = await openStream(t, port, 'fresh')
      await publish(broker, 'fresh', [['replace', '/n', 1]])
      await first.waitForEvents(2)
      const late = await openStream(t, port, 'fresh')
      assert.deepEqual(late.events.map((e) => e.event), ['ready'], 'a late stream gets only ready, no older patch')
      assert.equal(late.events[0]?.id, first.named('patch')[0]?.id, 'the position is the last frame fanned out')
      assert.equal(late.events[0]?.data, late.events[0]?.id, 'the ready frame carries its position as data and id')
    })
  })

  describe('replay', () => {
    it('replays what a real EventSource missed while its connection was down', async (t) => {
      const broker = createBroker()
      const { origin, dropAll } = await startCuttableServer(t, broker, { retryMs: 20 })
      const source = new EventSource(`${origin}/?topic=room`)
      t.after(() => source.close())
      const received: number[] = []
      const resets: string[] = []
      let opens = 0
      source.addEventListener('patch', (event) => received.push(counterOf(event.data)))
      source.addEventListener('reset', (event) => resets.push(event.data))
      source.addEventListener('open', () => opens++)
      let ready = 0
      source.addEventListener('ready', () => ready++)
      await until(() => ready === 1, 5000, 'the first ready')

      await publish(broker, 'room', [['replace', '/n', 0]])
      await publish(broker, 'room', [['replace', '/n', 1]])
      await until(() => received.length === 2, 5000, 'two live patches')
      dropAll()
      for (let n = 2; n < 5; n++) await publish(broker, 'room', [['replace', '/n', n]])
      await until(() => ready === 2, 5000, 'the reconnect')
      await publish(broker, 'room', [['replace', '/n', 5]])
      await until(() => received.length === 6, 5000, 'the replay and the live patch')
      assert.deepEqual(received, [0, 1, 2, 3, 4, 5], 'every patch once, in order, across the drop')
      assert.deepEqual(resets, [], 'an exact replay, no reset')
      assert.equal(opens, 2, 'the EventSource opened twice: first and reconnect')
    })

    it('resumes exactly a stream that dropped before its first patch', async (t) => {
      const broker = createBroker()
      const { origin, dropAll } = await startCuttableServer(t, broker, { retryMs: 20 })
      const source = new EventSource(`${origin}/?topic=quiet`)
      t.after(() => source.close())
      const received: number[] = []
      let ready = 0
      source.addEventListener('patch', (event) => received.push(counterOf(event.data)))
      source.addEventListener('ready', () => ready++)
      await until(() => ready === 1, 5000, 'ready')
      dropAll()
      await publish(broker, 'quiet', [['replace', '/n', 7]])
      await publish(broker, 'quiet', [['replace', '/n', 8]])
      await until(() => received.length === 2, 5000, 'the replay')
      assert.deepEqual(received, [7, 8], 'both patches published while down replayed, in order')
    })

    it('delivers every patch exactly once, in order, across many drops under concurrent publishing', { timeout: 30_000 }, async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker })
      let publishing = true
      let next = 0
      const publisher = (async () => {
        while (publishing) {
          await publish(broker, 'busy', [['replace', '/n', next++]])
          if (next % 3 === 0) await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      const seen: number[] = []
      let id: string | undefined
      for (let round = 0; round < 40; round++) {
        const client = await openStream(t, port, 'busy', id === undefined ? [] : [`Last-Event-ID: ${id}`])
        assert.equal(resetReason(client), undefined, `round ${round} resumed without a reset`)
        await until(() => client.named('patch').length >= 3, 5000, 'some patches')
        client.destroy()
        // Everything received before the drop counts, up to the last id seen.
        seen.push(...counters(client))
        id = lastId(client)
      }
      publishing = false
      await publisher
      assert.ok(seen.length > 100, `saw ${seen.length} patches`)
      const first = seen[0] ?? 0
      assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => first + i), 'no gap, no duplicate')
      assert.equal(handler.stats().dropped, 0, 'no stream cut as a slow reader')
    })

    it('does not cut a reconnect as a slow reader for the size of its replay', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, maxBufferedBytes: 64 * 1024 })
      const first = await openStream(t, port, 'replay')
      const from = lastId(first)
      first.destroy()
      const chunk = 'r'.repeat(1024 * 1024)
      for (let n = 0; n < 16; n++) await publish(broker, 'replay', [['replace', '/n', n], ['replace', '/chunk', chunk]])
      // The replay is written on open, as one batch; the reader takes its time.
      const back = await openRaw(t, port, '/?topic=replay', [`Last-Event-ID: ${from}`])
      back.socket.pause()
      await until(() => handler.stats().connections === 1, 3000, 'the reconnect to open')
      for (let n = 16; n < 19; n++) {
        await new Promise((resolve) => setImmediate(resolve))
        await publish(broker, 'replay', [['replace', '/n', n]])
      }
      assert.equal(handler.stats().dropped, 0, 'no cut while the paused reconnect takes its replay')
      back.socket.resume()
      await back.waitForEvents(1 + 19, 20_000)
      assert.deepEqual(counters(back), Array.from({ length: 19 }, (_, n) => n), 'the replay and the live patches, each once, in order')
      assert.equal(handler.stats().dropped, 0, 'no cut after the replay was read')
    })

    it('takes the position from a lastEventId query parameter, and prefers the header', async (t) => {
      const broker = createBroker()
      const { port } = await startServer(t, { broker })
      const client = await openStream(t, port, 'q')
      const start = lastId(client)
      await publish(broker, 'q', [['replace', '/n', 1]])
      await client.waitForEvents(2)
      const afterOne = lastId(client)
      await publish(broker, 'q', [['replace', '/n', 2]])

      const byQuery = await openStream(t, port, 'q', [], `/?lastEventId=${encodeURIComponent(start)}`)
      assert.deepEqual(counters(byQuery), [1, 2], 'the query position replays both patches')
      const both = await openStream(t, port, 'q', [`Last-Event-ID: ${afterOne}`], `/?lastEventId=${encodeURIComponent(start)}`)
      assert.deepEqual(counters(both), [2], 'the header position wins over the query: only the later patch')
    })

    it('replays a slow reader that was cut, once it comes back', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, maxBufferedBytes: 16 * 1024 })
      const slow = await openStream(t, port, 'bulk')
      slow.socket.pause()
      const chunk = 'z'.repeat(32 * 1024)
      let n = 0
      while (handler.stats().dropped === 0 && n < 2000) {
        await publish(broker, 'bulk', [['replace', '/n', n++], ['replace', '/chunk', chunk]] as never)
        await new Promise((resolve) => setImmediate(resolve))
      }
      assert.equal(handler.stats().dropped, 1, 'the paused reader was cut once')
      slow.socket.resume()
      await slow.waitForClose()
      const back = await openStream(t, port, 'bulk', [`Last-Event-ID: ${lastId(slow)}`])
      const got = [...counters(slow), ...counters(back)]
      if (resetReason(back) === undefined) assert.deepEqual(got, Array.from({ length: n }, (_, i) => i), `every patch once, in order, across the cut: ${got.join(', ')}`)
      else assert.equal(resetReason(back), 'history-exceeded', 'a reconnect that cannot be replayed is reset as history-exceeded')
    })
  })

  describe('reset', () => {
    const cases: { name: string; reason: string; id: (real: string) => string }[] = [
      { name: 'a malformed id', reason: 'malformed-id', id: () => 'garbage' },
      { name: 'an id with the wrong shape', reason: 'malformed-id', id: (real) => `${real}-1` },
      { name: 'an id of another instance', reason: 'foreign-id', id: (real) => `zzzzzzzzzz-${real.split('-')[1]}` },
      { name: 'an id from the future', reason: 'foreign-id', id: (real) => `${real.split('-')[0]}-99999` },
    ]
    for (const { name, reason, id } of cases) {
      it(`resets on ${name}`, async (t) => {
        const broker = createBroker()
        const { port } = await startServer(t, { broker })
        const client = await openStream(t, port, 'r')
        const back = await openStream(t, port, 'r', [`Last-Event-ID: ${id(lastId(client))}`])
        assert.deepEqual(back.events.map((e) => e.event), ['reset', 'ready'], 'a reset, then ready')
        assert.equal(resetReason(back), reason, `the reset names ${reason}`)
        assert.equal(back.named('ready')[0]?.id, lastId(client), 'the ready after the reset carries the current position')
      })
    }

    it('resets when the frames after the id left the broker\'s history (count and bytes)', async (t) => {
      const countBroker = createBroker({ history: 2 })
      // Two of these payloads fit in 450 bytes as the history counts them, three do not.
      const bytesBroker = createBroker({ historyBytes: 450 })
      const byCount = await startServer(t, { broker: countBroker })
      const byBytes = await startServer(t, { broker: bytesBroker })
      const a = await openStream(t, byCount.port, 'h')
      const b = await openStream(t, byBytes.port, 'h')
      const [fromA, fromB] = [lastId(a), lastId(b)]
      for (let n = 0; n < 3; n++) {
        await publish(countBroker, 'h', [['replace', '/n', n], ['add', '/pad', 'x'.repeat(60)]])
        await publish(bytesBroker, 'h', [['replace', '/n', n], ['add', '/pad', 'x'.repeat(60)]])
      }
      await a.waitForEvents(4)
      await b.waitForEvents(4)
      const backA = await openStream(t, byCount.port, 'h', [`Last-Event-ID: ${fromA}`])
      const backB = await openStream(t, byBytes.port, 'h', [`Last-Event-ID: ${fromB}`])
      assert.equal(resetReason(backA), 'history-exceeded', 'the count-bounded history resets a reconnect past it')
      assert.equal(resetReason(backB), 'history-exceeded', 'the byte-bounded history resets a reconnect past it')
      assert.equal(backA.named('patch').length, 0, 'no partial replay')
      // From one frame later, the two frames still held are enough.
      const fromSecond = await openStream(t, byCount.port, 'h', [`Last-Event-ID: ${a.named('patch')[0]?.id}`])
      assert.deepEqual(counters(fromSecond), [1, 2], 'the two frames still held are replayed')
    })

    it('replays what was published while no stream anywhere had the topic: the broker kept it', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, lingerMs: 0 })
      const client = await openStream(t, port, 'gap')
      const id = lastId(client)
      client.destroy()
      await until(() => handler.stats().topics === 0, 2000, 'the topic to be let go')
      await publish(broker, 'gap', [['replace', '/n', 1]])
      await publish(broker, 'other', [['replace', '/n', 1]])
      await publish(broker, 'gap', [['replace', '/n', 2]])
      const back = await openStream(t, port, 'gap', [`Last-Event-ID: ${id}`])
      assert.equal(resetReason(back), undefined, 'the broker kept what was published while unsubscribed: no reset')
      assert.deepEqual(counters(back), [1, 2], 'the topic\'s two patches replayed, not the other topic\'s')
    })

    it('resumes on another handler of the same broker (another process behind a shared broker)', async (t) => {
      const broker = createBroker()
      const first = await startServer(t, { broker })
      const second = await startServer(t, { broker })
      const client = await openStream(t, first.port, 'moved')
      await publish(broker, 'moved', [['replace', '/n', 1]])
      await client.waitForEvents(2)
      const id = lastId(client)
      client.destroy()
      await publish(broker, 'moved', [['replace', '/n', 2]])
      const back = await openStream(t, second.port, 'moved', [`Last-Event-ID: ${id}`])
      assert.equal(resetReason(back), undefined, 'another handler of the broker resumes without a reset')
      assert.deepEqual(counters(back), [2], 'the patch missed is replayed on the other handler')
    })

    it('with history 0, resets a reconnect that missed a frame and resumes one that did not', async (t) => {
      const broker = createBroker({ history: 0 })
      const { port } = await startServer(t, { broker })
      const client = await openStream(t, port, 'none')
      const atStart = lastId(client)
      const unchanged = await openStream(t, port, 'none', [`Last-Event-ID: ${atStart}`])
      assert.equal(resetReason(unchanged), undefined, 'a reconnect that missed nothing resumes')
      await publish(broker, 'none', [['replace', '/n', 1]])
      await client.waitForEvents(2)
      const missed = await openStream(t, port, 'none', [`Last-Event-ID: ${atStart}`])
      assert.equal(resetReason(missed), 'history-exceeded', 'a reconnect that missed a frame is reset')
    })

    it('with a broker that keeps no history (only publish and subscribe), resumes a reconnect that missed nothing and resets one that did', async (t) => {
      const inner = createBroker()
      const broker: Broker = {
        publish: (topic, payload) => inner.publish(topic, payload).then(() => undefined),
        subscribe: (topic, listener) => inner.subscribe(topic, (payload) => listener(payload)),
      }
      const { port } = await startServer(t, { broker })
      const client = await openStream(t, port, 'plain')
      const atStart = lastId(client)
      const unchanged = await openStream(t, port, 'plain', [`Last-Event-ID: ${atStart}`])
      assert.equal(resetReason(unchanged), undefined, 'a reconnect that missed nothing resumes')
      await publish(broker, 'plain', [['replace', '/n', 1]])
      await client.waitForEvents(2)
      assert.deepEqual(counters(client), [1], 'patches flow, numbered by the handler')
      const missed = await openStream(t, port, 'plain', [`Last-Event-ID: ${atStart}`])
      assert.equal(resetReason(missed), 'history-exceeded', 'a reconnect that missed a frame is reset')
      const foreign = await openStream(t, port, 'plain', [`Last-Event-ID: ${inner.position?.('plain') as string}`])
      assert.equal(resetReason(foreign), 'foreign-id', 'an id the handler did not issue')
    })

    it('resets every live stream of a topic when the broker reports a gap', async (t) => {
      const gaps = new Map<string, () => void>()
      const inner = createBroker()
      const broker: Broker = {
        publish: (topic, payload) => inner.publish(topic, payload),
        subscribe(topic, listener, onGap) {
          if (onGap) gaps.set(topic, onGap)
          return inner.subscribe(topic, listener)
        },
      }
      const { port } = await startServer(t, { broker })
      const client = await openStream(t, port, 'g')
      const before = lastId(client)
      await publish(broker, 'g', [['replace', '/n', 1]])
      gaps.get('g')?.()
      await publish(broker, 'g', [['replace', '/n', 2]])
      await client.waitForEvents(4)
      assert.deepEqual(client.events.map((e) => e.event), ['ready', 'patch', 'reset', 'patch'], 'the live stream is reset between the two patches')
      assert.equal(resetReason(client), 'broker-gap', 'the live stream\'s reset names the broker gap')
      // A reconnect from before the gap cannot be exact either, and says why.
      const back = await openStream(t, port, 'g', [`Last-Event-ID: ${before}`])
      assert.equal(resetReason(back), 'broker-gap', 'a reconnect from before the gap is reset')
      // From the reset on, nothing was missed but what this broker cannot replay.
      const fromLast = await openStream(t, port, 'g', [`Last-Event-ID: ${lastId(client)}`])
      assert.equal(resetReason(fromLast), undefined, 'a reconnect from after the reset resumes')
    })

    it('drops a payload with a line break, reports it, and resets the topic', async (t) => {
      const broker = createBroker()
      const errors: PatchwireError[] = []
      const { port } = await startServer(t, { broker, onError: (error) => errors.push(error) })
      const client = await openStream(t, port, 'evil')
      await broker.publish('evil', '[]\n\nevent: patch\ndata: [["replace","/admin",true]]')
      await client.waitForEvents(2)
      assert.deepEqual(client.events.map((e) => e.event), ['ready', 'reset'], 'the bad payload is dropped and the topic reset')
      assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_PAYLOAD', `reported as a payload error: ${String(errors[0])}`)
      assert.doesNotMatch(client.raw, /admin/, 'nothing of the dropped payload reaches the wire')
    })

    it('never lets a Last-Event-ID reach the wire', async (t) => {
      const { port } = await startServer(t)
      const injected = encodeURIComponent('x\r\n\r\nevent: patch\r\ndata: [["replace","/admin",true]]\r\n')
      const client = await openStream(t, port, 'safe', [], `/?lastEventId=${injected}`)
      assert.equal(resetReason(client), 'malformed-id', 'a Last-Event-ID with line breaks is malformed')
      assert.doesNotMatch(client.raw, /admin/, 'nothing of the injected id reaches the wire')
      assert.deepEqual(client.events.map((e) => e.event), ['reset', 'ready'], 'a reset, then ready, and no injected patch')
    })
  })

  describe('a broker whose subscription goes live later', () => {
    /** A broker whose subscriptions go live when the test says so. */
    function lateBroker() {
      const inner = createBroker()
      const subscriptions: { topic: string; live: () => void; fail: (error: Error) => void; off: () => void }[] = []
      const broker: Broker = {
        publish: (topic, payload) => inner.publish(topic, payload),
        subscribe(topic, listener) {
          let live!: () => void
          let fail!: (error: Error) => void
          const ready = new Promise<void>((resolve, reject) => {
            live = resolve
            fail = reject
          })
          let off = () => {}
          const unsubscribe = Object.assign(() => off(), { ready })
          subscriptions.push({ topic, live: () => ((off = inner.subscribe(topic, listener)), live()), fail, off: unsubscribe })
          return unsubscribe
        },
      }
      return { broker, subscriptions }
    }

    it('holds the first streams until the subscription is live, so none misses a message', async (t) => {
      const { broker, subscriptions } = lateBroker()
      let arrived = 0
      const { port, handler } = await startServer(t, { broker, authorize: () => ++arrived > 0 })
      const a = await openRaw(t, port, '/?topic=late')
      const b = await openRaw(t, port, '/?topic=late')
      await until(() => arrived === 2, 2000, 'both requests to arrive')
      // Published before the subscription is live: nobody could get it, and nobody was told they would.
      await publish(broker, 'late', [['replace', '/n', 0]])
      assert.equal(a.raw, '', 'nothing answered before the subscription is live')
      assert.equal(handler.stats().connections, 0, 'no stream counted before the subscription is live')
      subscriptions[0]?.live()
      await until(() => a.named('ready').length === 1 && b.named('ready').length === 1, 2000, 'both streams to open')
      await publish(broker, 'late', [['replace', '/n', 1]])
      await a.waitForEvents(2)
      await b.waitForEvents(2)
      assert.deepEqual(counters(a), [1], 'only the patch published after the subscription went live')
      assert.equal(subscriptions.length, 1, 'one subscription for both')
    })

    it('answers 500 and reports once when the subscription fails, then subscribes afresh', async (t) => {
      const { broker, subscriptions } = lateBroker()
      const errors: PatchwireError[] = []
      let arrived = 0
      const authorize = () => ++arrived > 0
      const { port, handler } = await startServer(t, { broker, authorize, onError: (error) => errors.push(error) })
      const a = await openRaw(t, port, '/?topic=fails')
      const b = await openRaw(t, port, '/?topic=fails')
      await until(() => arrived === 2, 2000, 'both requests to arrive')
      subscriptions[0]?.fail(new Error('no route to Redis'))
      await until(() => a.response?.status === 500 && b.response?.status === 500, 2000, 'both refusals')
      assert.deepEqual(errors.map((e) => e.code), ['ERR_PATCHWIRE_BROKER'], 'the failed subscription reported once')
      assert.equal(handler.stats().topics, 0, 'no topic held after the subscription failed')
      const c = await openRaw(t, port, '/?topic=fails')
      await until(() => subscriptions.length === 2, 2000, 'a new subscribe call')
      subscriptions[1]?.live()
      await until(() => c.named('ready').length === 1, 2000, 'the stream to open')
    })

    it('answers the waiting requests 503 when the handler closes first', async (t) => {
      const { broker, subscriptions } = lateBroker()
      const errors: PatchwireError[] = []
      let arrived = 0
      const { port, handler } = await startServer(t, { broker, authorize: () => ++arrived > 0, onError: (error) => errors.push(error) })
      const a = await openRaw(t, port, '/?topic=closing')
      await until(() => arrived === 1 && subscriptions.length === 1, 2000, 'the request to wait for the subscription')
      await handler.close()
      await until(() => a.response !== undefined, 2000, 'an answer')
      assert.equal(a.response?.status, 503, 'the waiting request is answered 503')
      assert.deepEqual(errors, [], 'closing is no failure')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'nothing open after close()')
    })

    it('opens the waiting streams with lingerMs 0 too, on one subscription', async (t) => {
      const { broker, subscriptions } = lateBroker()
      const { port, handler } = await startServer(t, { broker, lingerMs: 0 })
      const a = await openRaw(t, port, '/?topic=zero')
      await until(() => subscriptions.length === 1, 2000, 'the subscribe call')
      subscriptions[0]?.live()
      await until(() => a.named('ready').length === 1, 2000, 'the stream to open')
      await publish(broker, 'zero', [['replace', '/n', 1]])
      await a.waitForEvents(2)
      assert.deepEqual(counters(a), [1], 'the waiting stream got the patch')
      assert.equal(subscriptions.length, 1, 'one subscription for the waiting stream')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 1, topics: 1, dropped: 0 }, 'one stream on one topic')
    })

    it('lets the topic linger and go when every waiting client left', async (t) => {
      const { broker, subscriptions } = lateBroker()
      const { port, handler } = await startServer(t, { broker, lingerMs: 50 })
      const a = await openRaw(t, port, '/?topic=left')
      await until(() => subscriptions.length === 1, 2000, 'the subscribe call')
      a.destroy()
      await new Promise((resolve) => a.socket.once('close', resolve))
      subscriptions[0]?.live()
      await until(() => handler.stats().topics === 0, 2000, 'the topic to be let go')
      assert.equal(handler.stats().connections, 0, 'no stream left after the waiting client left')
    })
  })

  describe('history', () => {
    it('stays within historyBytes however large history is', { timeout: 30_000 }, async (t) => {
      assert.ok(gc, 'run with --expose-gc')
      const broker = createBroker({ history: 1e9, historyBytes: 4096 })
      const { port, handler } = await startServer(t, { broker, lingerMs: 60_000 })
      const client = await openStream(t, port, 'long')
      client.destroy()
      // The topic lingers, still subscribed: every publish goes into the history and nowhere else.
      await until(() => handler.stats().connections === 0, 2000, 'the stream to leave')
      // Warm-up: the first publishes compile and allocate what every later one reuses.
      for (let n = 0; n < 10_000; n++) await publish(broker, 'long', [['replace', '/n', n]])
      gc()
      const before = process.memoryUsage().heapUsed
      for (let n = 0; n < 300_000; n++) await publish(broker, 'long', [['replace', '/n', n]])
      gc()
      const grown = process.memoryUsage().heapUsed - before
      // About 30 messages fit in 4 KiB; 300 000 kept slots would take well over 2 MB.
      assert.ok(grown < 2 * 1024 * 1024, `heap grew by ${grown} bytes`)
      assert.equal(handler.stats().topics, 1, 'the lingering topic is still held')
    })
  })

  describe('linger', () => {
    it('keeps a topic subscribed for lingerMs after its last stream, counted in stats', async (t) => {
      const broker = createBroker()
      const { port, handler } = await startServer(t, { broker, lingerMs: 300 })
      const client = await openStream(t, port, 'linger')
      const setTimeoutSpy = mock.method(globalThis, 'setTimeout')
      t.after(() => mock.restoreAll())
      client.destroy()
      await until(() => handler.stats().connections === 0, 2000, 'the disconnect')
      assert.equal(handler.stats().topics, 1, 'the lingering topic is counted')
      // The helpers poll with 5 ms timeouts; the sweep is the handler's.
      const sweeps = setTimeoutSpy.mock.calls.filter((call) => call.arguments[1] !== 5)
      assert.equal(sweeps.length, 1, `one sweep timer for the lingering topic, delays: ${JSON.stringify(sweeps.map((call) => call.arguments[1]))}`)
      assert.equal(sweeps[0]?.result?.hasRef(), false, 'unref\'d: a lingering topic never keeps the process alive')
      await publish(broker, 'linger', [['replace', '/n', 1]])
      const back = await openStream(t, port, 'linger', [`Last-Event-ID: ${lastId(client)}`])
      assert.deepEqual(counters(back), [1], 'a reconnect within lingerMs replays')
      back.destroy()
      const started = Date.now()
      await until(() => handler.stats().topics === 0, 3000, 'the topic to be let go')
      assert.ok(Date.now() - started >= 250, 'not before lingerMs')
    })

    it('keeps memory bounded with 10 000 short-lived topics', { timeout: 60_000 }, async (t) => {
      assert.ok(gc, 'run with --expose-gc')
      // The handler's own memory: the broker keeps nothing past the next publish.
      const broker = createBroker({ historyMs: 0 })
      const { port, handler } = await startServer(t, { broker, lingerMs: 200 })
      gc()
      const before = process.memoryUsage().heapUsed
      for (let batch = 0; batch < 100; batch++) {
        const sockets = await Promise.all(Array.from({ length: 100 }, (_, i) => openQuiet(port, `short-${batch}-${i}`)))
        for (let i = 0; i < 100; i++) await publish(broker, `short-${batch}-${i}`, [['replace', '/n', i]])
        for (const socket of sockets) socket.destroy()
      }
      await until(() => handler.stats().connections === 0, 10_000, 'all streams to close')
      await until(() => handler.stats().topics === 0, 10_000, 'every topic to be let go')
      gc()
      const grown = process.memoryUsage().heapUsed - before
      // 10 000 topics with a frame each came and went; 400 bytes each would show as 4 MB.
      assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${grown} bytes`)
    })
  })
})

/**
 * Several topics on one stream (`?topic=a&topic=b`): frames name their
 * topic, one id resumes every topic, a reset concerns one topic only, and
 * the stream counts once wherever it is counted.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createBroker, position, publish, type Broker } from '../src/index.ts'
import type { ReplayResult } from '../src/broker/broker.ts'
import { startServer, until } from './helpers/server.ts'
import { openRaw, type SseClient } from './helpers/sse-client.ts'

/** Opens a stream on several topics and waits for its ready frame (or refusal). */
async function openTopics(t: Parameters<typeof startServer>[0], port: number, topics: string[], headers: string[] = []): Promise<SseClient> {
  const query = topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')
  const client = await openRaw(t, port, `/?${query}`, headers)
  await until(() => client.named('ready').length > 0 || client.closed || (client.response?.status ?? 200) !== 200, 5000, 'ready')
  return client
}

/** A multi-topic patch frame's topic and counter. */
function tagged(client: SseClient): [string, number][] {
  return client.named('patch').map((event) => {
    const newline = event.data.indexOf('\n')
    const topic = JSON.parse(event.data.slice(0, newline)) as string
    const ops = JSON.parse(event.data.slice(newline + 1)) as [[string, string, number]]
    return [topic, ops[0][2]]
  })
}

describe('multi-topic streams', () => {
  it('gets the frames of both topics in publish order, each naming its topic, and one stream in stats', async (t) => {
    const broker = createBroker()
    const { port, handler } = await startServer(t, { broker })
    const client = await openTopics(t, port, ['a', 'b'])
    await publish(broker, 'a', [['replace', '/n', 1]])
    await publish(broker, 'b', [['replace', '/n', 2]])
    await publish(broker, 'c', [['replace', '/n', 99]])
    await publish(broker, 'a', [['replace', '/n', 3]])
    await client.waitForEvents(4)
    assert.deepEqual(tagged(client), [['a', 1], ['b', 2], ['a', 3]], '[topic, value] of each patch: a and b in publish order, nothing of c')
    assert.match(client.raw, /id: [0-9a-z]+-\d+\nevent: patch\ndata: "a"\ndata: \[\["replace","\/n",1\]\]\n\n/, 'a multi-topic frame: its topic as the first data line, then the ops')
    const ids = client.named('patch').map((event) => Number(event.id?.split('-')[1]))
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'ids increase across topics')
    assert.equal(handler.stats().connections, 1, 'one connection for the two topics')
    assert.equal(handler.stats().topics, 2, 'both topics are held')
  })

  it('keeps a single-topic stream byte for byte as formatPatch, next to a multi-topic one', async (t) => {
    const broker = createBroker()
    const { port } = await startServer(t, { broker })
    const single = await openTopics(t, port, ['a'])
    const multi = await openTopics(t, port, ['a', 'b'])
    const id = await publish(broker, 'a', [['replace', '/n', 1]])
    await single.waitForEvents(2)
    await multi.waitForEvents(2)
    assert.ok(single.raw.endsWith(`id: ${id}\nevent: patch\ndata: [["replace","/n",1]]\n\n`), `a single-topic frame has no topic line: ${JSON.stringify(single.raw.slice(-120))}`)
    assert.ok(multi.raw.endsWith(`id: ${id}\nevent: patch\ndata: "a"\ndata: [["replace","/n",1]]\n\n`), `a multi-topic frame names its topic first: ${JSON.stringify(multi.raw.slice(-120))}`)
  })

  it('calls authorize for each topic, and one refusal refuses the whole stream before any byte', async (t) => {
    const asked: string[] = []
    const { port, handler } = await startServer(t, {
      authorize: (_req, topic) => {
        asked.push(topic)
        return topic !== 'secret'
      },
    })
    const refused = await openTopics(t, port, ['a', 'secret'])
    assert.equal(refused.response?.status, 403, 'a stream with one refused topic is refused')
    assert.doesNotMatch(refused.raw, /event-stream|retry:/, 'the refusal sends no stream byte')
    assert.deepEqual(asked.sort(), ['a', 'secret'], 'authorize was asked about each topic')
    assert.equal(handler.stats().topics, 0, 'no subscription for a refused stream')
    const allowed = await openTopics(t, port, ['a', 'b'])
    assert.equal(allowed.response?.status, 200, 'a stream whose every topic is authorized opens')
  })

  it('refuses the whole stream when one topic fails the prefix or the length', async (t) => {
    const { port } = await startServer(t, { topicPrefix: 'app:', maxTopicLength: 8 })
    assert.equal((await openTopics(t, port, ['app:a', 'other'])).response?.status, 403, 'one topic outside topicPrefix refuses the stream with 403')
    assert.equal((await openTopics(t, port, ['app:a', 'app:toolong'])).response?.status, 414, 'one topic over maxTopicLength refuses the stream with 414')
  })

  it('refuses maxTopics + 1 topics with 400, and serves maxTopics', async (t) => {
    const { port } = await startServer(t, { maxTopics: 3 })
    const four = await openTopics(t, port, ['a', 'b', 'c', 'd'])
    assert.equal(four.response?.status, 400, '4 topics with maxTopics 3 are refused with 400')
    assert.match(four.response?.body ?? '', /maxTopics/, 'the refusal names maxTopics')
    assert.equal((await openTopics(t, port, ['a', 'b', 'c'])).response?.status, 200, '3 topics with maxTopics 3 are served')
  })

  it('resumes every topic exactly with one Last-Event-ID after a drop', async (t) => {
    const broker = createBroker()
    const { port } = await startServer(t, { broker })
    const first = await openTopics(t, port, ['a', 'b'])
    await publish(broker, 'a', [['replace', '/n', 1]])
    await publish(broker, 'b', [['replace', '/n', 2]])
    await first.waitForEvents(3)
    const id = first.events.at(-1)?.id as string
    first.destroy()
    await publish(broker, 'b', [['replace', '/n', 3]])
    await publish(broker, 'other', [['replace', '/n', 0]])
    await publish(broker, 'a', [['replace', '/n', 4]])
    const back = await openTopics(t, port, ['a', 'b'], [`Last-Event-ID: ${id}`])
    assert.deepEqual(tagged(back), [['b', 3], ['a', 4]], 'the resumed stream gets exactly the patches of a and b published after the id, in order')
    assert.equal(back.named('reset').length, 0, 'an exact resume is no reset')
  })

  it('resumes in position order across topics when one topic\'s replay is behind messages that arrive while the stream opens', async (t) => {
    // A broker whose replays are answered late, b's from what it had when
    // asked (as a Redis read of one topic's stream can be older than
    // another's): b's next message then reaches the stream live, held
    // while it opens, and a's arrives both ways.
    const inner = createBroker()
    let release = (): void => undefined
    const released = new Promise<void>((resolve) => { release = resolve })
    const asked: string[] = []
    const broker: Broker = {
      publish: (topic, payload) => inner.publish(topic, payload),
      subscribe: (topic, listener, onGap) => inner.subscribe(topic, listener, onGap),
      position: (topic) => inner.position?.(topic) as string,
      async replay(topic, after) {
        asked.push(topic)
        const early = topic === 'b' ? await inner.replay?.(topic, after) : undefined
        await released
        return early ?? await inner.replay?.(topic, after) as ReplayResult
      },
    }
    const { port } = await startServer(t, { broker })
    const from = await position(broker, 'a')
    const opening = openTopics(t, port, ['a', 'b'], [`Last-Event-ID: ${from}`])
    await until(() => asked.length === 2, 5000, 'both replays to be asked')
    await publish(broker, 'b', [['replace', '/n', 1]])
    await publish(broker, 'a', [['replace', '/n', 2]])
    release()
    const back = await opening
    assert.deepEqual(tagged(back), [['b', 1], ['a', 2]], 'every frame once, in publish order')
    const ids = back.named('patch').map((event) => event.id ?? '')
    assert.deepEqual(ids, [...ids].sort((x, y) => Number(x.split('-')[1]) - Number(y.split('-')[1])), `ids never go back: ${ids.join(', ')}`)
  })

  it('resets one topic (naming it) and leaves the other live', async (t) => {
    const gaps = new Map<string, () => void>()
    const inner = createBroker()
    const broker: Broker = {
      publish: (topic, payload) => inner.publish(topic, payload),
      subscribe(topic, listener, onGap) {
        if (onGap !== undefined) gaps.set(topic, onGap)
        return inner.subscribe(topic, listener)
      },
    }
    const { port } = await startServer(t, { broker, snapshot: (_req, topic) => ({ topic }) })
    const client = await openTopics(t, port, ['a', 'b'])
    gaps.get('a')?.()
    await publish(broker, 'b', [['replace', '/n', 1]])
    await publish(broker, 'a', [['replace', '/n', 2]])
    await client.waitForEvents(2 + 1 + 2 + 2)
    const kinds = client.events.map((event) => event.event)
    assert.deepEqual(kinds, ['snapshot', 'snapshot', 'ready', 'reset', 'snapshot', 'patch', 'patch'], 'the stream goes on after the reset and the new snapshot of a')
    assert.deepEqual(JSON.parse(client.named('reset')[0]?.data ?? '{}'), { reason: 'broker-gap', topic: 'a' }, 'the reset names the topic with the gap')
    assert.equal(client.named('snapshot')[2]?.data, '"a"\n{"topic":"a"}', 'the snapshot after the reset names its topic')
    assert.deepEqual(tagged(client), [['b', 1], ['a', 2]], 'both topics stay live after the reset of a')
  })

  it('beats a multi-topic stream once per heartbeat, however many topics it has', async (t) => {
    const { port } = await startServer(t, { heartbeatMs: 200 })
    const client = await openTopics(t, port, ['a', 'b', 'c', 'd'])
    // One comment per tick arrives as 1, then 2; one per topic would jump to 4 on the first tick.
    await until(() => client.comments >= 2, 3000, 'two heartbeats')
    assert.equal(client.comments, 2, 'one heartbeat comment per tick, not one per topic')
  })

  it('forgets a multi-topic stream on every topic when it closes', async (t) => {
    const server = await startServer(t, { lingerMs: 0 })
    const client = await openTopics(t, server.port, ['a', 'b', 'c'])
    assert.equal(server.handler.stats().topics, 3, 'the stream holds its 3 topics')
    client.destroy()
    await until(() => server.handler.stats().connections === 0 && server.handler.stats().topics === 0, 3000, 'the stream and its topics to go')
  })
})

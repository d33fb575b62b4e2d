/**
 * The client's side of a revocation (issue 22), over a real server and a
 * real EventSource (the `eventsource` package): a revoked topic's
 * subscriptions end for good (`onRevoked`, state `revoked`, never asked for
 * again), and the other topics of the shared stream go on, resumed exactly.
 * test/browser-revoke.test.ts does the same across two Chromium tabs.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import { subscribe, type PatchOp, type SubscriptionState } from '../src/client/index.ts'
import { createBroker, publish, revoke, type NodeRequest } from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'

/** Every URL the client opens, in order. */
function recordingSource(urls: string[]): typeof EventSource {
  return class extends EventSource {
    constructor(url: string | URL, init?: { withCredentials?: boolean }) {
      super(url, init)
      urls.push(String(url))
    }
  }
}

const topicsOf = (url: string): string[] => new URL(url).searchParams.getAll('topic')

interface Watched {
  stop: ReturnType<typeof subscribe>
  values: number[]
  revoked: string[]
  states: SubscriptionState[]
}

function watch(t: TestContext, topic: string, path: string, Source: typeof EventSource): Watched {
  const watched: Watched = { stop: undefined as never, values: [], revoked: [], states: [] }
  watched.stop = subscribe(topic, (ops: PatchOp[]) => watched.values.push((ops[0] as [string, string, number])[2]), {
    path, EventSource: Source,
    onRevoked: (revokedTopic) => watched.revoked.push(revokedTopic),
    onStateChange: (state) => watched.states.push(state),
    onError: () => {},
  })
  t.after(() => watched.stop())
  return watched
}

describe('subscribe and revocation', () => {
  it('ends the revoked topic\'s subscription for good, and resumes the other topic of the shared stream exactly', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker, identify: (req: NodeRequest) => new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? undefined })
    const urls: string[] = []
    const Source = recordingSource(urls)
    const path = `${server.origin}/events?user=u`
    const a = watch(t, 'a', path, Source)
    const b = watch(t, 'b', path, Source)
    await until(() => a.stop.state === 'open' && b.stop.state === 'open' && urls.length === 1, 5000, 'one shared stream of a and b')
    assert.deepEqual(topicsOf(urls[0] as string), ['a', 'b'], 'both topics on one stream')

    let sent = 0
    const sendB = async (): Promise<void> => {
      await publish(broker, 'b', [['replace', '/n', ++sent]])
    }
    for (let i = 0; i < 5; i++) await sendB()
    await publish(broker, 'a', [['replace', '/n', 100]])
    await until(() => a.values.length === 1, 5000, 'a to get its patch')
    const revoking = revoke(broker, { identity: 'u', topic: 'a' })
    // Patches of b keep coming while the stream is revoked and reopened.
    for (let i = 0; i < 5; i++) await sendB()
    await revoking
    await until(() => a.revoked.length === 1, 1000, 'onRevoked')
    await until(() => urls.length === 2 && b.stop.state === 'open' && server.handler.stats().connections === 1, 5000, 'the stream to reopen with b')
    for (let i = 0; i < 5; i++) await sendB()
    await publish(broker, 'a', [['replace', '/n', 200]])
    await until(() => b.values.length >= sent, 5000, `b to get all ${sent} patches (has ${b.values.length})`)

    assert.deepEqual(b.values, Array.from({ length: sent }, (_, i) => i + 1), 'b got every patch once, in order')
    assert.deepEqual(a.revoked, ['a'], 'onRevoked once, with the topic')
    assert.equal(a.stop.state, 'revoked', 'stop.state is revoked')
    assert.ok(a.states.includes('revoked'), `onStateChange told it: ${a.states.join(', ')}`)
    assert.deepEqual(a.values, [100], 'a got nothing after its revocation')
    assert.deepEqual(topicsOf(urls[1] as string), ['b'], 'the stream reopened without a')
    assert.ok(new URL(urls[1] as string).searchParams.get('lastEventId') !== null, 'from its last event id')
    assert.equal(urls.filter((url) => topicsOf(url).includes('a')).length, 1, 'a was never asked for again')
    assert.equal(b.revoked.length, 0, 'b was not revoked')
    a.stop()
    assert.equal(a.stop.state, 'revoked', 'stopping it afterwards leaves it revoked')
  })

  it('revoking every topic of the stream ends every subscription and opens nothing more', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker, identify: () => 'u' })
    const urls: string[] = []
    const Source = recordingSource(urls)
    const path = `${server.origin}/events`
    const subs = ['x', 'y', 'z'].map((topic) => watch(t, topic, path, Source))
    await until(() => subs.every((sub) => sub.stop.state === 'open'), 5000, 'the shared stream')
    await revoke(broker, { identity: 'u' })
    await until(() => subs.every((sub) => sub.revoked.length === 1), 1000, 'every onRevoked')
    await until(() => server.handler.stats().connections === 0, 1000, 'the stream to end')
    assert.deepEqual(subs.map((sub) => sub.stop.state), ['revoked', 'revoked', 'revoked'], 'every subscription is revoked')
    // A reconnect would come after the stream's retry: (about 3 s); a fresh
    // subscription on the same path shows the page's stream state instead.
    const later = watch(t, 'w', path, Source)
    await until(() => later.stop.state === 'open', 5000, 'a new subscription')
    assert.deepEqual(urls.slice(1).map(topicsOf), [['w']], 'only the new topic is asked for: the revoked ones never again')
  })

  it('two subscriptions of one topic in a page both get onRevoked', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker })
    const urls: string[] = []
    const Source = recordingSource(urls)
    const path = `${server.origin}/events`
    const first = watch(t, 'doc', path, Source)
    const second = watch(t, 'doc', path, Source)
    const other = watch(t, 'other', path, Source)
    await until(() => [first, second, other].every((sub) => sub.stop.state === 'open'), 5000, 'the shared stream')
    assert.equal(server.handler.revoke({ topic: 'doc' }), 1, 'one stream carried it')
    await until(() => first.revoked.length === 1 && second.revoked.length === 1, 1000, 'both onRevoked')
    await until(() => urls.length === 2 && other.stop.state === 'open', 5000, 'the stream to reopen with the other topic')
    assert.deepEqual(topicsOf(urls[1] as string), ['other'], 'without the revoked topic')
  })
})

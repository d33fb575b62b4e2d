/**
 * The topic subscriptions of patchwire/redis: one SUBSCRIBE per topic
 * however many listeners it has, UNSUBSCRIBE after the last one leaves,
 * `ready` once the topic is live, a failed SUBSCRIBE reported and retried,
 * and every topic subscribed again after a reconnect. The SUBSCRIBE and
 * UNSUBSCRIBE answers are held by the test, so each race is played out in
 * the order the test chooses; the same behaviour over a real Redis is in
 * redis.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Channels } from '../src/adapters/redis/clients.ts'
import { Subscriptions } from '../src/adapters/redis/subscriptions.ts'
import type { SubscribedTopic } from '../src/adapters/redis/subscriptions.ts'
import type { Topic } from '../src/adapters/redis/topic.ts'
import { PatchwireError } from '../src/errors.ts'

interface Pending {
  readonly command: 'SUBSCRIBE' | 'UNSUBSCRIBE'
  readonly channel: string
  resolve(): void
  reject(error: Error): void
}

/** Lets every callback already due run. */
async function turns(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

function setup(): {
  subscriptions: Subscriptions
  topics: Map<string, SubscribedTopic>
  sent: Pending[]
  resumed: Array<[string[], string[]]>
  stopped: string[]
  errors: PatchwireError[]
  connection: { up: boolean }
  answer(command: Pending['command'], channel: string, error?: Error): void
} {
  const topics = new Map<string, SubscribedTopic>()
  const sent: Pending[] = []
  const resumed: Array<[string[], string[]]> = []
  const stopped: string[] = []
  const errors: PatchwireError[] = []
  const connection = { up: true }
  const send = (command: Pending['command'], channel: string): Promise<unknown> => new Promise<void>((resolve, reject) => { sent.push({ command, channel, resolve, reject }) })
  const channels: Channels = { subscribe: (channel) => send('SUBSCRIBE', channel), unsubscribe: (channel) => send('UNSUBSCRIBE', channel) }
  const feed = {
    // The start position of a topic is 10.
    start: async (topic: Topic) => { topic.last = 10 },
    delivered: async () => {},
    resumed: (refill: readonly Topic[], fresh: readonly Topic[]) => { resumed.push([refill.map((t) => t.name), fresh.map((t) => t.name)]) },
  }
  const subscriptions = new Subscriptions({
    topics,
    channels,
    channelOf: (topic) => `p:${topic}`,
    isConnected: () => connection.up,
    feed,
    history: { stop: (channel) => { stopped.push(channel) } },
    onError: (error) => errors.push(error),
  })
  const answer = (command: Pending['command'], channel: string, error?: Error): void => {
    const at = sent.findIndex((pending) => pending.command === command && pending.channel === channel)
    assert.ok(at !== -1, `a ${command} ${channel} was sent`)
    const [pending] = sent.splice(at, 1) as [Pending]
    if (error === undefined) pending.resolve()
    else pending.reject(error)
  }
  return { subscriptions, topics, sent, resumed, stopped, errors, connection, answer }
}

const commands = (sent: readonly Pending[]): string[] => sent.map((pending) => `${pending.command} ${pending.channel}`)

describe('Subscriptions (patchwire/redis)', () => {
  it('sends one SUBSCRIBE per topic, and `ready` settles once it is live and its start position read', async () => {
    const { subscriptions, topics, sent, answer } = setup()
    let settled = 0
    const first = subscriptions.subscribe('room', () => {})
    const second = subscriptions.subscribe('room', () => {})
    void first.ready?.then(() => settled++)
    assert.deepEqual(commands(sent), ['SUBSCRIBE p:room'], 'one SUBSCRIBE for two subscriptions')
    assert.equal(first.ready, second.ready, 'both wait for the same SUBSCRIBE')
    await turns()
    assert.equal(settled, 0, 'not ready before Redis answers')
    answer('SUBSCRIBE', 'p:room')
    await first.ready
    assert.equal(topics.get('p:room')?.status, 'live', 'the topic is live')
    assert.equal(topics.get('p:room')?.last, 10, 'its start position was read before ready settled')
    const third = subscriptions.subscribe('room', () => {})
    await third.ready
    assert.deepEqual(commands(sent), [], 'a later subscription to a live topic sends nothing')
  })

  it('sends UNSUBSCRIBE once the last subscription leaves, and forgets the topic', async () => {
    const { subscriptions, topics, sent, stopped, answer } = setup()
    const a = subscriptions.subscribe('room', () => {})
    const b = subscriptions.subscribe('room', () => {})
    answer('SUBSCRIBE', 'p:room')
    await a.ready
    a()
    a()
    assert.deepEqual(commands(sent), [], 'one subscription left: the topic stays subscribed (and unsubscribing twice is one)')
    b()
    assert.deepEqual(commands(sent), ['UNSUBSCRIBE p:room'], 'UNSUBSCRIBE after the last one')
    assert.equal(topics.has('p:room'), false, 'the topic is forgotten')
    assert.deepEqual(stopped, ['p:room'], 'and so is its local history')
  })

  it('settles the `ready` of a topic let go before its SUBSCRIBE was answered', async () => {
    const { subscriptions, topics, answer } = setup()
    const unsubscribe = subscriptions.subscribe('room', () => {})
    unsubscribe()
    assert.equal(await unsubscribe.ready, undefined, 'ready resolves: there is nothing to wait for')
    answer('SUBSCRIBE', 'p:room')
    answer('UNSUBSCRIBE', 'p:room')
    await turns()
    assert.equal(topics.has('p:room'), false, 'the late SUBSCRIBE answer does not bring the topic back')
  })

  it('rejects `ready` when SUBSCRIBE fails, reports it, calls onGap, and subscribes again for the next subscription', async () => {
    const { subscriptions, topics, sent, errors, answer } = setup()
    let gaps = 0
    const failed = subscriptions.subscribe('room', () => {}, () => { gaps++ })
    const cause = new Error('NOPERM')
    answer('SUBSCRIBE', 'p:room', cause)
    await assert.rejects(Promise.resolve(failed.ready), (error: unknown) => error instanceof PatchwireError && error.code === 'ERR_PATCHWIRE_BROKER' && error.cause === cause, 'ready rejects with the cause')
    assert.equal(errors.length, 1, 'the failure is reported once')
    assert.match(errors[0]?.message ?? '', /could not subscribe to Redis channel "p:room"/, 'naming the channel')
    assert.equal(gaps, 1, 'the topic\'s streams are reset')
    assert.equal(topics.get('p:room')?.status, 'failed', 'the topic is marked failed')
    const next = subscriptions.subscribe('room', () => {})
    assert.deepEqual(commands(sent), ['SUBSCRIBE p:room'], 'the next subscription sends SUBSCRIBE again')
    answer('SUBSCRIBE', 'p:room')
    await next.ready
  })

  it('reports an UNSUBSCRIBE that fails and sends it again on reconnect; a later confirmation clears it', async () => {
    const { subscriptions, sent, errors, answer } = setup()
    const unsubscribe = subscriptions.subscribe('room', () => {})
    answer('SUBSCRIBE', 'p:room')
    await unsubscribe.ready
    unsubscribe()
    answer('UNSUBSCRIBE', 'p:room', new Error('cut off'))
    await turns()
    assert.equal(errors.length, 1, 'the failure is reported')
    assert.match(errors[0]?.message ?? '', /could not unsubscribe from Redis channel "p:room"/, 'naming the channel')
    subscriptions.resubscribe(false)
    assert.deepEqual(commands(sent), ['UNSUBSCRIBE p:room'], 'sent again on reconnect')
    answer('UNSUBSCRIBE', 'p:room')
    await turns()
    subscriptions.resubscribe(false)
    assert.deepEqual(commands(sent), [], 'confirmed: not sent again')
  })

  it('on reconnect, subscribes every topic again and hands the feed the ones to refill and the ones to start afresh', async () => {
    const { subscriptions, topics, sent, resumed, answer } = setup()
    const known = subscriptions.subscribe('known', () => {})
    answer('SUBSCRIBE', 'p:known')
    await known.ready
    const unknown = subscriptions.subscribe('unknown', () => {})
    answer('SUBSCRIBE', 'p:unknown')
    await unknown.ready
    ;(topics.get('p:unknown') as SubscribedTopic).last = undefined
    subscriptions.resubscribe(false)
    assert.deepEqual(commands(sent).sort(), ['SUBSCRIBE p:known', 'SUBSCRIBE p:unknown'], 'every topic again')
    answer('SUBSCRIBE', 'p:known')
    answer('SUBSCRIBE', 'p:unknown')
    await turns()
    assert.deepEqual(resumed, [[['known'], ['unknown']]], 'known is refilled from its position; unknown starts afresh')
  })

  it('on the first connection, subscribes again only the topics whose SUBSCRIBE was refused before it', async () => {
    const { subscriptions, sent, resumed, answer } = setup()
    const live = subscriptions.subscribe('live', () => {})
    answer('SUBSCRIBE', 'p:live')
    await live.ready
    const refused = subscriptions.subscribe('refused', () => {})
    answer('SUBSCRIBE', 'p:refused', new Error('not connected'))
    await assert.rejects(Promise.resolve(refused.ready), PatchwireError, 'refused before the connection')
    subscriptions.resubscribe(true)
    assert.deepEqual(commands(sent), ['SUBSCRIBE p:refused'], 'only the refused topic')
    answer('SUBSCRIBE', 'p:refused')
    await turns()
    assert.deepEqual(resumed, [[[], ['refused']]], 'started afresh')
  })

  it('leaves the feed alone when a later reconnect, or a drop, overtook the resubscription', async () => {
    const { subscriptions, resumed, connection, answer } = setup()
    const room = subscriptions.subscribe('room', () => {})
    answer('SUBSCRIBE', 'p:room')
    await room.ready
    subscriptions.resubscribe(false)
    subscriptions.resubscribe(false)
    answer('SUBSCRIBE', 'p:room')
    answer('SUBSCRIBE', 'p:room')
    await turns()
    assert.deepEqual(resumed, [[['room'], []]], 'only the latest resubscription hands the topics over')
    subscriptions.resubscribe(false)
    connection.up = false
    answer('SUBSCRIBE', 'p:room')
    await turns()
    assert.equal(resumed.length, 1, 'not while the connection is down again')
  })

  it('refuses subscriptions while the subscriber is closed for good, and sends nothing', async () => {
    const { subscriptions, sent } = setup()
    const report = new PatchwireError('ERR_PATCHWIRE_BROKER', 'closed')
    subscriptions.closed(report)
    const refused = subscriptions.subscribe('room', () => {})
    await assert.rejects(Promise.resolve(refused.ready), (error: unknown) => error instanceof PatchwireError && /cannot subscribe to topic "room": the Redis subscriber is closed for good/.test(error.message) && error.cause === report, 'refused with the report as cause')
    refused()
    assert.deepEqual(commands(sent), [], 'nothing sent')
  })

  it('throws a TypeError for a listener that is not a function', () => {
    const { subscriptions } = setup()
    assert.throws(() => subscriptions.subscribe('room', 'x' as unknown as () => void), (error: unknown) => error instanceof TypeError && /listener must be a function/.test(error.message), 'a programmer error, at once')
  })
})

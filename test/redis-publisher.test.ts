/**
 * The publish path of patchwire/redis: a lone publish is one call of the
 * lone PUBLISH script at once; the publishes made while a call is under way go out
 * together at the end of the turn, in order, each topic's keys once; every
 * publish settles by its own result, a call that fails rejects all of its
 * publishes, and a failure nobody handles is reported instead of crashing
 * the process. A stand-in runs the script; the script itself runs on a real
 * Redis in redis.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Publisher } from '../src/adapters/redis/publisher.ts'
import type { ScriptRunner } from '../src/adapters/redis/script-runner.ts'
import { LONE_PUBLISH_SCRIPT } from '../src/adapters/redis/lone-publish.ts'
import { PUBLISH_SCRIPT, keyLayout } from '../src/adapters/redis/scripts.ts'
import type { Known } from '../src/adapters/redis/scripts.ts'
import { PatchwireError } from '../src/errors.ts'

interface Run {
  script: unknown
  keys: string[]
  args: string[]
  what: string
  failFast: boolean
  answer(reply: unknown): void
  fail(error: unknown): void
}

/** A publisher whose script calls wait until the test answers them. */
function setup(): { publisher: Publisher, runs: Run[], observed: number[][], errors: PatchwireError[] } {
  const runs: Run[] = []
  const observed: number[][] = []
  const errors: PatchwireError[] = []
  const runner: Pick<ScriptRunner, 'run'> = {
    run: (script, keys, args, what, failFast) => new Promise((resolve, reject) => {
      runs.push({ script, keys, args: args(), what, failFast, answer: resolve, fail: reject })
    }),
  }
  const known: Known = { epoch: 'e1', seen: 41 }
  const feed = { known, observe: (epoch: string, position: number, highest?: number) => { observed.push([Number(epoch === 'e1'), position, highest ?? position]) } }
  const publisher = new Publisher({ layout: keyLayout('app:'), runner, feed, history: 100, historyMs: 60_000, lastTtlMs: 86_400_000, onError: (error) => errors.push(error) })
  return { publisher, runs, observed, errors }
}

/** The script's reply for a batch whose positions follow `base`. */
function reply(base: number, results: readonly (number | string)[]): unknown[] {
  return ['e1', String(base), results.map(String)]
}

/** The payloads a call carries: the last argument of a lone call, every other one after the channels of a batch. */
function payloadsOf(run: Run): string[] {
  if (run.script === LONE_PUBLISH_SCRIPT) return [run.args[7] as string]
  const topics = (run.keys.length - 2) / 2
  return run.args.slice(6 + topics).filter((_, i) => i % 2 === 1)
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

const isBrokerError = (pattern: RegExp) => (error: unknown): boolean => error instanceof PatchwireError && error.code === 'ERR_PATCHWIRE_BROKER' && pattern.test(error.message)

describe('Publisher (patchwire/redis)', () => {
  it('sends a lone publish at once, in one call of the lone script with the topic keys and arguments, and resolves with the event id', async () => {
    const { publisher, runs, observed } = setup()
    const published = publisher.publish('room', '[["add","/a",1]]')
    assert.equal(runs.length, 1, 'sent at once, without waiting for the end of the turn')
    const [run] = runs as [Run]
    assert.equal(run.script, LONE_PUBLISH_SCRIPT, 'the lone PUBLISH script')
    assert.deepEqual(run.keys, ['app:epoch', 'app:seq', 'app:last:room', 'app:stream:room'], 'epoch, counter, the topic\'s last and stream keys')
    assert.equal(run.args.length, 8, 'known epoch, highest seen, new epoch, last ttl, history, historyMs, the channel and the payload')
    assert.deepEqual([run.args.slice(0, 2), run.args.slice(3)], [['e1', '41'], ['86400000', '100', '60000', 'app:room', '[["add","/a",1]]']], 'what the process knows, the bounds, then the channel and the message')
    assert.match(run.args[2] as string, /^[0-9a-z]{1,13}$/, 'a fresh epoch, should the history have to be created')
    assert.equal(run.failFast, true, 'a publish fails at once while the publisher is down')
    assert.equal(run.what, 'publish to topic "room"', 'errors name the topic')
    run.answer(42)
    assert.equal(await published, 'e1-42', 'the id is <epoch>-<position>, the epoch the one sent when the reply is the position alone')
    assert.deepEqual(observed, [[1, 41, 42]], 'the feed learns that position 42 was issued, and that a new epoch would start just before it')
  })

  it('reads a lone publish\'s reply in every form: a position as digits, a new epoch, a refusal, and one it cannot read', async () => {
    const { publisher, runs, observed } = setup()
    const answers: unknown[] = ['43', ['e2', '50'], 'WRONGTYPE Operation against a key holding the wrong kind of value', ['e2'], 0]
    const results: PromiseSettledResult<string>[] = []
    for (const answer of answers) {
      const published = publisher.publish('room', '[]')
      ;(runs.at(-1) as Run).answer(answer)
      results.push((await Promise.allSettled([published]))[0] as PromiseSettledResult<string>)
    }
    assert.deepEqual(results.slice(0, 2), [{ status: 'fulfilled', value: 'e1-43' }, { status: 'fulfilled', value: 'e2-50' }], 'digits are a position in the epoch sent; a pair names another epoch')
    assert.deepEqual(observed, [[1, 42, 43], [0, 49, 50]], 'the feed learns of both, the new epoch starting just before its position')
    const [refusal, unreadable, zero] = results.slice(2).map((result) => (result as PromiseRejectedResult).reason as PatchwireError)
    assert.ok(isBrokerError(/Redis refused to publish to topic "room" \(WRONGTYPE/)(refusal), `a refusal names the topic and Redis's error: ${String(refusal)}`)
    assert.match(String((refusal?.cause as Error).message), /^WRONGTYPE/, 'Redis\'s error as cause')
    for (const error of [unreadable, zero]) assert.ok(isBrokerError(/could not publish to topic "room": the reply of Redis cannot be read/)(error), `an unreadable reply rejects: ${String(error)}`)
  })

  it('sends the publishes made while a call is under way in one call at the end of the turn, in order, each topic\'s keys once', async () => {
    const { publisher, runs, observed } = setup()
    const first = publisher.publish('a', '[0]')
    const rest = [publisher.publish('b', '[1]'), publisher.publish('a', '[2]'), publisher.publish('c', '[3]'), publisher.publish('b', '[4]')]
    assert.equal(runs.length, 1, 'the others wait for the end of the turn')
    await nextTurn()
    assert.equal(runs.length, 2, 'one more call for the four others')
    const batch = runs[1] as Run
    assert.deepEqual(batch.keys, ['app:epoch', 'app:seq', 'app:last:b', 'app:stream:b', 'app:last:a', 'app:stream:a', 'app:last:c', 'app:stream:c'], 'each topic once, numbered in order of first appearance')
    assert.deepEqual(batch.args.slice(6), ['app:b', 'app:a', 'app:c', '1', '[1]', '2', '[2]', '3', '[3]', '1', '[4]'], 'the channels, then each message with its topic number, in publish order')
    assert.equal(batch.what, 'publish 4 messages to topic "b" and 2 other topic(s)', 'errors say what the call held')
    batch.answer(reply(50, [51, 52, 53, 54]))
    assert.deepEqual(await Promise.all(rest), ['e1-51', 'e1-52', 'e1-53', 'e1-54'], 'each publish gets its own position')
    ;(runs[0] as Run).answer(50)
    assert.equal(await first, 'e1-50', 'the lone call settles on its own')
    assert.deepEqual(observed, [[1, 50, 54], [1, 49, 50]], 'the feed learns of each reply')
  })

  it('sends at once again once no call is under way', async () => {
    const { publisher, runs } = setup()
    const first = publisher.publish('a', '[0]')
    ;(runs[0] as Run).answer(2)
    await first
    void publisher.publish('a', '[1]').catch(() => undefined)
    assert.equal(runs.length, 2, 'the second one went out at once')
  })

  it('splits a turn of more than 256 publishes into calls of 256, in order', async () => {
    const { publisher, runs } = setup()
    const sent = Array.from({ length: 601 }, (_, i) => publisher.publish('t', `[${i}]`))
    await nextTurn()
    assert.deepEqual(runs.map((run) => payloadsOf(run).length), [1, 256, 256, 88], 'one lone call, then calls of at most 256')
    assert.deepEqual(runs.map((run) => payloadsOf(run)[0]), ['[0]', '[1]', '[257]', '[513]'], 'in publish order')
    assert.deepEqual(runs.map((run) => run.script === PUBLISH_SCRIPT), [false, true, true, true], 'the calls of a turn run the batch script')
    ;(runs[0] as Run).answer(1)
    let base = 1
    for (const run of runs.slice(1)) {
      const count = payloadsOf(run).length
      run.answer(reply(base, Array.from({ length: count }, (_, i) => base + i + 1)))
      base += count
    }
    const ids = await Promise.all(sent)
    assert.deepEqual(ids, Array.from({ length: 601 }, (_, i) => `e1-${i + 1}`), 'every publish gets its position')
  })

  it('closes a call once its payloads reach 1 MiB, and sends a larger payload in a call of its own', async () => {
    const { publisher, runs } = setup()
    const big = 'x'.repeat(600 * 1024)
    void publisher.publish('t', '[0]').catch(() => undefined)
    for (const payload of [big, big, '[1]', 'y'.repeat(2 * 1024 * 1024), '[2]']) void publisher.publish('t', payload).catch(() => undefined)
    await nextTurn()
    const sizes = runs.map((run) => payloadsOf(run).map((payload) => payload.length))
    assert.deepEqual(sizes, [[3], [big.length, big.length], [3, 2 * 1024 * 1024], [3]], 'calls closed once their payloads reach 1 MiB, in publish order')
  })

  it('rejects only the publishes Redis refused inside a call that ran, naming their topic and the refusal', async () => {
    const { publisher, runs } = setup()
    void publisher.publish('x', '[]').catch(() => undefined)
    const sent = [publisher.publish('good', '[1]'), publisher.publish('bad', '[2]'), publisher.publish('good', '[3]')]
    await nextTurn()
    ;(runs[1] as Run).answer(reply(10, [11, 'WRONGTYPE Operation against a key holding the wrong kind of value', 13]))
    const [a, b, c] = await Promise.allSettled(sent)
    assert.deepEqual(a, { status: 'fulfilled', value: 'e1-11' }, 'the first one was published')
    assert.deepEqual(c, { status: 'fulfilled', value: 'e1-13' }, 'the last one was published')
    assert.equal(b?.status, 'rejected', 'the refused one rejects')
    const reason = (b as PromiseRejectedResult).reason as PatchwireError
    assert.ok(isBrokerError(/Redis refused to publish to topic "bad" \(WRONGTYPE/)(reason), `a broker error naming the topic and the refusal: ${reason.message}`)
    assert.match(String((reason.cause as Error).message), /^WRONGTYPE/, 'Redis\'s error as cause')
  })

  it('rejects every publish of a call that failed, with the runner\'s PatchwireError, and reports none of those awaited', async () => {
    const { publisher, runs, errors } = setup()
    void publisher.publish('x', '[]').catch(() => undefined)
    const sent = [publisher.publish('a', '[1]'), publisher.publish('b', '[2]')]
    await nextTurn()
    const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', 'down')
    ;(runs[1] as Run).fail(failure)
    for (const result of await Promise.allSettled(sent)) {
      assert.ok(result.status === 'rejected' && result.reason === failure, 'each publish of the call rejects with the runner\'s error')
    }
    // An unhandled one would be reported by a timer set when it rejected,
    // which fires before this later one.
    await new Promise((resolve) => setTimeout(resolve, 0))
    assert.deepEqual(errors, [], 'a handled rejection is not reported')
  })

  it('rejects every publish of a call whose reply cannot be read with ERR_PATCHWIRE_BROKER, and resolves none of them', async () => {
    const { publisher, runs } = setup()
    void publisher.publish('x', '[]').catch(() => undefined)
    const sent = [publisher.publish('a', '[1]'), publisher.publish('b', '[2]')]
    await nextTurn()
    ;(runs[1] as Run).answer(reply(10, [11]))
    for (const result of await Promise.allSettled(sent)) {
      assert.ok(result.status === 'rejected' && isBrokerError(/could not publish 2 messages to topic "a" and 1 other topic\(s\): the reply of Redis cannot be read/)(result.reason), `a broker error: ${String(result.status === 'rejected' ? result.reason : result.value)}`)
      assert.ok(result.status === 'rejected' && (result.reason as Error).cause instanceof TypeError, 'the bad reply is the cause')
    }
  })

  it('reports a failure nobody handles to onError, wrapping one that is not a PatchwireError', async () => {
    const { publisher, runs, errors } = setup()
    void publisher.publish('room', '[]')
    ;(runs[0] as Run).fail(new Error('socket closed'))
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    assert.equal(errors.length, 1, 'reported once')
    const [error] = errors as [PatchwireError]
    assert.equal(error.code, 'ERR_PATCHWIRE_BROKER', 'as a broker error')
    assert.match(error.message, /could not publish to topic "room"/, 'naming the topic')
    assert.equal((error.cause as Error).message, 'socket closed', 'the client\'s error is the cause')
  })
})

/**
 * The publish path of patchwire/redis: one PUBLISH script call per publish,
 * with the topic's keys and the arguments the script expects, the reply
 * turned into an event id and told to the feed, and a failure nobody
 * handles reported instead of crashing the process. A stand-in runs the
 * script; the script itself runs on a real Redis in redis.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Publisher } from '../src/adapters/redis/publisher.ts'
import type { ScriptRunner } from '../src/adapters/redis/script-runner.ts'
import { PUBLISH_SCRIPT, keyLayout } from '../src/adapters/redis/scripts.ts'
import type { Known } from '../src/adapters/redis/scripts.ts'
import { PatchwireError } from '../src/errors.ts'

interface Run {
  script: unknown
  keys: string[]
  args: string[]
  what: string
  failFast: boolean
}

function setup(reply: () => Promise<unknown>): { publisher: Publisher, runs: Run[], observed: number[][], errors: PatchwireError[] } {
  const runs: Run[] = []
  const observed: number[][] = []
  const errors: PatchwireError[] = []
  const runner: Pick<ScriptRunner, 'run'> = {
    run: (script, keys, args, what, failFast) => {
      runs.push({ script, keys, args: args(), what, failFast })
      return reply()
    },
  }
  const known: Known = { epoch: 'e1', seen: 41 }
  const feed = { known, observe: (epoch: string, position: number, highest?: number) => { observed.push([Number(epoch === 'e1'), position, highest ?? position]) } }
  const publisher = new Publisher({ layout: keyLayout('app:'), runner, feed, history: 100, historyMs: 60_000, lastTtlMs: 86_400_000, onError: (error) => errors.push(error) })
  return { publisher, runs, observed, errors }
}

describe('Publisher (patchwire/redis)', () => {
  it('runs the PUBLISH script once with the topic keys and arguments, and resolves with the event id', async () => {
    const { publisher, runs, observed } = setup(async () => ['e1', '42'])
    const id = await publisher.publish('room', '[["add","/a",1]]')
    assert.equal(id, 'e1-42', 'the id is <epoch>-<position>')
    assert.equal(runs.length, 1, 'one script call per publish')
    const [run] = runs as [Run]
    assert.equal(run.script, PUBLISH_SCRIPT, 'the PUBLISH script')
    assert.deepEqual(run.keys, ['app:epoch', 'app:seq', 'app:last:room', 'app:stream:room'], 'epoch, counter, the topic\'s last and stream keys')
    assert.equal(run.args.length, 8, 'new epoch, known epoch, highest seen, last ttl, channel, payload, history, historyMs')
    assert.deepEqual(run.args.slice(1), ['e1', '41', '86400000', 'app:room', '[["add","/a",1]]', '100', '60000'], 'what the process knows, then the message and its bounds')
    assert.match(run.args[0] as string, /^[0-9a-z]{1,13}$/, 'a fresh epoch, should the history have to be created')
    assert.equal(run.failFast, true, 'a publish fails at once while the publisher is down')
    assert.deepEqual(observed, [[1, 41, 42]], 'the feed learns that position 42 was issued, and that a new epoch would start just before it')
  })

  it('rejects an awaited failure with the PatchwireError as it is, and does not report it', async () => {
    const failure = new PatchwireError('ERR_PATCHWIRE_BROKER', 'down')
    const { publisher, errors } = setup(async () => { throw failure })
    await assert.rejects(publisher.publish('room', '[]'), (error: unknown) => error === failure, 'the runner\'s error')
    // An unhandled one would be reported by a timer set when it rejected,
    // which fires before this later one.
    await new Promise((resolve) => setTimeout(resolve, 0))
    assert.deepEqual(errors, [], 'a handled rejection is not reported')
  })

  it('reports a failure nobody handles to onError, wrapping one that is not a PatchwireError', async () => {
    const { publisher, errors } = setup(async () => ['e1', 'not a number'])
    void publisher.publish('room', '[]')
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    assert.equal(errors.length, 1, 'reported once')
    const [error] = errors as [PatchwireError]
    assert.equal(error.code, 'ERR_PATCHWIRE_BROKER', 'as a broker error')
    assert.match(error.message, /could not publish to topic "room"/, 'naming the topic')
    assert.ok(error.cause instanceof TypeError, 'the bad reply is the cause')
  })
})

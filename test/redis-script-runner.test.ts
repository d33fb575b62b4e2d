/**
 * How the Redis broker runs its scripts on the publisher connection: it
 * waits for the first connection, fails a publish at once during a later
 * outage, and bounds every script by publishTimeoutMs. A stand-in client
 * answers (or does not), so each case is decided by the test, not by a
 * network.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { connectionOf } from '../src/adapters/redis/clients.ts'
import { ScriptRunner } from '../src/adapters/redis/script-runner.ts'
import { Script } from '../src/adapters/redis/scripts.ts'
import { PatchwireError } from '../src/errors.ts'
import { FakeIoRedis } from './helpers/fake-redis.ts'

const SCRIPT = new Script('return 1')

function setup(status: string, timeoutMs = 5000): { client: FakeIoRedis, runner: ScriptRunner, errors: PatchwireError[] } {
  const client = new FakeIoRedis(status)
  const errors: PatchwireError[] = []
  const runner = new ScriptRunner(connectionOf(client, 'publisher'), timeoutMs, (error) => errors.push(error))
  return { client, runner, errors }
}

/**
 * Keeps the event loop alive while `promise` settles: the runner's timers are
 * unref'd (they must not hold a process open), and nothing else here holds it.
 */
async function settled<T>(promise: Promise<T>): Promise<T> {
  const alive = setTimeout(() => {}, 60_000)
  try {
    return await promise
  } finally {
    clearTimeout(alive)
  }
}

/** Resolves once `check` holds, looking again at every turn of the event loop. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve))
}

const isBrokerError = (pattern: RegExp) => (error: unknown): boolean => error instanceof PatchwireError && error.code === 'ERR_PATCHWIRE_BROKER' && pattern.test(error.message)

describe('ScriptRunner (patchwire/redis)', () => {
  it('runs the script by hash with its keys and arguments, and resolves with the reply', async () => {
    const { client, runner } = setup('ready')
    client.answer = async () => ['e', '7']
    const reply = await runner.run(SCRIPT, ['k1', 'k2'], () => ['a'], 'test', true)
    assert.deepEqual(reply, ['e', '7'], 'the reply as Redis gave it')
    assert.equal(client.commands.length, 1, 'one command')
    assert.deepEqual(client.commands[0]?.slice(2), ['2', 'k1', 'k2', 'a'], 'EVALSHA <sha> <number of keys> keys… args…')
    assert.equal(client.commands[0]?.[0], 'EVALSHA', 'by hash')
  })

  it('waits for the first connection, and makes the arguments only then', async () => {
    const { client, runner } = setup('connecting')
    let made = 0
    const reply = runner.run(SCRIPT, [], () => { made++; return [] }, 'test', true)
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(client.commands.length, 0, 'nothing is sent before the first connection')
    assert.equal(made, 0, 'the arguments are not made yet: they carry what the process knows when the script goes out')
    client.up()
    assert.equal(await reply, 'OK', 'the script ran once connected')
    assert.equal(made, 1, 'the arguments were made once')
  })

  it('rejects a script that waited for a first connection that never came, naming the fix', async () => {
    const { runner, errors } = setup('connecting', 30)
    await assert.rejects(settled(runner.run(SCRIPT, [], () => [], 'publish to topic "a"', true)), isBrokerError(/cannot publish to topic "a": the Redis publisher has not connected within 30 ms .*check its URL/), 'the wait is bounded by publishTimeoutMs')
    assert.deepEqual(errors, [], 'errors before the first connection are not reported: the rejection carries them')
  })

  it('fails a publish at once while the publisher is down after its first connection, but lets a read wait', async () => {
    const { client, runner, errors } = setup('ready')
    client.down()
    assert.equal(errors.length, 1, 'the loss is reported once')
    await assert.rejects(runner.run(SCRIPT, [], () => [], 'publish to topic "a"', true), isBrokerError(/cannot publish to topic "a": the Redis publisher is not connected \(status: reconnecting\)/), 'a publish fails fast')
    const read = runner.run(SCRIPT, [], () => [], 'read', false)
    client.up()
    assert.equal(await read, 'OK', 'a read waits for the connection to come back')
    assert.equal(client.commands.length, 1, 'only the read was sent')
  })

  it('rejects with the client error as cause when Redis refuses the script', async () => {
    const { client, runner } = setup('ready')
    const refusal = new Error('ERR something')
    client.answer = async () => { throw refusal }
    await assert.rejects(runner.run(SCRIPT, [], () => [], 'publish to topic "a"', true), (error: unknown) => isBrokerError(/Redis refused to publish to topic "a"/)(error) && (error as Error).cause === refusal, 'the refusal, with its cause')
  })

  it('falls back to EVAL when Redis does not know the script (NOSCRIPT)', async () => {
    const { client, runner } = setup('ready')
    client.answer = async ([command]) => {
      if (command === 'EVALSHA') throw new Error('NOSCRIPT No matching script')
      return 'ran'
    }
    assert.equal(await runner.run(SCRIPT, [], () => [], 'test', true), 'ran', 'the source was sent')
    assert.deepEqual(client.commands.map(([command]) => command), ['EVALSHA', 'EVAL'], 'by hash, then by source')
  })

  it('bounds each of several calls under way by its own deadline, one timer for all, and leaves answered ones alone', async () => {
    const { client, runner } = setup('ready', 40)
    client.answer = ([, , , key]) => key === 'answered' ? Promise.resolve('OK') : new Promise(() => {})
    const outcome = (call: Promise<unknown>): { settled?: number, error?: unknown } => {
      const state: { settled?: number, error?: unknown } = {}
      call.then(() => { state.settled = performance.now() }, (error: unknown) => { state.settled = performance.now(); state.error = error })
      return state
    }
    const firstStarted = performance.now()
    const first = outcome(runner.run(SCRIPT, ['first'], () => [], 'publish to topic "first"', true))
    await settled(until(() => performance.now() - firstStarted >= 20))
    const secondStarted = performance.now()
    const second = outcome(runner.run(SCRIPT, ['second'], () => [], 'publish to topic "second"', true))
    assert.equal(await runner.run(SCRIPT, ['answered'], () => [], 'test', true), 'OK', 'an answered call resolves')
    await settled(until(() => first.settled !== undefined))
    assert.equal(second.settled, undefined, 'the second call is not rejected with the first')
    assert.ok(isBrokerError(/within 40 ms \(publishTimeoutMs\) to publish to topic "first"/)(first.error), `the first call times out: ${String(first.error)}`)
    await settled(until(() => second.settled !== undefined))
    assert.ok(isBrokerError(/to publish to topic "second"/)(second.error), `the second call times out too: ${String(second.error)}`)
    const waited = Number(second.settled) - secondStarted
    assert.ok(waited >= 39, `the second call had its whole 40 ms: ${waited} ms`)
  })

  it('rejects a script Redis does not answer within the timeout', async () => {
    const { client, runner } = setup('ready', 30)
    client.answer = () => new Promise(() => {})
    await assert.rejects(settled(runner.run(SCRIPT, [], () => [], 'publish to topic "a"', true)), isBrokerError(/Redis did not answer within 30 ms \(publishTimeoutMs\) to publish to topic "a"/), 'the script is bounded by publishTimeoutMs')
  })
})

/**
 * The options of createRedisBroker, checked before anything is connected to:
 * defaults, and a clear error naming the option for each bad one. (The same
 * errors through createRedisBroker itself, with real clients, are in
 * redis.test.ts.)
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { resolveOptions } from '../src/adapters/redis/options.ts'
import type { RedisBrokerOptions } from '../src/adapters/redis/options.ts'
import { reportToConsole } from '../src/errors.ts'
import { FakeIoRedis } from './helpers/fake-redis.ts'

const clients = (): RedisBrokerOptions => ({ publisher: new FakeIoRedis(), subscriber: new FakeIoRedis() })

describe('resolveOptions (patchwire/redis)', () => {
  it('fills in the defaults and recognises both clients', () => {
    const options = clients()
    const settings = resolveOptions(options)
    assert.equal(settings.publisher.client, options.publisher, 'the publisher is the client given')
    assert.equal(settings.subscriber?.client, options.subscriber, 'the subscriber is the client given')
    assert.equal(settings.publisher.kind, 'ioredis', 'an ioredis client is recognised by its shape')
    assert.deepEqual(
      { prefix: settings.prefix, history: settings.history, historyMs: settings.historyMs, publishTimeoutMs: settings.publishTimeoutMs },
      { prefix: 'patchwire:', history: 1000, historyMs: 300_000, publishTimeoutMs: 5000 },
      'the documented defaults',
    )
    assert.equal(settings.onError, reportToConsole, 'errors go to console.error by default')
  })

  it('keeps the values given, the edges of each range included', () => {
    const onError = (): void => {}
    const settings = resolveOptions({ ...clients(), prefix: '', history: 0, historyMs: 1, publishTimeoutMs: 2 ** 31 - 1, onError })
    assert.deepEqual(
      { prefix: settings.prefix, history: settings.history, historyMs: settings.historyMs, publishTimeoutMs: settings.publishTimeoutMs, onError: settings.onError },
      { prefix: '', history: 0, historyMs: 1, publishTimeoutMs: 2 ** 31 - 1, onError },
      'every value as given',
    )
  })

  it('refuses options that are not an object, and clients it does not recognise', () => {
    for (const options of [undefined, null, 'redis://localhost']) {
      assert.throws(() => resolveOptions(options as unknown as RedisBrokerOptions), /options must be an object with a publisher client \(and a subscriber client, unless the process only publishes\)/, `options ${String(options)}`)
    }
    assert.throws(() => resolveOptions({ ...clients(), publisher: {} as FakeIoRedis }), (error: unknown) => error instanceof TypeError && /publisher must be a node-redis client/.test(error.message), 'a publisher of another shape')
    assert.throws(() => resolveOptions({ ...clients(), subscriber: null as unknown as FakeIoRedis }), (error: unknown) => error instanceof TypeError && /subscriber must be .*got null/.test(error.message), 'a null subscriber')
    assert.throws(() => resolveOptions({ ...clients(), subscriber: {} as FakeIoRedis }), (error: unknown) => error instanceof TypeError && /subscriber must be a node-redis client/.test(error.message), 'a subscriber of another shape')
  })

  it('takes a publisher alone, for a process that only publishes', () => {
    const publisher = new FakeIoRedis()
    const settings = resolveOptions({ publisher })
    assert.equal(settings.publisher.client, publisher, 'the publisher is the client given')
    assert.equal(settings.subscriber, undefined, 'no subscriber')
    assert.equal(resolveOptions({ publisher, subscriber: undefined }).subscriber, undefined, 'subscriber: undefined is no subscriber too')
  })

  it('refuses one client as both publisher and subscriber, naming the fix', () => {
    const client = new FakeIoRedis()
    assert.throws(() => resolveOptions({ publisher: client, subscriber: client }), (error: unknown) => error instanceof TypeError && /two connections.*duplicate\(\)/.test(error.message), 'the same client twice')
  })

  it('refuses each option out of its range, naming it', () => {
    const refused: Array<[Partial<RedisBrokerOptions>, RegExp, typeof TypeError]> = [
      [{ prefix: 1 as unknown as string }, /prefix must be a string, got number/, TypeError],
      [{ onError: 'log' as unknown as () => void }, /onError must be a function, got string/, TypeError],
      [{ history: -1 }, /history must be a whole number of messages per topic, 0 or more, got -1/, RangeError],
      [{ history: 1.5 }, /history must be a whole number/, RangeError],
      [{ historyMs: 0 }, /historyMs must be a whole number of milliseconds, 1 or more, got 0/, RangeError],
      [{ publishTimeoutMs: 0 }, /publishTimeoutMs must be a positive number of milliseconds, at most 2147483647/, RangeError],
      [{ publishTimeoutMs: 2 ** 31 }, /publishTimeoutMs must be/, RangeError],
      [{ publishTimeoutMs: '5000' as unknown as number }, /publishTimeoutMs must be/, RangeError],
    ]
    for (const [bad, message, type] of refused) {
      assert.throws(() => resolveOptions({ ...clients(), ...bad }), (error: unknown) => error instanceof type && message.test(error.message), JSON.stringify(bad))
    }
  })
})

/**
 * The in-process broker and publish(): delivery, unsubscription, listener
 * failures, and the synchronous validation that runs before anything is sent.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createBroker, defaultBroker, publish, PatchwireError, type Broker, type PatchOp } from '../src/index.ts'

/** A broker that records every publish and forwards it to a real in-process broker. */
function recordingBroker(): Broker & { published: [string, string][] } {
  const inner = createBroker()
  const published: [string, string][] = []
  return {
    published,
    publish(topic, payload) {
      published.push([topic, payload])
      return inner.publish(topic, payload)
    },
    subscribe: (topic, listener) => inner.subscribe(topic, listener),
  }
}

describe('createBroker', () => {
  describe('#publish', () => {
    it('delivers the payload to every listener of the topic, in subscription order, and to no other topic', async () => {
      const broker = createBroker()
      const got: string[] = []
      broker.subscribe('a', (p) => got.push(`1:${p}`))
      broker.subscribe('a', (p) => got.push(`2:${p}`))
      broker.subscribe('a', (p) => got.push(`3:${p}`))
      broker.subscribe('b', (p) => got.push(`b:${p}`))
      await broker.publish('a', '[1]')
      assert.deepEqual(got, ['1:[1]', '2:[1]', '3:[1]'], 'each listener of the topic once, in subscription order, none of the other topic')
    })

    it('delivers synchronously, before the returned Promise settles', () => {
      const broker = createBroker()
      let got = 0
      broker.subscribe('a', () => got++)
      const result = broker.publish('a', '[]')
      assert.equal(got, 1, 'the listener ran before publish returned')
      assert.ok(result instanceof Promise, 'publish returns a Promise')
    })

    it('does nothing for a topic nobody listens to', async () => {
      const broker = createBroker()
      assert.match(String(await broker.publish('nobody', '[]')), /^[0-9a-z]+-1$/, 'numbered and kept, delivered to nobody')
    })

    it('keeps publish order per listener', async () => {
      const broker = createBroker()
      const got: string[] = []
      broker.subscribe('a', (p) => got.push(p))
      for (let i = 0; i < 50; i++) void broker.publish('a', String(i))
      assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => String(i)), 'every payload, in publish order')
    })
  })

  describe('#subscribe', () => {
    it('returns an unsubscribe that stops delivery', async () => {
      const broker = createBroker()
      let got = 0
      const unsubscribe = broker.subscribe('a', () => got++)
      await broker.publish('a', '[]')
      unsubscribe()
      await broker.publish('a', '[]')
      assert.equal(got, 1, 'no delivery after unsubscribe')
    })

    it('unsubscribe is idempotent: a second call removes nobody else', async () => {
      const broker = createBroker()
      const got: string[] = []
      const listener = (p: string) => got.push(`x:${p}`)
      const first = broker.subscribe('a', listener)
      broker.subscribe('a', (p) => got.push(`other:${p}`))
      first()
      // The same function subscribed again is a new subscription; the old handle must not touch it.
      broker.subscribe('a', listener)
      first()
      first()
      await broker.publish('a', '1')
      assert.deepEqual(got, ['other:1', 'x:1'], 'the second unsubscribe call removed nobody else')
    })

    it('unsubscribing one of two subscriptions of the same function keeps the other', async () => {
      const broker = createBroker()
      let got = 0
      const listener = () => got++
      const first = broker.subscribe('a', listener)
      broker.subscribe('a', listener)
      await broker.publish('a', '[]')
      assert.equal(got, 2, 'the other subscription of the same function still receives')
      first()
      await broker.publish('a', '[]')
      assert.equal(got, 3, 'the function receives again after subscribing anew')
    })

    it('a listener that unsubscribes itself during delivery does not make the others miss the message', async () => {
      const broker = createBroker()
      const got: string[] = []
      const unsubscribes: (() => void)[] = []
      for (const name of ['a', 'b', 'c', 'd']) {
        unsubscribes.push(broker.subscribe('t', (p) => {
          got.push(`${name}:${p}`)
          if (name === 'a' || name === 'b') unsubscribes[name === 'a' ? 0 : 1]?.()
        }))
      }
      await broker.publish('t', '1')
      await broker.publish('t', '2')
      assert.deepEqual(got, ['a:1', 'b:1', 'c:1', 'd:1', 'c:2', 'd:2'], `every other listener got both messages: ${JSON.stringify(got)}`)
    })

    it('a listener that unsubscribes another during delivery does not make a third one miss it', async () => {
      const broker = createBroker()
      const got: string[] = []
      let unsubscribeB = () => {}
      broker.subscribe('t', () => {
        got.push('a')
        unsubscribeB()
      })
      unsubscribeB = broker.subscribe('t', () => got.push('b'))
      broker.subscribe('t', () => got.push('c'))
      await broker.publish('t', '1')
      assert.ok(got.includes('c'), `c got the message: ${got.join(',')}`)
      got.length = 0
      await broker.publish('t', '2')
      assert.deepEqual(got, ['a', 'c'], `the third listener still got the message: ${JSON.stringify(got)}`)
    })
  })

  describe('listener errors', () => {
    it('reports a throwing listener to onError as ERR_PATCHWIRE_LISTENER with the cause, and the others still receive', async () => {
      const errors: unknown[] = []
      const broker = createBroker({ onError: (error) => errors.push(error) })
      const boom = new Error('boom')
      const got: string[] = []
      broker.subscribe('a', (p) => got.push(`1:${p}`))
      broker.subscribe('a', () => { throw boom })
      broker.subscribe('a', (p) => got.push(`3:${p}`))
      const result = broker.publish('a', '[]')
      assert.deepEqual(got, ['1:[]', '3:[]'], 'the listeners after the throwing one still receive')
      assert.equal(errors.length, 1, `one error reported: ${errors.map(String).join('; ')}`)
      const [error] = errors
      assert.ok(error instanceof PatchwireError, `the listener's error is reported as a PatchwireError, got ${String(error)}`)
      assert.equal(error.code, 'ERR_PATCHWIRE_LISTENER', 'reported with the listener code')
      assert.equal(error.cause, boom, 'the thrown error is the cause')
      // The publisher is not blamed for a listener's failure.
      await assert.doesNotReject(result, 'a throwing listener does not reject the publish')
    })

    it('logs to console.error when no onError is given', async (t) => {
      const logged = t.mock.method(console, 'error', () => {})
      const broker = createBroker()
      broker.subscribe('a', () => { throw new Error('boom') })
      await broker.publish('a', '[]')
      assert.equal(logged.mock.callCount(), 1, 'one console.error call')
      assert.match(String(logged.mock.calls[0]?.arguments[0]), /ERR_PATCHWIRE_LISTENER/, 'the log names ERR_PATCHWIRE_LISTENER')
    })
  })
})

describe('defaultBroker', () => {
  it('is a Broker', () => {
    assert.equal(typeof defaultBroker.publish, 'function', 'defaultBroker has publish')
    assert.equal(typeof defaultBroker.subscribe, 'function', 'defaultBroker has subscribe')
  })
})

describe('publish', () => {
  it('publish(topic, ops) goes to the default broker, serialised as JSON', async (t) => {
    const got: string[] = []
    t.after(defaultBroker.subscribe('broker-test:default', (p) => got.push(p)))
    const ops: PatchOp[] = [['replace', '/counter', 7], ['add', '/list/-', 'a\nb']]
    await publish('broker-test:default', ops)
    assert.deepEqual(got, [JSON.stringify(ops)], 'the default broker got the ops as JSON')
  })

  it('publish(broker, topic, ops) goes to that broker only', async (t) => {
    const broker = recordingBroker()
    const got: string[] = []
    const fromDefault: string[] = []
    broker.subscribe('t', (p) => got.push(p))
    t.after(defaultBroker.subscribe('t', (p) => fromDefault.push(p)))
    await publish(broker, 't', [['remove', '/a']])
    assert.deepEqual(broker.published, [['t', '[["remove","/a"]]']], 'the given broker got the topic and the JSON')
    assert.deepEqual(got, ['[["remove","/a"]]'], 'the given broker delivered to its listener')
    assert.deepEqual(fromDefault, [], 'the default broker got nothing')
  })

  it('returns a Promise that resolves once the broker has taken the message', async () => {
    const broker = createBroker()
    const result = publish(broker, 't', [])
    assert.ok(result instanceof Promise, 'publish(broker, …) returns a Promise')
    assert.match(await result, /^[0-9a-z]+-1$/, 'the message\'s event id')
    assert.ok(publish('broker-test:nobody', []) instanceof Promise, 'publish on the default broker returns a Promise too')
  })

  it('returns the broker\'s rejection when the broker cannot take the message', async () => {
    const failure = new Error('down')
    const broker: Broker = { publish: () => Promise.reject(failure), subscribe: () => () => {} }
    await assert.rejects(publish(broker, 't', []), failure, 'the broker\'s own rejection')
  })

  it('serialises once per publish, however many listeners', async () => {
    const broker = createBroker()
    let serialised = 0
    const value = {
      toJSON: () => {
        serialised++
        return 1
      },
    }
    for (let i = 0; i < 5; i++) broker.subscribe('t', () => {})
    await publish(broker, 't', [['replace', '/a', value]])
    assert.equal(serialised, 1, 'one JSON.stringify for three listeners')
  })

  describe('invalid input throws TypeError synchronously, before anything is sent', () => {
    const circular: Record<string, unknown> = {}
    circular['self'] = circular
    const cases: { name: string; args: unknown[] }[] = [
      { name: 'empty topic', args: ['', []] },
      { name: 'numeric topic', args: [42, []] },
      { name: 'undefined topic', args: [undefined, []] },
      { name: 'null topic', args: [null, []] },
      { name: 'object topic', args: [{}, []] },
      { name: 'ops undefined', args: ['t', undefined] },
      { name: 'ops an object', args: ['t', { op: 'add' }] },
      { name: 'ops a string', args: ['t', '[]'] },
      { name: 'ops a flat tuple', args: ['t', ['add', '/a', 1]] },
      { name: 'a bad tuple', args: ['t', [['add']]] },
      { name: 'a circular value', args: ['t', [['add', '/a', circular]]] },
      { name: 'a BigInt value', args: ['t', [['add', '/a', 10n]]] },
      { name: 'a path that is not a JSON Pointer', args: ['t', [['replace', 'counter', 1]]] },
      { name: 'a Map value', args: ['t', [['replace', '/m', new Map([['a', 1]])]]] },
      { name: 'a Set value', args: ['t', [['replace', '/s', new Set([1])]]] },
    ]
    for (const { name, args } of cases) {
      it(`${name} (default broker)`, (t) => {
        const seen: string[] = []
        t.after(defaultBroker.subscribe('t', (p) => seen.push(p)))
        assert.throws(() => (publish as (...a: unknown[]) => unknown)(...args), TypeError, `${name}: publish throws a TypeError`)
        assert.deepEqual(seen, [], 'nothing reaches the default broker')
      })
      it(`${name} (explicit broker)`, () => {
        const broker = recordingBroker()
        assert.throws(() => (publish as (...a: unknown[]) => unknown)(broker, ...args), TypeError, `${name}: publish to an explicit broker throws a TypeError`)
        assert.deepEqual(broker.published, [], 'nothing reaches the given broker')
      })
    }

    const badBrokers: { name: string; broker: unknown }[] = [
      { name: 'null', broker: null },
      { name: 'undefined', broker: undefined },
      { name: 'a string', broker: 'redis' },
      { name: 'an object without publish', broker: { subscribe: () => () => {} } },
      { name: 'publish not a function', broker: { publish: 1, subscribe: () => () => {} } },
    ]
    for (const { name, broker } of badBrokers) {
      it(`bad broker: ${name}`, () => {
        assert.throws(() => (publish as (...a: unknown[]) => unknown)(broker, 't', []), TypeError, `a bad broker (${name}): publish throws a TypeError`)
      })
    }

    it('does not call the broker at all when the ops are bad', () => {
      let calls = 0
      const broker: Broker = {
        publish: () => {
          calls++
          return Promise.resolve()
        },
        subscribe: () => () => {},
      }
      assert.throws(() => publish(broker, 't', [['add', '/a', 1n]] as unknown as PatchOp[]), TypeError, 'ops with a BigInt throw a TypeError')
      assert.throws(() => publish(broker, '', []), TypeError, 'an empty topic throws a TypeError')
      assert.equal(calls, 0, 'the broker is never called with bad input')
    })
  })
})

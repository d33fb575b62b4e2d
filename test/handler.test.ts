/**
 * createHandler over real sockets: option validation, every refusal of
 * DESIGN.md, async authorize races, the accepted stream's exact bytes,
 * per-topic fan-out, disconnects, close() and stats().
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { describe, it, type TestContext } from 'node:test'
import { createBroker, createHandler, formatPatch, publish, PatchwireError, type Broker, type HandlerOptions, type PatchOp } from '../src/index.ts'
import { streamCounts, listen, startServer, until, type TestServer } from './helpers/server.ts'
import { openRaw, openStream, sendRaw, type RawResponse, type SseClient } from './helpers/sse-client.ts'

/** A broker that counts subscribe and unsubscribe calls around a real in-process broker. */
function countingBroker(): { broker: Broker; counts: { subscribe: number; unsubscribe: number; topics: string[] } } {
  const inner = createBroker()
  const counts = { subscribe: 0, unsubscribe: 0, topics: [] as string[] }
  const broker: Broker = {
    publish: (topic, payload) => inner.publish(topic, payload),
    subscribe(topic, listener) {
      counts.subscribe++
      counts.topics.push(topic)
      const unsubscribe = inner.subscribe(topic, listener)
      return () => {
        counts.unsubscribe++
        unsubscribe()
      }
    },
  }
  return { broker, counts }
}

/** The bytes of an HTTP/1.1 request. */
function request(method: string, target: string, headers: string[] = []): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`
}

/** True once the client holds a complete response (by Content-Length), or the connection closed. */
function answered(client: SseClient, head: boolean): boolean {
  const response = client.response
  if (response === undefined) return client.closed
  const length = response.headers['content-length']
  if (head || length === undefined) return true
  return Buffer.byteLength(response.body) >= Number(length)
}

/** Sends `raw` and waits (bounded) for the complete answer. */
async function ask(t: TestContext, port: number, raw: string, head = false): Promise<RawResponse> {
  const client = await sendRaw(t, port, raw)
  await until(() => answered(client, head), 3000, `an answer to ${JSON.stringify(raw.slice(0, 100))}, got ${JSON.stringify(client.raw)}`)
  assert.ok(client.response, `a response, not a bare close: ${JSON.stringify(client.raw)}`)
  return client.response
}

/** Asserts a refusal: the status, plain text, and no stream or subscription behind it. */
/** A `retry:` hint spread over 0.75 to 1.25 × retryMs. */
function assertSpread(retry: number | undefined, retryMs: number): void {
  assert.ok(retry !== undefined && retry >= Math.floor(retryMs * 0.75) && retry <= Math.ceil(retryMs * 1.25), `retry ${retry} within ±25 % of ${retryMs}`)
}

function assertRefused(response: RawResponse, status: number, server: TestServer, counts?: { subscribe: number }): void {
  assert.equal(response.status, status, `status of ${JSON.stringify(response.body)}`)
  assert.match(response.headers['content-type'] ?? '', /^text\/plain/, 'a refusal is plain text')
  assert.notEqual(response.headers['content-type'], 'text/event-stream', 'a refusal is not an event stream')
  assert.equal(server.handler.stats().connections, 0, 'no stream is counted for a refused request')
  assert.equal(server.handler.stats().topics, 0, 'no topic is held for a refused request')
  if (counts !== undefined) assert.equal(counts.subscribe, 0, 'no broker subscription for a refused request')
}

/** A promise with its resolve and reject. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** The part of a stream's body after its `ready` frame. */
function afterReady(client: SseClient): string {
  const body = client.response?.body ?? ''
  const ready = body.indexOf('event: ready\n')
  assert.notEqual(ready, -1, `a ready frame in ${JSON.stringify(body)}`)
  return body.slice(body.indexOf('\n\n', ready) + 2)
}

describe('createHandler', () => {
  describe('option validation', () => {
    const wrongTypes: [keyof HandlerOptions, unknown][] = [
      ['broker', 'redis'],
      ['broker', 1],
      ['broker', {}],
      ['broker', { publish: () => Promise.resolve() }],
      ['broker', { subscribe: () => () => {} }],
      ['heartbeatMs', '1000'],
      ['heartbeatMs', null],
      ['retryMs', '3000'],
      ['retryMs', true],
      ['topicPrefix', 1],
      ['topicPrefix', null],
      ['authorize', true],
      ['authorize', null],
      ['authorize', 'admin'],
      ['path', 1],
      ['path', null],
      ['maxBufferedBytes', '1mb'],
      ['lingerMs', '30s'],
      ['maxTopicLength', []],
      ['onError', 'console'],
      ['onError', null],
    ]
    for (const [name, value] of wrongTypes) {
      it(`${name}: ${JSON.stringify(value) ?? typeof value} → TypeError naming the option`, () => {
        assert.throws(() => createHandler({ [name]: value } as HandlerOptions), (error: unknown) => {
          assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`)
          assert.match(error.message, new RegExp(`\\b${name}\\b`), `the message names ${name}: ${error.message}`)
          return true
        }, `createHandler({ ${name}: ${JSON.stringify(value) ?? typeof value} }) throws`)
      })
    }

    for (const name of ['history', 'historyBytes']) {
      it(`${name} → TypeError saying it moved to the broker`, () => {
        assert.throws(() => createHandler({ [name]: 10 } as HandlerOptions), (error: unknown) => {
          assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`)
          assert.match(error.message, new RegExp(`option "${name}" moved to the broker: createBroker\\(\\{ ${name} \\}\\)`), `the message points to createBroker({ ${name} }): ${error.message}`)
          return true
        }, `createHandler({ ${name} }) throws`)
      })
    }

    it('broker: null → TypeError naming the option', () => {
      assert.throws(() => createHandler({ broker: null } as unknown as HandlerOptions), /broker/, 'createHandler({ broker: null }) throws, naming broker')
    })

    const outOfRange: [keyof HandlerOptions, number][] = [
      ['heartbeatMs', -1],
      ['heartbeatMs', 0],
      ['heartbeatMs', 2 ** 31],
      ['retryMs', -1],
      ['retryMs', 2 ** 31],
      ['maxTopics', 0],
      ['maxTopics', 1025],
      ['maxPending', -1],
      ['pendingTimeoutMs', 0],
      ['maxBufferedBytes', -1],
      ['maxTopicLength', 0],
      ['maxTopicLength', -5],
      ['lingerMs', -1],
      ['lingerMs', 2 ** 31],
    ]
    for (const [name, value] of outOfRange) {
      it(`${name}: ${value} → RangeError naming the option`, () => {
        assert.throws(() => createHandler({ [name]: value }), (error: unknown) => {
          assert.ok(error instanceof RangeError, `a RangeError, got ${String(error)}`)
          assert.match(error.message, new RegExp(`\\b${name}\\b`), `the message names ${name}: ${error.message}`)
          return true
        }, `createHandler({ ${name}: ${value} }) throws`)
      })
    }

    for (const value of [1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`heartbeatMs: ${value} → TypeError or RangeError naming the option`, () => {
        assert.throws(() => createHandler({ heartbeatMs: value }), (error: unknown) => {
          assert.ok(error instanceof TypeError || error instanceof RangeError, String(error))
          assert.match(error.message, /heartbeatMs/, `the message names heartbeatMs: ${error.message}`)
          return true
        }, `createHandler({ heartbeatMs: ${value} }) throws`)
      })
    }

    it('accepts the boundaries of every range', (t) => {
      const handler = createHandler({ heartbeatMs: 1, retryMs: 0, maxTopics: 1, maxPending: 0, pendingTimeoutMs: 1, maxBufferedBytes: 0, lingerMs: 2 ** 31 - 1, maxTopicLength: 1, topicPrefix: '', path: '/' })
      t.after(() => handler.close())
      assert.equal(typeof handler, 'function', 'createHandler returns the handler function')
    })

    it('unknown option → TypeError naming it', () => {
      assert.throws(() => createHandler({ heartbeat: 1000 } as unknown as HandlerOptions), (error: unknown) => {
        assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`)
        assert.match(error.message, /heartbeat\b/, `the message names the unknown option heartbeat: ${error.message}`)
        return true
      }, 'an unknown option throws')
    })

    for (const path of ['events', '', 'http://x/events', '/events?topic=a']) {
      it(`path ${JSON.stringify(path)} → TypeError naming the option`, () => {
        assert.throws(() => createHandler({ path }), (error: unknown) => {
          assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`)
          assert.match(error.message, /path/, `the message names path: ${error.message}`)
          return true
        }, `createHandler({ path: ${JSON.stringify(path)} }) throws`)
      })
    }

    for (const options of [null, 'x', 1]) {
      it(`options ${JSON.stringify(options)} → TypeError`, () => {
        assert.throws(() => createHandler(options as unknown as HandlerOptions), TypeError, `createHandler(${JSON.stringify(options)}) throws a TypeError`)
      })
    }

    it('no options at all is fine', (t) => {
      const handler = createHandler()
      t.after(() => handler.close())
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'a fresh handler has no streams, topics or drops')
    })
  })

  describe('refusals', () => {
    const badRequests: [string, string][] = [
      ['no query', '/'],
      ['empty query', '/?'],
      ['no topic parameter', '/?other=1'],
      ['topic without value', '/?topic'],
      ['empty topic', '/?topic='],
      ['repeated identical topic', '/?topic=a&topic=a'],
      ['empty then repeated topic', '/?topic=&topic=a'],
      ['NUL', '/?topic=%00'],
      ['LF', '/?topic=a%0Ab'],
      ['CR', '/?topic=a%0Db'],
      ['tab', '/?topic=a%09b'],
      ['unit separator', '/?topic=%1F'],
      ['DEL', '/?topic=%7F'],
      ['truncated UTF-8', '/?topic=%E0%A4%A'],
      ['invalid hex', '/?topic=%zz'],
      ['lone percent', '/?topic=a%'],
      ['overlong UTF-8', '/?topic=%C0%AF'],
      ['encoded lone surrogate', '/?topic=%ED%A0%80'],
    ]
    for (const [name, target] of badRequests) {
      it(`400 for ${name}: ${target}`, async (t) => {
        const { broker, counts } = countingBroker()
        let authorized = 0
        const server = await startServer(t, { broker, authorize: () => ++authorized > 0 })
        const response = await ask(t, server.port, request('GET', target))
        assertRefused(response, 400, server, counts)
        assert.equal(authorized, 0, 'authorize is not asked about a malformed request')
      })
    }

    describe('414', () => {
      it('for a topic one over the default maxTopicLength (256), not for one at it', async (t) => {
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker, lingerMs: 0 })
        assertRefused(await ask(t, server.port, request('GET', `/?topic=${'a'.repeat(257)}`)), 414, server, counts)
        const ok = await openStream(t, server.port, 'a'.repeat(256))
        assert.equal(ok.response?.status, 200, 'a topic at maxTopicLength is accepted')
      })

      it('for a raw-long topic (percent-encoded beyond 3 × maxTopicLength)', async (t) => {
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker, maxTopicLength: 10 })
        assertRefused(await ask(t, server.port, request('GET', `/?topic=${'%61'.repeat(11)}`)), 414, server, counts)
        assertRefused(await ask(t, server.port, request('GET', `/?topic=${'a'.repeat(5000)}`)), 414, server, counts)
      })

      it('for a topic whose raw form fits but decodes too long', async (t) => {
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker, maxTopicLength: 10 })
        // 21 URL characters, 11 topic characters.
        assertRefused(await ask(t, server.port, request('GET', `/?topic=${'%61'.repeat(5)}${'a'.repeat(6)}`)), 414, server, counts)
      })

      it('not for a topic at maxTopicLength written fully percent-encoded', async (t) => {
        const server = await startServer(t, { maxTopicLength: 10 })
        const client = await openStream(t, server.port, 'a'.repeat(10), [], '/')
        assert.equal(client.response?.status, 200, 'a topic of maxTopicLength characters is accepted')
        const encoded = await openRaw(t, server.port, `/?topic=${'%61'.repeat(10)}`)
        await until(() => encoded.named('ready').length === 1 || encoded.closed, 3000, 'the encoded stream')
        assert.equal(encoded.response?.status, 200, 'the same topic fully percent-encoded is accepted')
      })

      it('not for a non-ASCII topic within maxTopicLength UTF-16 code units', async (t) => {
        const server = await startServer(t, { maxTopicLength: 10 })
        for (const topic of ['é'.repeat(10), '日'.repeat(10), '🎉'.repeat(5)]) {
          const client = await openStream(t, server.port, topic)
          assert.equal(client.response?.status, 200, `status for ${topic}`)
        }
      })
    })

    describe('403', () => {
      it('for a topic not starting with topicPrefix', async (t) => {
        const { broker, counts } = countingBroker()
        let authorized = 0
        const server = await startServer(t, { broker, topicPrefix: 'dashboard:', authorize: () => ++authorized > 0 })
        for (const topic of ['other:1', 'Dashboard:1', 'dashboard', ' dashboard:1']) {
          assertRefused(await ask(t, server.port, request('GET', `/?topic=${encodeURIComponent(topic)}`)), 403, server, counts)
        }
        assert.equal(authorized, 0, 'authorize is not asked about a topic outside the prefix')
        const ok = await openStream(t, server.port, 'dashboard:1')
        assert.equal(ok.response?.status, 200, 'a topic starting with topicPrefix is accepted')
      })

      const verdicts: [string, () => unknown][] = [
        ['false', () => false],
        ['undefined', () => undefined],
        ['1', () => 1],
        ['"true"', () => 'true'],
        ['a Promise of false', () => Promise.resolve(false)],
        ['a Promise of undefined', () => Promise.resolve(undefined)],
        ['a Promise of 1', () => Promise.resolve(1)],
      ]
      for (const [name, verdict] of verdicts) {
        it(`when authorize returns ${name}`, async (t) => {
          const { broker, counts } = countingBroker()
          const server = await startServer(t, { broker, authorize: verdict as HandlerOptions['authorize'] & {} })
          assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 403, server, counts)
        })
      }

      it('authorize gets the request and the decoded topic', async (t) => {
        const seen: [string | undefined, string][] = []
        const server = await startServer(t, {
          authorize: (req, topic) => {
            seen.push([req.headers['x-user'] as string | undefined, topic])
            return topic === 'room 1/é'
          },
        })
        assertRefused(await ask(t, server.port, request('GET', '/?topic=room%201%2F%C3%A8', ['X-User: bob'])), 403, server)
        const ok = await openStream(t, server.port, 'room 1/é', ['X-User: alice'])
        assert.equal(ok.response?.status, 200, 'the topic authorize accepts opens a stream')
        assert.deepEqual(seen, [['bob', 'room 1/è'], ['alice', 'room 1/é']], `authorize saw each request's header and the decoded topic: ${JSON.stringify(seen)}`)
      })
    })

    describe('500', () => {
      it('when authorize throws, reported as ERR_PATCHWIRE_AUTHORIZE with the cause', async (t) => {
        const errors: unknown[] = []
        const boom = new Error('db down')
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker, onError: (e) => errors.push(e), authorize: () => { throw boom } })
        assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 500, server, counts)
        assert.equal(errors.length, 1, `one error reported: ${JSON.stringify(errors.map(String))}`)
        assert.ok(errors[0] instanceof PatchwireError, `reported as a PatchwireError, got ${String(errors[0])}`)
        assert.equal(errors[0].code, 'ERR_PATCHWIRE_AUTHORIZE', 'reported with the authorize code')
        assert.equal(errors[0].cause, boom, 'the thrown error is the cause')
      })

      it('when authorize rejects, reported as ERR_PATCHWIRE_AUTHORIZE with the cause', async (t) => {
        const errors: unknown[] = []
        const boom = new Error('timeout')
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker, onError: (e) => errors.push(e), authorize: () => Promise.reject(boom) })
        assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 500, server, counts)
        assert.equal(errors.length, 1, `one error reported: ${JSON.stringify(errors.map(String))}`)
        assert.ok(errors[0] instanceof PatchwireError, `reported as a PatchwireError, got ${String(errors[0])}`)
        assert.equal(errors[0].code, 'ERR_PATCHWIRE_AUTHORIZE', 'reported with the authorize code')
        assert.equal(errors[0].cause, boom, 'the rejection reason is the cause')
      })

      it('when authorize throws a non-Error', async (t) => {
        const errors: PatchwireError[] = []
        const server = await startServer(t, { onError: (e) => errors.push(e), authorize: () => { throw 'nope' as unknown as Error } })
        assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 500, server)
        assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_AUTHORIZE', `reported with the authorize code: ${String(errors[0])}`)
        assert.equal(errors[0]?.cause, 'nope', 'the thrown value is the cause')
      })

      it('when authorize returns a thenable whose then throws, instead of crashing', async (t) => {
        const errors: PatchwireError[] = []
        const boom = new Error('bad thenable')
        const thenable = { then: () => { throw boom } } as unknown as Promise<boolean>
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker, onError: (e) => errors.push(e), authorize: () => thenable })
        assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 500, server, counts)
        assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_AUTHORIZE', `reported with the authorize code: ${String(errors[0])}`)
        assert.equal(errors[0]?.cause, boom, 'the error thrown by then is the cause')
      })

      it('when the broker cannot subscribe, reported as ERR_PATCHWIRE_BROKER; the topic works once it can', async (t) => {
        const errors: PatchwireError[] = []
        const inner = createBroker()
        let failing = true
        const boom = new Error('redis down')
        const broker: Broker = {
          publish: (topic, payload) => inner.publish(topic, payload),
          subscribe(topic, listener) {
            if (failing) throw boom
            return inner.subscribe(topic, listener)
          },
        }
        const server = await startServer(t, { broker, onError: (e) => errors.push(e) })
        assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 500, server)
        assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_BROKER', `reported with the broker code: ${String(errors[0])}`)
        assert.equal(errors[0]?.cause, boom, 'the subscribe error is the cause')
        failing = false
        const client = await openStream(t, server.port, 'a')
        await publish(broker, 'a', [['add', '/x', 1]])
        await client.waitForEvents(2)
        assert.deepEqual(JSON.parse(client.named('patch')[0]?.data ?? ''), [['add', '/x', 1]], 'the stream opened after the broker recovered gets the publish')
      })
    })

    describe('405', () => {
      for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']) {
        it(`${method} → 405 with Allow: GET`, async (t) => {
          const { broker, counts } = countingBroker()
          const server = await startServer(t, { broker })
          const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? 'x=1' : ''
          const headers = body === '' ? [] : [`Content-Length: ${body.length}`]
          const response = await ask(t, server.port, request(method, '/?topic=a', headers) + body, method === 'HEAD')
          assertRefused(response, 405, server, counts)
          assert.equal(response.headers['allow'], 'GET', 'the 405 answer says GET is allowed')
        })
      }
    })

    describe('503', () => {
      it('after close(), even for a valid request', async (t) => {
        const { broker, counts } = countingBroker()
        const server = await startServer(t, { broker })
        await server.handler.close()
        assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 503, server, counts)
      })
    })

    describe('path option', () => {
      async function pathServer(t: TestContext, withNext: boolean, options: HandlerOptions = {}): Promise<TestServer & { nextCalls: string[] }> {
        const nextCalls: string[] = []
        const handler = createHandler({ path: '/events', lingerMs: 0, ...options })
        const server = http.createServer((req, res) => {
          if (!withNext) return handler(req, res)
          handler(req, res, (...args: unknown[]) => {
            nextCalls.push(`${req.url ?? ''}${args.length > 0 ? ' with args' : ''}`)
            res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': 3 })
            res.end('app')
          })
        })
        return { ...(await listen(t, server, handler)), nextCalls }
      }

      for (const target of ['/other?topic=a', '/', '/events/?topic=a', '/EVENTS?topic=a', '/events/x?topic=a', '/eventsx?topic=a', '/x/events?topic=a']) {
        it(`other path ${target} → next()`, async (t) => {
          const server = await pathServer(t, true)
          const response = await ask(t, server.port, request('GET', target))
          assert.equal(response.status, 200, `the request for ${target} goes to the app`)
          assert.equal(response.body, 'app', `the app's body answers ${target}`)
          assert.deepEqual(server.nextCalls, [target], `next() called once, with no arguments, for ${target}`)
          assert.equal(server.handler.stats().connections, 0, 'no stream opened for another path')
        })

        it(`other path ${target} without next → 404 text/plain`, async (t) => {
          const server = await pathServer(t, false)
          assertRefused(await ask(t, server.port, request('GET', target)), 404, server)
        })
      }

      it('other paths go to next() whatever the method, even after close()', async (t) => {
        const server = await pathServer(t, true)
        assert.equal((await ask(t, server.port, request('POST', '/api', ['Content-Length: 0']))).body, 'app', 'a POST to another path goes to the app')
        await server.handler.close()
        assert.equal((await ask(t, server.port, request('GET', '/other?topic=a'))).body, 'app', 'another path still goes to the app after close()')
        assertRefused(await ask(t, server.port, request('GET', '/events?topic=a')), 503, server)
        assert.deepEqual(server.nextCalls, ['/api', '/other?topic=a'], `next() called for each other path and not for the closed handler's path: ${JSON.stringify(server.nextCalls)}`)
      })

      it('the query does not affect the path match', async (t) => {
        const server = await pathServer(t, true)
        for (const target of ['/events?topic=a', '/events?x=/other&topic=b', '/events?topic=c&path=/x']) {
          const client = await openRaw(t, server.port, target)
          await until(() => client.named('ready').length === 1 || client.closed, 3000, `a stream for ${target}`)
          assert.equal(client.response?.status, 200, target)
        }
        assert.deepEqual(server.nextCalls, [], `next() never called for the handler's path: ${JSON.stringify(server.nextCalls)}`)
        assert.equal(server.handler.stats().connections, 3, 'a stream open for each query')
      })

      it('matches a request-target in absolute form (RFC 9112 section 3.2.2)', async (t) => {
        const server = await pathServer(t, true)
        const client = await openRaw(t, server.port, `http://127.0.0.1:${server.port}/events?topic=a`)
        await until(() => client.named('ready').length === 1 || client.closed, 3000, 'the stream')
        assert.equal(client.response?.status, 200, 'an absolute-form target with the handler path opens a stream')
        assert.equal((await ask(t, server.port, request('GET', 'http://127.0.0.1/other?topic=a'))).body, 'app', 'an absolute-form target with another path goes to the app')
        assert.equal((await ask(t, server.port, request('GET', 'http://127.0.0.1'))).body, 'app', 'an absolute-form target with no path goes to the app')
        assert.deepEqual(server.nextCalls, ['http://127.0.0.1/other?topic=a', 'http://127.0.0.1'], `next() called for the two other targets: ${JSON.stringify(server.nextCalls)}`)
      })

      it('the path itself still gets the refusals', async (t) => {
        const server = await pathServer(t, true)
        assertRefused(await ask(t, server.port, request('GET', '/events')), 400, server)
        assertRefused(await ask(t, server.port, request('DELETE', '/events?topic=a')), 405, server)
        assert.deepEqual(server.nextCalls, [], `next() never called for refusals on the handler's path: ${JSON.stringify(server.nextCalls)}`)
      })
    })

    it('400 for a stream request pipelined behind an ordinary one', async (t) => {
      const handler = createHandler({ path: '/events' })
      const server = http.createServer((req, res) => handler(req, res, () => res.writeHead(200, { 'Content-Length': 2 }).end('ok')))
      const { port } = await listen(t, server, handler)
      const client = await sendRaw(t, port, request('GET', '/page') + request('GET', '/events?topic=a'))
      await until(() => client.raw.includes('open it on its own connection'), 3000, `the refusal after the page: ${JSON.stringify(client.raw)}`)
      assert.match(client.raw, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nokHTTP\/1\.1 400 Bad Request\r\nContent-Type: text\/plain/, 'the page answered, then the pipelined stream request refused with 400 text/plain')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'no stream opened for the pipelined request')
    })

    it('a refusal does not hang a keep-alive connection: the next request on it is answered', async (t) => {
      const server = await startServer(t, {})
      const client = await sendRaw(t, server.port, request('GET', '/?topic='))
      await until(() => answered(client, false), 3000, 'the first answer')
      assert.equal(client.response?.status, 400, `the first request refused with 400: ${JSON.stringify(client.raw)}`)
      const first = client.raw.length
      client.socket.write(request('POST', '/?topic=a', ['Content-Length: 0']))
      await until(() => client.raw.length > first && client.raw.slice(first).includes('\r\n\r\n'), 3000, 'the second answer')
      assert.match(client.raw.slice(first), /^HTTP\/1\.1 405 /, 'the next request on the connection is answered with 405')
      client.socket.write(request('GET', '/?topic=%zz', ['Connection: close']))
      await client.waitForClose(3000)
      assert.equal(server.handler.stats().connections, 0, 'no stream left behind on the keep-alive connection')
    })

    it('a refusal keeps headers set by earlier middleware', async (t) => {
      const handler = createHandler()
      const server = await listen(t, http.createServer((req, res) => {
        res.setHeader('Access-Control-Allow-Origin', '*')
        handler(req, res)
      }), handler)
      const response = await ask(t, server.port, request('GET', '/?topic='))
      assert.equal(response.status, 400, 'the empty topic is refused with 400')
      assert.equal(response.headers['access-control-allow-origin'], '*', 'the refusal keeps the CORS header set before the handler')
    })
  })

  describe('async authorize', () => {
    it('resolving true opens the stream', async (t) => {
      const gate = deferred<boolean>()
      let asked = false
      const server = await startServer(t, {
        authorize: () => {
          asked = true
          return gate.promise
        },
      })
      const client = await openRaw(t, server.port, '/?topic=a')
      await until(() => asked, 3000, 'authorize to be asked')
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(client.raw, '', 'nothing is answered before authorize settles')
      assert.equal(server.handler.stats().connections, 0, 'no stream before authorize settles')
      gate.resolve(true)
      await until(() => client.named('ready').length === 1, 3000, 'the stream to open')
      assert.equal(client.response?.status, 200, 'the stream opens with 200 once authorize resolves true')
      assert.equal(server.handler.stats().connections, 1, 'one stream counted once authorize resolves true')
    })

    it('a client that disconnects while authorize is pending gets no stream and no subscription', async (t) => {
      const gate = deferred<boolean>()
      const { broker, counts } = countingBroker()
      let socketClosed = false
      let asked = false
      const server = await startServer(t, {
        broker,
        authorize: (req) => {
          asked = true
          req.socket.once('close', () => (socketClosed = true))
          return gate.promise
        },
      })
      const client = await openRaw(t, server.port, '/?topic=a')
      await until(() => asked, 3000, 'authorize to be asked')
      client.destroy()
      await until(() => socketClosed, 3000, 'the server to see the disconnect')
      gate.resolve(true)
      // The handler's continuation runs in the microtasks before this.
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(streamCounts(server.handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'no stream, topic or drop for the client that left')
      assert.equal(counts.subscribe, 0, 'no broker subscription for the client that left')
    })

    it('a client that disconnects before authorize rejects: reported, nothing opened, nothing crashes', async (t) => {
      const gate = deferred<boolean>()
      const errors: PatchwireError[] = []
      let socketClosed = false
      let asked = false
      const server = await startServer(t, {
        onError: (e) => errors.push(e),
        authorize: (req) => {
          asked = true
          req.socket.once('close', () => (socketClosed = true))
          return gate.promise
        },
      })
      const client = await openRaw(t, server.port, '/?topic=a')
      await until(() => asked, 3000, 'authorize to be asked')
      client.destroy()
      await until(() => socketClosed, 3000, 'the server to see the disconnect')
      gate.reject(new Error('late'))
      await until(() => errors.length === 1, 3000, 'the error report')
      assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_AUTHORIZE', `the late rejection reported with the authorize code: ${String(errors[0])}`)
      assert.equal(server.handler.stats().connections, 0, 'no stream for the client that left')
    })

    it('a handler closed while authorize is pending answers 503', async (t) => {
      const gate = deferred<boolean>()
      const { broker, counts } = countingBroker()
      let asked = false
      const server = await startServer(t, {
        broker,
        authorize: () => {
          asked = true
          return gate.promise
        },
      })
      const client = await sendRaw(t, server.port, request('GET', '/?topic=a'))
      await until(() => asked, 3000, 'authorize to be asked')
      await server.handler.close()
      gate.resolve(true)
      await until(() => answered(client, false), 3000, 'the answer')
      assert.ok(client.response, `a response to the request: ${JSON.stringify(client.raw)}`)
      assertRefused(client.response, 503, server, counts)
    })
  })

  describe('accepted stream', () => {
    it('answers 200 with exactly the SSE headers, close-delimited, then retry: 3000 spread by ±25 %', async (t) => {
      const server = await startServer(t, {})
      const client = await openStream(t, server.port, 'a')
      const response = client.response
      assert.ok(response, `a response to the request: ${JSON.stringify(client.raw)}`)
      assert.equal(response.status, 200, 'status 200')
      assert.equal(response.headers['content-type'], 'text/event-stream', 'content-type is text/event-stream')
      assert.equal(response.headers['cache-control'], 'no-cache, no-transform', 'cache-control forbids caching and transforms')
      assert.equal(response.headers['x-accel-buffering'], 'no', 'x-accel-buffering turns off proxy buffering')
      assert.equal(response.headers['connection'], 'close', 'the stream is close-delimited: connection close')
      assert.equal(response.headers['transfer-encoding'], undefined, 'no transfer-encoding on a close-delimited stream')
      assert.equal(response.headers['content-length'], undefined, 'no content-length on a stream')
      assert.deepEqual(Object.keys(response.headers).sort(), ['cache-control', 'connection', 'content-type', 'date', 'x-accel-buffering'], `exactly the SSE headers plus date: ${JSON.stringify(response.headers)}`)
      const head = client.raw.slice(0, client.raw.indexOf('\r\n\r\n'))
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/, 'the status line is HTTP/1.1 200 OK')
      assert.equal(head.match(/^content-type:/gim)?.length, 1, `one content-type header: ${JSON.stringify(head)}`)
      assert.match(response.body, /^retry: \d+\n\n/, `the body starts with a retry hint: ${JSON.stringify(response.body)}`)
      assert.equal(client.retries.length, 1, `one retry hint: ${JSON.stringify(client.retries)}`)
      assertSpread(client.retries[0], 3000)
    })

    for (const retryMs of [1234, 0]) {
      it(`sends a custom retryMs (${retryMs}) first`, async (t) => {
        const server = await startServer(t, { retryMs })
        const client = await openStream(t, server.port, 'a')
        assert.match(client.response?.body ?? '', /^retry: \d+\n\n/, `the body starts with a retry hint: ${JSON.stringify(client.response?.body)}`)
        assert.equal(client.retries.length, 1, `one retry hint: ${JSON.stringify(client.retries)}`)
        assertSpread(client.retries[0], retryMs)
      })
    }

    it('flushes the headers at once, before anything is published', async (t) => {
      const server = await startServer(t, {})
      const client = await openRaw(t, server.port, '/?topic=quiet')
      await until(() => client.response !== undefined, 3000, 'the headers')
      assert.equal(client.response?.status, 200, 'the headers arrive with 200 before any publish')
      assert.equal(client.named('patch').length, 0, 'no patch before any publish')
    })

    it('keeps headers set by earlier middleware (CORS), and overrides a conflicting Content-Type', async (t) => {
      const handler = createHandler()
      const server = await listen(t, http.createServer((req, res) => {
        res.setHeader('Access-Control-Allow-Origin', 'https://app.example')
        res.setHeader('Access-Control-Allow-Credentials', 'true')
        res.setHeader('Content-Type', 'text/html')
        handler(req, res)
      }), handler)
      const client = await openStream(t, server.port, 'a')
      const headers = client.response?.headers ?? {}
      assert.equal(headers['access-control-allow-origin'], 'https://app.example', 'the CORS origin header set before the handler is kept')
      assert.equal(headers['access-control-allow-credentials'], 'true', 'the CORS credentials header set before the handler is kept')
      assert.equal(headers['content-type'], 'text/event-stream', 'content-type text/event-stream overrides the one set before')
    })

    it('cannot be re-encoded by a middleware that ignores no-transform', async (t) => {
      const broker = createBroker()
      const handler = createHandler({ broker })
      const seen: unknown[] = []
      const server = await listen(t, http.createServer((req, res) => {
        // A stand-in for a compressor that ignores Cache-Control: no-transform.
        const write = res.write.bind(res) as (chunk: unknown) => boolean
        res.write = ((chunk: unknown) => {
          seen.push(chunk)
          return write(chunk)
        }) as typeof res.write
        res.setHeader('Content-Encoding', 'gzip')
        res.setHeader('Content-Length', '10')
        res.setHeader('Set-Cookie', ['a=1', 'b=2'])
        handler(req, res)
      }), handler)
      const client = await openStream(t, server.port, 'a')
      await publish(broker, 'a', [['replace', '/n', 1]])
      await client.waitForEvents(2)
      assert.deepEqual(seen, [], 'the stream does not go through res.write')
      const head = client.raw.slice(0, client.raw.indexOf('\r\n\r\n'))
      assert.doesNotMatch(head, /content-encoding|content-length/i, 'headers that would break the framing are left out')
      assert.match(head, /set-cookie: a=1\r\nset-cookie: b=2/, `both cookies kept: ${JSON.stringify(head)}`)
      assert.deepEqual(JSON.parse(client.named('patch')[0]?.data ?? ''), [['replace', '/n', 1]], 'the patch arrives intact')
    })

    it('is not opened on a response whose head a middleware already sent: reported, ended, one head on the wire', async (t) => {
      const errors: PatchwireError[] = []
      const handler = createHandler({ onError: (e) => errors.push(e) })
      const server = http.createServer((req, res) => {
        res.flushHeaders()
        handler(req, res)
      })
      const { port } = await listen(t, server, handler)
      const client = await openRaw(t, port, '/?topic=a')
      await until(() => client.raw.endsWith('0\r\n\r\n'), 3000, `the response to end: ${JSON.stringify(client.raw)}`)
      assert.equal(client.raw.match(/HTTP\/1\.1 /g)?.length, 1, `one response head on the wire: ${JSON.stringify(client.raw)}`)
      assert.deepEqual(errors.map((e) => e.code), ['ERR_PATCHWIRE_RESPONSE'], 'the sent head reported as ERR_PATCHWIRE_RESPONSE, once')
      assert.deepEqual(streamCounts(handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'no stream opened on the sent response')
    })

    it('writes exactly the formatPatch bytes for a publish', async (t) => {
      const broker = createBroker()
      const server = await startServer(t, { broker })
      const client = await openStream(t, server.port, 'a')
      const ops: PatchOp[] = [['replace', '/text', 'line\r\nbreak \u2028 é']]
      await publish(broker, 'a', ops)
      await client.waitForEvents(2)
      const patch = client.named('patch')[0]
      assert.ok(patch?.id, `the patch has an id: ${JSON.stringify(patch)}`)
      assert.equal(afterReady(client), formatPatch(ops, patch.id), 'the stream carries exactly formatPatch(ops, id) after ready')
      assert.deepEqual(JSON.parse(patch.data), ops, 'the patch data parses back to the ops')
    })
  })

  describe('fan-out', () => {
    it('holds one broker subscription per topic however many streams', async (t) => {
      const { broker, counts } = countingBroker()
      const server = await startServer(t, { broker })
      const a = await Promise.all(Array.from({ length: 6 }, () => openStream(t, server.port, 'a')))
      const b = await Promise.all(Array.from({ length: 3 }, () => openStream(t, server.port, 'b')))
      assert.equal(a.length + b.length, 9, 'nine streams opened')
      assert.equal(counts.subscribe, 2, 'one broker subscription per topic')
      assert.deepEqual(counts.topics.sort(), ['a', 'b'], 'subscribed to topics a and b')
      assert.deepEqual(streamCounts(server.handler.stats()), { connections: 9, topics: 2, dropped: 0 }, 'nine streams on two topics counted')
    })

    it('two handlers on one broker each hold their own subscription', async (t) => {
      const { broker, counts } = countingBroker()
      const one = await startServer(t, { broker })
      const two = await startServer(t, { broker })
      const c1 = await openStream(t, one.port, 'a')
      const c2 = await openStream(t, two.port, 'a')
      assert.equal(counts.subscribe, 2, 'each handler subscribes to the topic itself')
      await publish(broker, 'a', [['add', '/n', 1]])
      await c1.waitForEvents(2)
      await c2.waitForEvents(2)
    })

    it('delivers a publish to every stream of its topic, the same bytes, and to no other topic', async (t) => {
      const broker = createBroker()
      const server = await startServer(t, { broker })
      const a = await Promise.all(Array.from({ length: 5 }, () => openStream(t, server.port, 'a')))
      const b = await Promise.all(Array.from({ length: 2 }, () => openStream(t, server.port, 'b')))
      const opsA: PatchOp[] = [['add', '/list/-', { n: 1, s: 'x\ny' }]]
      const opsB: PatchOp[] = [['remove', '/list/0']]
      await publish(broker, 'a', opsA)
      await Promise.all(a.map((c) => c.waitForEvents(2)))
      await publish(broker, 'b', opsB)
      await Promise.all(b.map((c) => c.waitForEvents(2)))
      await publish(broker, 'c', [['add', '/z', 0]])
      await publish(broker, 'a', [])
      await Promise.all(a.map((c) => c.waitForEvents(3)))
      const bytes = a.map(afterReady)
      for (const other of bytes) assert.equal(other, bytes[0], 'every stream of topic a got the same bytes')
      const [first, second] = a[0]?.named('patch') ?? []
      assert.ok(first?.id && second?.id, `both patches have ids: ${JSON.stringify([first, second])}`)
      assert.equal(bytes[0], formatPatch(opsA, first.id) + formatPatch([], second.id), 'topic a got exactly the two formatted patches')
      for (const client of b) {
        assert.deepEqual(client.named('patch').map((e) => JSON.parse(e.data)), [opsB], 'a stream of topic b got its one patch only')
      }
      for (const client of a) assert.ok(!client.raw.includes('/z') && !client.raw.includes('/list/0'), `a stream of topic a got nothing of topic b: ${JSON.stringify(client.raw)}`)
    })

    it('with lingerMs 0, unsubscribes as soon as the last stream of a topic leaves, and subscribes again on a new one', async (t) => {
      const { broker, counts } = countingBroker()
      const server = await startServer(t, { broker, lingerMs: 0 })
      const one = await openStream(t, server.port, 'a')
      const two = await openStream(t, server.port, 'a')
      one.destroy()
      await until(() => server.handler.stats().connections === 1, 3000, 'one stream to leave')
      assert.equal(counts.unsubscribe, 0, 'still subscribed while a stream is open')
      two.destroy()
      await until(() => server.handler.stats().connections === 0, 3000, 'the last stream to leave')
      assert.equal(counts.unsubscribe, 1, 'unsubscribed once the last stream left')
      assert.equal(server.handler.stats().topics, 0, 'no topic held after the last stream left')
      await openStream(t, server.port, 'a')
      assert.equal(counts.subscribe, 2, 'subscribed again for the new stream')
    })

    it('with a small lingerMs, unsubscribes after it, and a reconnect within it keeps the subscription', async (t) => {
      const { broker, counts } = countingBroker()
      const server = await startServer(t, { broker, lingerMs: 150 })
      const first = await openStream(t, server.port, 'a')
      first.destroy()
      await until(() => server.handler.stats().connections === 0, 3000, 'the stream to leave')
      assert.equal(server.handler.stats().topics, 1, 'the topic lingers')
      assert.equal(counts.unsubscribe, 0, 'still subscribed while the topic lingers')
      const second = await openStream(t, server.port, 'a')
      assert.equal(counts.subscribe, 1, 'a reconnect within lingerMs reuses the subscription')
      second.destroy()
      const left = Date.now()
      await until(() => counts.unsubscribe === 1, 3000, 'the unsubscribe after lingerMs')
      assert.ok(Date.now() - left >= 100, `lingered ${Date.now() - left} ms`)
      assert.equal(server.handler.stats().topics, 0, 'no topic held after lingerMs')
    })
  })

  describe('disconnect', () => {
    it('forgets a closed client at once, without any publish', async (t) => {
      const { broker, counts } = countingBroker()
      const server = await startServer(t, { broker, lingerMs: 0 })
      const clients = await Promise.all(Array.from({ length: 3 }, () => openStream(t, server.port, 'a')))
      assert.equal(server.handler.stats().connections, 3, 'three streams open')
      clients[1]?.destroy()
      await until(() => server.handler.stats().connections === 2, 2000, 'the close event')
      clients[0]?.socket.end()
      await until(() => server.handler.stats().connections === 1, 2000, 'the half-close')
      clients[2]?.destroy()
      await until(() => server.handler.stats().connections === 0, 2000, 'the last close')
      assert.equal(counts.unsubscribe, 1, 'unsubscribed once after the last close')
    })

    it('still delivers to the remaining streams after others left', async (t) => {
      const broker = createBroker()
      const server = await startServer(t, { broker })
      const clients = await Promise.all(Array.from({ length: 4 }, () => openStream(t, server.port, 'a')))
      clients[0]?.destroy()
      clients[2]?.destroy()
      await until(() => server.handler.stats().connections === 2, 2000, 'two to leave')
      await publish(broker, 'a', [['add', '/a', 1]])
      await clients[1]?.waitForEvents(2)
      await clients[3]?.waitForEvents(2)
    })

    it('cuts a connection that pipelines a request behind its stream, and leaks nothing', async (t) => {
      const server = await startServer(t, { lingerMs: 0 })
      const client = await sendRaw(t, server.port, request('GET', '/?topic=a') + request('GET', '/?topic=b'))
      // The second request would wait behind a response that never ends, and
      // every further one would pile up on the connection: it is cut.
      await client.waitForClose()
      assert.match(client.raw, /^HTTP\/1\.1 200 OK/, `the stream was answered before the cut: ${JSON.stringify(client.raw.slice(0, 200))}`)
      await until(() => server.handler.stats().connections === 0 && server.handler.stats().topics === 0, 2000, 'both to be forgotten')
    })
  })

  describe('#close', () => {
    it('ends every stream, resolves, empties stats, unsubscribes, and later requests get 503', async (t) => {
      const { broker, counts } = countingBroker()
      const server = await startServer(t, { broker })
      const clients = [
        await openStream(t, server.port, 'a'),
        await openStream(t, server.port, 'a'),
        await openStream(t, server.port, 'b'),
      ]
      assert.deepEqual(streamCounts(server.handler.stats()), { connections: 3, topics: 2, dropped: 0 }, 'three streams on two topics before close()')
      const result = server.handler.close()
      assert.ok(result instanceof Promise, 'close() returns a Promise')
      assert.equal(await result, undefined, 'close() resolves to undefined')
      await Promise.all(clients.map((c) => c.waitForClose(3000)))
      assert.deepEqual(streamCounts(server.handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'no stream or topic left after close()')
      assert.equal(counts.unsubscribe, 2, 'each topic unsubscribed once')
      assert.doesNotThrow(() => void publish(broker, 'a', [['add', '/late', 1]]), 'publishing after close() does not throw')
      await publish(broker, 'a', [['add', '/late', 1]])
      for (const client of clients) assert.equal(client.named('patch').length, 0, 'no patch reaches a closed stream')
      assertRefused(await ask(t, server.port, request('GET', '/?topic=a')), 503, server)
      await server.handler.close()
    })

    it('ends a stalled reader\'s stream too, so that server.close() completes', async (t) => {
      const broker = createBroker()
      const handler = createHandler({ broker })
      const server = http.createServer((req, res) => handler(req, res))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      t.after(() => server.closeAllConnections())
      const { port } = server.address() as import('node:net').AddressInfo
      const stalled = await openRaw(t, port, '/?topic=a')
      await until(() => handler.stats().connections === 1, 3000, 'the stream')
      stalled.socket.pause()
      // More than the kernel's buffers take: the rest waits in Node, behind a reader that never reads.
      await publish(broker, 'a', [['replace', '/blob', 'z'.repeat(32 * 1024 * 1024)]])
      await handler.close()
      let serverClosed = false
      server.close(() => (serverClosed = true))
      await until(() => serverClosed, 3000, 'server.close() to complete')
      assert.equal(handler.stats().connections, 0, 'the stalled stream is gone after close()')
    })

    it('resolves with nothing open', async (t) => {
      const server = await startServer(t, {})
      await server.handler.close()
      assert.deepEqual(streamCounts(server.handler.stats()), { connections: 0, topics: 0, dropped: 0 }, 'nothing open after close()')
    })

    it('lets go of lingering topics too', async (t) => {
      const { broker, counts } = countingBroker()
      const server = await startServer(t, { broker, lingerMs: 60_000 })
      const client = await openStream(t, server.port, 'a')
      client.destroy()
      await until(() => server.handler.stats().connections === 0, 2000, 'the stream to leave')
      assert.equal(server.handler.stats().topics, 1, 'the topic lingers after its stream left')
      await server.handler.close()
      assert.equal(server.handler.stats().topics, 0, 'close() lets go of the lingering topic')
      assert.equal(counts.unsubscribe, 1, 'the lingering topic unsubscribed once')
    })
  })

  describe('#stats', () => {
    it('starts at zero in every counter', async (t) => {
      const server = await startServer(t, { lingerMs: 0 })
      assert.deepEqual(server.handler.stats(), {
        connections: 0, topics: 0, dropped: 0, pending: 0, messages: 0, frames: 0, bytes: 0, replays: 0, snapshots: 0,
        resets: { 'malformed-id': 0, 'foreign-id': 0, 'history-exceeded': 0, 'broker-gap': 0 },
        refused: {}, expired: 0, revoked: 0,
      }, 'every counter starts at zero')
    })

    it('counts streams, messages, frames and bytes written, replays, resets, snapshots and refusals', async (t) => {
      const broker = createBroker({ history: 2 })
      const server = await startServer(t, { broker, lingerMs: 0, snapshot: () => ({ n: 0 }), authorize: (_req, topic) => topic !== 'secret' })
      const a = await openStream(t, server.port, 'a')
      const b = await openStream(t, server.port, 'b')
      await openStream(t, server.port, 'b')
      const id = await publish(broker, 'b', [['replace', '/n', 1]])
      await publish(broker, 'a', [['replace', '/n', 1]])
      await b.waitForEvents(3)
      await a.waitForEvents(3)
      // A replay (exact), a history-exceeded reset, a malformed id, and refusals.
      await openStream(t, server.port, 'b', [`Last-Event-ID: ${id}`])
      for (let n = 2; n < 5; n++) await publish(broker, 'b', [['replace', '/n', n]])
      await openStream(t, server.port, 'b', [`Last-Event-ID: ${id}`])
      await openStream(t, server.port, 'a', ['Last-Event-ID: nonsense'])
      assert.equal((await ask(t, server.port, request('GET', '/?topic=secret'))).status, 403, 'the topic authorize refuses answers 403')
      assert.equal((await ask(t, server.port, request('GET', '/'))).status, 400, 'a request without topic answers 400')
      const stats = server.handler.stats()
      assert.equal(stats.connections, 6, `six streams: ${JSON.stringify(stats)}`)
      assert.equal(stats.topics, 2, `topics a and b: ${JSON.stringify(stats)}`)
      assert.equal(stats.messages, 5, `five messages published: ${JSON.stringify(stats)}`)
      assert.ok(stats.frames >= 3 + 3, `frames ${stats.frames}: one per stream per message`)
      assert.ok(stats.bytes > 0, `bytes counts what was written, got ${stats.bytes}`)
      assert.equal(stats.replays, 1, `one exact replay: ${JSON.stringify(stats)}`)
      assert.equal(stats.resets['history-exceeded'], 1, `one history-exceeded reset: ${JSON.stringify(stats.resets)}`)
      assert.equal(stats.resets['malformed-id'], 1, `one malformed-id reset: ${JSON.stringify(stats.resets)}`)
      assert.equal(stats.snapshots, 5, 'three fresh streams and two resets')
      assert.deepEqual(stats.refused, { 400: 1, 403: 1 }, 'one 400 and one 403 refusal counted')
    })
  })
})

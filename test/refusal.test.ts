/**
 * Refusals say why. The server's 403 body names the rule that refused
 * (`topicPrefix`, or `authorize`) and nothing of what `authorize` knows;
 * the client's ERR_PATCHWIRE_REFUSED lists the likely causes for the answer
 * it got: a wrong path (the app's 200 text/plain, or a 404), the handler's
 * rules (403), or no answer at all (CORS, a server that is down). The same
 * in Chromium, with a real CORS failure: test/quickstart.test.ts.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { EventSource } from 'eventsource'
import { createBroker, createHandler, type HandlerOptions } from '../src/index.ts'
import { subscribe, type PatchwireError } from '../src/client/index.ts'
import { explainRefusal } from '../src/client/refusal.ts'
import { listen, until } from './helpers/server.ts'

const TIMEOUT = { timeout: 15_000 }
const SECRET = 'session-token-4f9a'

/** A server where the handler answers /events and the app answers everything else with 200 text/plain. */
async function app(t: TestContext, options: HandlerOptions): Promise<string> {
  const events = createHandler({ broker: createBroker(), path: '/events', ...options })
  const server = http.createServer((req, res) => events(req, res, () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('my app')))
  const { origin } = await listen(t, server, events)
  return origin
}

/** Subscribes and resolves with the refusal the subscription reported. */
async function refusal(t: TestContext, path: string, topic: string): Promise<PatchwireError> {
  const errors: PatchwireError[] = []
  const stop = subscribe(topic, () => {}, { path, EventSource, onError: (error) => errors.push(error) })
  t.after(stop)
  await until(() => errors.length > 0, 5000, 'the refusal')
  assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_REFUSED', `a refusal, got ${errors[0]?.code}: ${errors[0]?.message}`)
  assert.equal(stop.state, 'closed', 'the subscription is closed')
  return errors[0] as PatchwireError
}

describe('refusals say why', TIMEOUT, () => {
  describe('the server\'s 403 body names the rule', () => {
    it('topicPrefix: the topic and the prefix', async (t) => {
      const origin = await app(t, { topicPrefix: 'dashboard:' })
      const response = await fetch(`${origin}/events?topic=counter`)
      assert.equal(response.status, 403, 'a topic outside the prefix is refused')
      assert.equal(await response.text(), 'Forbidden: the topic "counter" does not start with the handler\'s topicPrefix "dashboard:"', 'the body names the rule')
    })

    it('authorize: the option, and nothing of what it compared', async (t) => {
      const origin = await app(t, { authorize: (req) => req.headers['x-token'] === SECRET })
      const response = await fetch(`${origin}/events?topic=room`, { headers: { 'x-token': 'wrong' } })
      assert.equal(response.status, 403, 'authorize said no')
      const body = await response.text()
      assert.equal(body, 'Forbidden: the handler\'s authorize option did not return true for every topic of this stream', 'the body names the rule')
      assert.ok(!body.includes(SECRET) && !body.includes('wrong'), 'no secret, and nothing of the request, is in the body')
    })
  })

  describe('the client\'s refusal error lists the likely causes', () => {
    it('403 from topicPrefix: the server\'s reason, and topicPrefix/authorize', async (t) => {
      const origin = await app(t, { topicPrefix: 'dashboard:' })
      const error = await refusal(t, `${origin}/events`, 'counter')
      assert.match(error.message, /refused the stream .*: 403 text\/plain "Forbidden: the topic "counter" does not start with the handler's topicPrefix "dashboard:"". Likely cause: topicPrefix or authorize; see docs\/troubleshooting.md$/, error.message)
    })

    it('a wrong path answered by the app (200 text/plain): a wrong path, and how to fix it', async (t) => {
      const origin = await app(t, {})
      const error = await refusal(t, `${origin}/wrong/__events`, 'counter')
      assert.match(error.message, /: 200 text\/plain "my app". Likely cause: a wrong path; see docs\/troubleshooting.md$/, error.message)
    })

    it('a path nothing answers (404): a wrong path', async (t) => {
      const events = createHandler({ broker: createBroker(), path: '/events' })
      const { origin } = await listen(t, http.createServer((req, res) => events(req, res)), events)
      const error = await refusal(t, `${origin}/evnets`, 'counter')
      assert.match(error.message, /: 404 text\/plain "Not Found". Likely cause: a wrong path; see docs\/troubleshooting.md$/, error.message)
    })

    it('400 (too many topics): the server\'s own reason', async (t) => {
      const origin = await app(t, { maxTopics: 1 })
      const response = await fetch(`${origin}/events?topic=a&topic=b`)
      assert.equal(response.status, 400, 'the control: two topics are too many')
      await response.text()
      assert.match(await explainRefusal(`${origin}/events?topic=a&topic=b`, false), /^: 400 text\/plain "Too many topics.*option maxTopics\)"; see docs\/troubleshooting.md$/, 'the body is passed on')
    })

    it('no HTTP answer at all: CORS, or a server that is down', async () => {
      const server = http.createServer()
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const { port } = server.address() as AddressInfo
      await new Promise((resolve) => server.close(resolve))
      const why = await explainRefusal(`http://127.0.0.1:${port}/events?topic=a`, true)
      assert.match(why, /^: no HTTP answer. Likely cause: CORS \(Access-Control-Allow-Origin and -Allow-Credentials, for withCredentials\) or the server is down; see docs\/troubleshooting.md$/, why)
    })

    it('every other status: its one short cause, and the docs for the long one', async (t) => {
      const cases = [
        [401, 'text/plain', 'no credentials \\(withCredentials\\?\\)'],
        [429, 'text/plain', 'server busy'],
        [503, 'text/plain', 'server busy'],
        [500, 'text/plain', 'authorize threw'],
        [418, 'text/html', 'not an events handler'],
      ] as const
      for (const [status, type, cause] of cases) {
        const server = http.createServer((_req, res) => res.writeHead(status, { 'Content-Type': type }).end('nope'))
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
        t.after(() => {
          server.closeAllConnections()
          server.close()
        })
        const { port } = server.address() as AddressInfo
        const why = await explainRefusal(`http://127.0.0.1:${port}/events?topic=a`, false)
        assert.match(why, new RegExp(`^: ${status} ${type.replace('/', '\\/')} "nope". Likely cause: ${cause}; see docs\\/troubleshooting.md$`), why)
      }
    })

    it('a stream accepted when asked again: a passing refusal', async (t) => {
      const origin = await app(t, {})
      const why = await explainRefusal(`${origin}/events?topic=a`, false)
      assert.match(why, /^: accepted when asked again \(a passing 503\?\); subscribe again$/, why)
    })

    it('adds nothing where it cannot ask (a relative URL outside a page, a URL that is not http)', async () => {
      assert.equal(await explainRefusal('/events?topic=a', false), '', 'no page to resolve it against')
      assert.equal(await explainRefusal('ftp://example.invalid/events', false), '', 'not http')
    })
  })
})

/**
 * `GET <path>/client.js`: both handlers serve the browser client as ONE ES
 * module (the bundle `npm run build` makes), text/javascript, cacheable,
 * with an ETag and 304s; `serveClient: false` turns it off. The page that
 * imports it in Chromium is test/quickstart.test.ts.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import { describe, it, type TestContext } from 'node:test'
import { createBroker, createFetchHandler, createHandler } from '../src/index.ts'
import { answerClientScript, isClientScriptPath } from '../src/http/client-script.ts'
import { ROOT, run } from './helpers/package.ts'
import { listen, startServer } from './helpers/server.ts'

const BUNDLE = new URL('../dist/browser/client.js', import.meta.url)

/** The options these tests vary. */
type Options = { path?: string; serveClient?: boolean }

interface Answer {
  status: number
  headers: Headers
  body: string
}

async function get(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init)
  return { status: response.status, headers: response.headers, body: await response.text() }
}

async function nodeServer(t: TestContext, options: Options): Promise<string> {
  const { origin } = await startServer(t, { broker: createBroker(), ...options })
  return origin
}

/** A Fetch handler behind node:http, as @hono/node-server would put it. */
async function fetchServer(t: TestContext, options: Options): Promise<string> {
  const handler = createFetchHandler({ broker: createBroker(), ...options })
  const server = http.createServer(async (req, res) => {
    const response = await handler(new Request(`http://${req.headers.host}${req.url}`, { method: req.method ?? 'GET', headers: req.headers as Record<string, string> }))
    const headers: Record<string, string> = {}
    response.headers.forEach((value, name) => (headers[name] = value))
    res.writeHead(response.status, headers)
    res.end(Buffer.from(await response.arrayBuffer()))
  })
  const { origin } = await listen(t, server, Object.assign(() => {}, { close: () => handler.close(), stats: () => handler.stats(), revoke: (filter: Parameters<typeof handler.revoke>[0]) => handler.revoke(filter) }))
  return origin
}

describe('GET <path>/client.js', { timeout: 20_000 }, () => {
  for (const [name, serve] of [['createHandler', nodeServer], ['createFetchHandler', fetchServer]] as const) {
    describe(name, () => {
      it('serves the bundle as text/javascript, cacheable, with an ETag, open to other origins', async (t) => {
        const origin = await serve(t, { path: '/events' })
        const answer = await get(`${origin}/events/client.js`)
        assert.equal(answer.status, 200, answer.body)
        assert.equal(answer.headers.get('content-type'), 'text/javascript; charset=utf-8', 'a JavaScript MIME type, as module scripts require')
        assert.equal(answer.headers.get('cache-control'), 'public, max-age=300', 'cacheable')
        assert.match(answer.headers.get('etag') ?? '', /^"[0-9a-f]{24}"$/, 'a strong ETag')
        assert.equal(answer.headers.get('access-control-allow-origin'), '*', 'a page of another origin may import it')
        assert.equal(answer.body, await readFile(BUNDLE, 'utf8'), 'the body is dist/browser/client.js')
      })

      it('answers 304 without a body to If-None-Match with its ETag, and 200 to another ETag', async (t) => {
        const origin = await serve(t, { path: '/events' })
        const first = await get(`${origin}/events/client.js`)
        const etag = first.headers.get('etag') ?? ''
        for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
          const again = await get(`${origin}/events/client.js`, { headers: { 'If-None-Match': header } })
          assert.equal(again.status, 304, `If-None-Match: ${header}`)
          assert.equal(again.body, '', 'a 304 has no body')
          assert.equal(again.headers.get('etag'), etag, 'the 304 names the ETag')
        }
        const other = await get(`${origin}/events/client.js`, { headers: { 'If-None-Match': '"other"' } })
        assert.equal(other.status, 200, 'another ETag gets the module')
      })

      it('answers HEAD with the headers and no body', async (t) => {
        const origin = await serve(t, { path: '/events' })
        const head = await get(`${origin}/events/client.js`, { method: 'HEAD' })
        assert.equal(head.status, 200, 'HEAD is answered')
        assert.equal(head.headers.get('content-length'), String((await readFile(BUNDLE)).length), 'with the length of the module')
        assert.equal(head.body, '', 'and no body')
      })

      it('serves any path ending in /client.js without a path option (a handler mounted under a prefix)', async (t) => {
        const origin = await serve(t, {})
        for (const path of ['/client.js', '/live/client.js']) {
          const answer = await get(`${origin}${path}`)
          assert.equal(answer.status, 200, `${path}: ${answer.body}`)
          assert.equal(answer.headers.get('content-type'), 'text/javascript; charset=utf-8', `${path} is the module`)
        }
      })

      it('does not serve it with serveClient: false, nor at another path, nor to POST (controls)', async (t) => {
        const off = await serve(t, { path: '/events', serveClient: false })
        assert.equal((await get(`${off}/events/client.js`)).status, 404, 'serveClient: false: the path is not the handler\'s')
        const bare = await serve(t, { serveClient: false })
        const refused = await get(`${bare}/client.js`)
        assert.equal(refused.status, 400, 'serveClient: false without a path: a stream request without a topic')
        const on = await serve(t, { path: '/events' })
        assert.equal((await get(`${on}/other/client.js`)).status, 404, 'another path is not the handler\'s')
        const posted = await get(`${on}/events/client.js`, { method: 'POST' })
        assert.notEqual(posted.headers.get('content-type'), 'text/javascript; charset=utf-8', 'a POST does not get the module')
      })
    })
  }

  it('is one ES module that needs no other file: it loads from a data: URL, where no import could resolve', async () => {
    const source = await readFile(BUNDLE, 'utf8')
    const client = (await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`)) as Record<string, unknown>
    assert.equal(typeof client['subscribe'], 'function', 'it exports subscribe')
    assert.equal(typeof client['applyPatch'], 'function', 'it exports applyPatch')
    assert.equal(typeof client['diff'], 'function', 'it exports diff')
    assert.equal(typeof client['PatchwireError'], 'function', 'it exports PatchwireError')
    assert.deepEqual((client['applyPatch'] as (t: unknown, o: unknown) => unknown)({ n: 0 }, [['replace', '/n', 1]]), { n: 1 }, 'its applyPatch works')
    assert.doesNotMatch(source, /\bimport\s*[("'{*]|node:/, 'no import of another file, and nothing of Node')
  })

  describe('in Bun and Deno, which read the bundle through node:fs', () => {
    const FIXTURE = 'test/fixtures/runtimes/client-script.ts'
    const BIN = `${ROOT}node_modules/.bin`
    const ask = async (command: string, args: string[]): Promise<{ status: number; type: string; length: number; body: string }> => {
      const result = await run(`${BIN}/${command}`, [...args, FIXTURE], ROOT, 60_000)
      assert.equal(result.exitCode, 0, result.stderr)
      return JSON.parse(result.stdout) as { status: number; type: string; length: number; body: string }
    }

    it('Bun serves it', { timeout: 60_000 }, async () => {
      const answer = await ask('bun', [])
      assert.deepEqual([answer.status, answer.type, answer.length], [200, 'text/javascript; charset=utf-8', (await readFile(BUNDLE, 'utf8')).length], JSON.stringify(answer))
    })

    it('Deno serves it with --allow-read, and without it answers 404 saying so', { timeout: 60_000 }, async () => {
      const allowed = await ask('deno', ['run', '--no-lock', '--allow-read'])
      assert.deepEqual([allowed.status, allowed.type, allowed.length], [200, 'text/javascript; charset=utf-8', (await readFile(BUNDLE, 'utf8')).length], JSON.stringify(allowed))
      const denied = await ask('deno', ['run', '--no-lock', '--no-prompt'])
      assert.equal(denied.status, 404, JSON.stringify(denied))
      assert.match(denied.body, /could not be read .*--allow-read/, 'the 404 names the permission')
    })
  })

  it('answers 404 naming the fix when the bundle was not built', async () => {
    const missing = new URL('./no-such-bundle/client.js', import.meta.url)
    const answer = await answerClientScript('GET', undefined, missing)
    assert.equal(answer.status, 404, 'a missing bundle is a 404')
    assert.match(String(answer.body), /the browser client bundle .*no-such-bundle\/client\.js could not be read \(ENOENT: no such file or directory.*\): run npm run build .*or set serveClient: false/, 'the body names the file, why and the fix')
  })

  it('matches the path exactly: <path>/client.js with a path option, a last segment client.js without one', () => {
    assert.equal(isClientScriptPath('/events/client.js', '/events'), true, 'below the path')
    assert.equal(isClientScriptPath('/events/client.js', '/events/'), true, 'below a path with a trailing slash')
    assert.equal(isClientScriptPath('/client.js', '/events'), false, 'not elsewhere')
    assert.equal(isClientScriptPath('/events/x/client.js', '/events'), false, 'not deeper')
    assert.equal(isClientScriptPath('/a/client.js', undefined), true, 'any last segment client.js without a path')
    assert.equal(isClientScriptPath('/a/myclient.js', undefined), false, 'a segment merely ending in client.js is not it')
  })

  it('refuses a serveClient that is not a boolean', () => {
    assert.throws(() => createHandler({ serveClient: 'yes' as unknown as boolean }), { name: 'TypeError', message: /option "serveClient" must be a boolean, got string/ }, 'createHandler')
    assert.throws(() => createFetchHandler({ serveClient: 0 as unknown as boolean }), { name: 'TypeError', message: /option "serveClient" must be a boolean, got number/ }, 'createFetchHandler')
  })
})

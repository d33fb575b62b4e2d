/**
 * CommonJS users: `require('patchwire')` loads the ESM build through
 * `require(esm)` (Node 20.19+, 22.12+). The script runs in a child process
 * from a directory outside the repository whose `node_modules/patchwire`
 * links here, so the package resolves by name through `package.json`
 * `exports`, as it does for an application.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { HandlerStats } from '../src/index.ts'
import { streamCounts } from './helpers/server.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TIMEOUT = { timeout: 15_000 }

/**
 * Requires every entry point, then serves one stream with the required
 * `createHandler`, publishes on it, disconnects, and prints what it saw.
 */
const SCRIPT = `'use strict'
const http = require('node:http')
const patchwire = require('patchwire')
const client = require('patchwire/client')
const redis = require('patchwire/redis')
const { createBroker, createHandler, publish } = patchwire

const broker = createBroker()
const events = createHandler({ broker, lingerMs: 0 })
const server = http.createServer(events)
server.listen(0, '127.0.0.1', () => {
  const request = http.get({ host: '127.0.0.1', port: server.address().port, path: '/?topic=room' }, (res) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk) => {
      body += chunk
      if (body.includes('event: ready') && !body.includes('event: patch')) publish(broker, 'room', [['replace', '/n', 1]])
      if (!body.includes('event: patch')) return
      const open = events.stats()
      request.destroy()
      const poll = setInterval(() => {
        if (events.stats().connections !== 0) return
        clearInterval(poll)
        server.close()
        console.log(JSON.stringify({
          server: Object.keys(patchwire).sort(),
          client: Object.keys(client).sort(),
          redis: Object.keys(redis).sort(),
          status: res.statusCode,
          contentType: res.headers['content-type'],
          body,
          open,
          closed: events.stats(),
        }))
      }, 5)
    })
  })
})
`

describe('CommonJS', () => {
  let dir = ''

  before(async () => {
    assert.ok(existsSync(path.join(ROOT, 'dist', 'index.js')), 'dist/index.js is missing: run `npm run build` first (npm test does)')
    dir = await mkdtemp(path.join(os.tmpdir(), 'patchwire-cjs-'))
    await mkdir(path.join(dir, 'node_modules'))
    await symlink(ROOT, path.join(dir, 'node_modules', 'patchwire'), 'dir')
    await writeFile(path.join(dir, 'app.cjs'), SCRIPT)
  })

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('require("patchwire") and its subpaths work, and the required handler streams a publish', TIMEOUT, async () => {
    const { stdout, stderr } = await run(['app.cjs'], dir)
    // Node 20.19+ loads it silently; some 22.x releases print a one-time ExperimentalWarning.
    assert.equal(stderr.replace(/^.*ExperimentalWarning.*$\n?|^\(Use `node --trace-warnings.*$\n?/gm, ''), '', `the CommonJS app printed nothing on stderr but a require(esm) warning: ${stderr}`)
    const seen = JSON.parse(stdout) as Record<string, unknown>
    assert.deepEqual(seen['server'], ['PatchError', 'PatchwireError', 'applyPatch', 'createBroker', 'createFetchHandler', 'createHandler', 'defaultBroker', 'diff', 'formatPatch', 'position', 'publish', 'revoke'], 'the server entry exports these names')
    assert.ok((seen['client'] as string[]).includes('subscribe') && (seen['client'] as string[]).includes('applyPatch'), `require('patchwire/client') has subscribe and applyPatch: ${JSON.stringify(seen['client'])}`)
    assert.ok((seen['redis'] as string[]).includes('createRedisBroker'), `require('patchwire/redis') has createRedisBroker: ${JSON.stringify(seen['redis'])}`)
    assert.equal(seen['status'], 200, 'the required handler answers 200')
    assert.equal(seen['contentType'], 'text/event-stream', 'the required handler answers an event stream')
    assert.match(seen['body'] as string, /^retry: \d+\n\n/, `the stream starts with a retry hint: ${JSON.stringify(seen['body'])}`)
    assert.match(seen['body'] as string, /event: patch\ndata: \[\["replace","\/n",1\]\]\n\n/, `the stream carries the published patch: ${JSON.stringify(seen['body'])}`)
    assert.deepEqual(streamCounts(seen['open'] as HandlerStats), { connections: 1, topics: 1, dropped: 0 }, 'one stream on one topic while open')
    assert.deepEqual(streamCounts(seen['closed'] as HandlerStats), { connections: 0, topics: 0, dropped: 0 }, 'nothing left after the client closed')
  })

  it('is ESM underneath: without require(esm) the same require fails with ERR_REQUIRE_ESM', TIMEOUT, async () => {
    const script = path.join(dir, 'plain.cjs')
    await writeFile(script, `require('patchwire')\n`)
    await assert.rejects(run(['--no-experimental-require-module', script], dir), /ERR_REQUIRE_ESM/, 'require fails with ERR_REQUIRE_ESM without require(esm)')
  })
})

function run(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`node ${args.join(' ')} failed: ${stderr}`, { cause: error }))
      else resolve({ stdout, stderr })
    })
  })
}

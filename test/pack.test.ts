/**
 * The published package, as a user installs it: a copy of a fresh clone
 * (no `dist/`) is packed with `npm pack`, which must build it (the
 * `prepack` script: npm runs it on pack and on publish), and the tarball is
 * installed into a project of its own, with no install-script warning (its
 * package.json has no `prepare`), where an ES module and a CommonJS module
 * load all the server and client entry points by name, the framework
 * bindings install with no framework, a bundler builds browser code that
 * imports `patchwire/client`, and the Quick start runs as the README shows
 * it. A git install builds with `prepare`, which the repository keeps.
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { copyCleanClone, installTarball, pack, ROOT, run, type PackedPackage, type RunResult } from './helpers/package.ts'
import { until } from './helpers/server.ts'
import { spawnTied } from './helpers/tied-process.ts'

const TIMEOUT = { timeout: 30_000 }
const SETUP_TIMEOUT = { timeout: 240_000 }
const RUN_TIMEOUT_MS = 20_000

/** A file that an earlier build left in dist/ and the sources no longer make. */
const STALE = 'dist/removed-module.js'

/** What each entry point must give, printed as JSON by both consumers below. */
const PROBE = `({
  formatPatch: typeof server.formatPatch,
  publish: typeof server.publish,
  createHandler: typeof server.createHandler,
  frame: server.formatPatch([['replace', '/n', 1]]),
  subscribe: typeof client.subscribe,
  applied: client.applyPatch({ n: 0 }, [['replace', '/n', 1]]),
  serverApplied: server.applyPatch({ n: 0 }, [['replace', '/n', 2]]),
  createRedisBroker: typeof redis.createRedisBroker,
  createPostgresBroker: typeof postgres.createPostgresBroker,
  postgresSchema: typeof postgres.postgresSchema,
})`

const CONSUMER_ESM = `import * as server from 'patchwire'
import * as client from 'patchwire/client'
import * as redis from 'patchwire/redis'
import * as postgres from 'patchwire/postgres'

console.log(JSON.stringify({
  ...${PROBE},
  resolved: ['patchwire', 'patchwire/client', 'patchwire/redis', 'patchwire/postgres'].map((name) => new URL(import.meta.resolve(name)).pathname),
}))
`

const CONSUMER_CJS = `'use strict'
const server = require('patchwire')
const client = require('patchwire/client')
const redis = require('patchwire/redis')
const postgres = require('patchwire/postgres')

console.log(JSON.stringify({
  ...${PROBE},
  resolved: ['patchwire', 'patchwire/client', 'patchwire/redis', 'patchwire/postgres'].map((name) => require.resolve(name)),
  requireModule: process.features.require_module,
}))
`

/** Browser code, bundled by esbuild for the browser from the installed package. */
const BROWSER_ENTRY = `import { applyPatch, subscribe } from 'patchwire/client'

console.log(JSON.stringify({ subscribe: typeof subscribe, applied: applyPatch({ n: 0 }, [['replace', '/n', 1]]) }))
`

/** The bundle check's control: browser code that pulls in Node. */
const NODE_IN_THE_BROWSER = `import http from 'node:http'

console.log(typeof http.createServer)
`

const ESBUILD = path.join(ROOT, 'node_modules', '.bin', 'esbuild')

/** Where package.json `exports` sends each entry point, inside the installed package. */
const ENTRY_FILES = ['dist/index.js', 'dist/client/index.js', 'dist/adapters/redis/index.js', 'dist/adapters/postgres/index.js']

/** The framework bindings' entry points (`patchwire/react`, `/svelte`, `/vue`), whose frameworks are optional peers. */
const BINDING_FILES = ['dist/bindings/react.js', 'dist/bindings/svelte.js', 'dist/bindings/vue.js']

/** The Svelte binding under Node with no framework installed, as a server render runs it: a store of undefined. */
const SVELTE_ON_THE_SERVER = `import { live } from 'patchwire/svelte'

const seen = []
live('room', { path: '/events' }).subscribe((state) => seen.push(state))()
console.log(JSON.stringify({ seen, resolved: new URL(import.meta.resolve('patchwire/svelte')).pathname }))
`

describe('npm pack', () => {
  let work = ''
  let clone = ''
  let project = ''
  let packed: PackedPackage
  let installed: RunResult

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'patchwire-pack-'))
    clone = await copyCleanClone(path.join(work, 'clone'))
    await mkdir(path.join(clone, 'dist'))
    await writeFile(path.join(clone, STALE), 'export {}\n')
    packed = await pack(clone, path.join(work, 'out'))
    project = path.join(work, 'app')
    installed = await installTarball(packed.tarball, project)
    await writeFile(path.join(project, 'consumer.mjs'), CONSUMER_ESM)
    await writeFile(path.join(project, 'consumer.cjs'), CONSUMER_CJS)
    await writeFile(path.join(project, 'browser-entry.mjs'), BROWSER_ENTRY)
    await writeFile(path.join(project, 'node-in-the-browser.mjs'), NODE_IN_THE_BROWSER)
    await writeFile(path.join(project, 'svelte-on-the-server.mjs'), SVELTE_ON_THE_SERVER)
  }, SETUP_TIMEOUT)

  after(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true })
  })

  describe('the tarball', () => {
    it('is built by npm pack from a clone with no dist/: every entry point and its types', () => {
      for (const file of ENTRY_FILES) {
        assert.ok(packed.files.includes(file), `${file} is not in the tarball: ${packed.files.join(', ')}`)
        assert.ok(packed.files.includes(file.replace(/\.js$/, '.d.ts')), `the types of ${file} are not in the tarball`)
      }
      assert.ok(packed.files.includes('dist/browser/client.js'), 'the client the handlers serve at <path>/client.js is in the tarball')
    })

    it('ships the framework bindings and their types', () => {
      for (const file of BINDING_FILES) {
        assert.ok(packed.files.includes(file), `${file} is not in the tarball`)
        assert.ok(packed.files.includes(file.replace(/\.js$/, '.d.ts')), `the types of ${file} are not in the tarball`)
      }
    })

    it('holds a fresh build only: a file an earlier build left in dist/ is gone', () => {
      assert.ok(!packed.files.includes(STALE), `${STALE} was shipped`)
    })

    it('ships LICENSE, README.md, package.json, dist/, src/ and the guides (docs/*.md), and no tests, benchmarks, examples, images or CI files', () => {
      for (const file of ['LICENSE', 'README.md', 'package.json', 'src/index.ts', 'src/client/index.ts']) {
        assert.ok(packed.files.includes(file), `${file} is not in the tarball`)
      }
      const top = new Set(packed.files.map((file) => file.split('/')[0]))
      assert.deepEqual([...top].sort(), ['LICENSE', 'README.md', 'dist', 'docs', 'package.json', 'src'], 'the top level of the tarball')
      // The README links to the guides, so they ship; the README's image is an absolute URL, so docs/dashboard.png does not.
      const guides = readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)
      assert.deepEqual(packed.files.filter((file) => file.startsWith('docs/')), guides.sort(), 'docs/ ships its guides, and nothing else')
      const unwanted = packed.files.filter((file) => /(^|\/)(test|bench|examples|\.ci|node_modules)\/|\.test\.ts$|tsconfig|\.png$/.test(file))
      assert.deepEqual(unwanted, [], 'no tests, benchmarks, examples, images or CI files')
    })

    it('says where it comes from: repository, homepage and bugs, and its MIT license text in LICENSE', async () => {
      const manifest = JSON.parse(await readFile(path.join(project, 'node_modules', 'patchwire', 'package.json'), 'utf8')) as Record<string, unknown>
      assert.deepEqual(manifest['repository'], { type: 'git', url: 'git+https://github.com/patchwire/patchwire.git' }, 'the manifest names the GitHub repository')
      assert.equal(manifest['homepage'], 'https://github.com/patchwire/patchwire#readme', 'the manifest names the homepage')
      assert.deepEqual(manifest['bugs'], { url: 'https://github.com/patchwire/patchwire/issues' }, 'the manifest names the issue tracker')
      assert.equal(manifest['license'], 'MIT', 'the manifest says MIT')
      const license = await readFile(path.join(project, 'node_modules', 'patchwire', 'LICENSE'), 'utf8')
      assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 patchwire contributors\n/, `LICENSE is the MIT text for patchwire contributors: ${JSON.stringify(license.slice(0, 80))}`)
      assert.equal(manifest['dependencies'], undefined, 'the package has no dependencies')
    })

    it('ships every source file that its source maps and declaration maps point at', async () => {
      const maps = packed.files.filter((file) => file.endsWith('.map'))
      assert.ok(maps.some((file) => file.endsWith('.d.ts.map')) && maps.some((file) => file.endsWith('.js.map')), `the package ships declaration maps and source maps: ${maps.join(', ')}`)
      for (const map of maps) {
        const { sources } = JSON.parse(await readFile(path.join(clone, map), 'utf8')) as { sources: string[] }
        for (const source of sources) {
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(map), source))
          assert.ok(packed.files.includes(target), `${map} points at ${target}, which is not shipped`)
        }
      }
    })
  })

  describe('npm pack and install scripts', () => {
    it('installs from the tarball with no install-script warning: the packed package.json has no prepare', async () => {
      assert.doesNotMatch(`${installed.stdout}\n${installed.stderr}`, /install-scripts|allowScripts|prepare/, `npm printed an install-script warning:\n${installed.stderr}`)
      const manifest = JSON.parse(await readFile(path.join(project, 'node_modules', 'patchwire', 'package.json'), 'utf8')) as { scripts: Record<string, string> }
      assert.equal(manifest.scripts['prepare'], undefined, 'the tarball\'s package.json has no prepare script')
      for (const name of ['preinstall', 'install', 'postinstall']) assert.equal(manifest.scripts[name], undefined, `no ${name} script`)
    })

    it('puts the clone\'s package.json back after packing: prepare is still there for git installs', async () => {
      const manifest = JSON.parse(await readFile(path.join(clone, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
      assert.equal(manifest.scripts['prepare'], 'npm run build', 'the repository keeps prepare, which npm runs for a git dependency')
      assert.equal(await readFile(path.join(clone, 'package.json'), 'utf8'), await readFile(path.join(ROOT, 'package.json'), 'utf8'), 'package.json is as it was')
      assert.ok(!existsSync(path.join(clone, '.package.json.packing')), 'the saved copy is gone')
    })

    it('builds dist/ with prepare, as npm does for a git install (a fresh clone)', SETUP_TIMEOUT, async () => {
      const git = await copyCleanClone(path.join(work, 'git-clone'))
      const built = await run('npm', ['run', 'prepare'], git, 180_000)
      assert.equal(built.exitCode, 0, built.stderr)
      for (const file of [...ENTRY_FILES, 'dist/browser/client.js']) assert.ok(existsSync(path.join(git, file)), `prepare did not build ${file}`)
    })
  })

  describe('installed from the tarball into another project', () => {
    it('runs the README\'s Quick start as written, in a "type": "commonjs" project (npm init -y), with the client served from the package', TIMEOUT, async (t) => {
      const manifest = JSON.parse(await readFile(path.join(project, 'package.json'), 'utf8')) as Record<string, unknown>
      await writeFile(path.join(project, 'package.json'), JSON.stringify({ ...manifest, type: 'commonjs' }))
      for (const file of ['server.mjs', 'index.html']) await copyFile(path.join(ROOT, 'examples', 'quickstart', file), path.join(project, file))
      const child = spawnTied(process.execPath, ['server.mjs'], { cwd: project, env: { ...process.env, PORT: '0' } })
      t.after(async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = once(child, 'exit')
        child.kill('SIGKILL')
        await exited
      })
      let output = ''
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
      await until(() => /http:\/\/localhost:\d+/.test(output) || child.exitCode !== null, RUN_TIMEOUT_MS, `the server's address (it printed: ${output})`)
      const origin = /http:\/\/localhost:\d+/.exec(output)?.[0]
      assert.ok(origin !== undefined, `the Quick start printed its address: ${output}`)
      const page = await fetch(origin)
      assert.equal(await page.text(), await readFile(path.join(ROOT, 'examples', 'quickstart', 'index.html'), 'utf8'), 'the page')
      const script = await fetch(`${origin}/events/client.js`)
      assert.equal(script.status, 200, 'the client is served from the installed package')
      assert.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8', 'as JavaScript')
      assert.equal(await script.text(), await readFile(path.join(project, 'node_modules', 'patchwire', 'dist', 'browser', 'client.js'), 'utf8'), 'the installed bundle')
      const stream = await fetch(`${origin}/events?topic=counter`)
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader()
      let text = ''
      while (!/event: snapshot\ndata: \{"counter":\d+\}/.test(text)) {
        const { value, done } = await reader.read()
        assert.ok(!done, `the stream ended before its snapshot: ${text}`)
        text += new TextDecoder().decode(value)
      }
      await reader.cancel()
    })

    it('imports patchwire, patchwire/client, patchwire/redis and patchwire/postgres from an ES module', TIMEOUT, async () => {
      const seen = await consume('consumer.mjs')
      await assertEntries(seen)
    })

    it('requires all four from a CommonJS module (require(esm): Node >= 20.19, as engines says)', TIMEOUT, async () => {
      const seen = await consume('consumer.cjs')
      // Node 20.19 and 22.12 load an ES module from require() without a flag and say so here.
      assert.equal(seen['requireModule'], true, 'process.features.require_module is false: this Node cannot require() ES modules')
      await assertEntries(seen)
    })
  })

  describe('the framework bindings, installed without any framework', () => {
    it('installs no framework: React, Svelte and Vue are optional peer dependencies', async () => {
      const manifest = JSON.parse(await readFile(path.join(project, 'node_modules', 'patchwire', 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>
      assert.deepEqual(Object.keys(manifest['peerDependencies'] ?? {}).sort(), ['react', 'svelte', 'vue'], 'the peers')
      assert.deepEqual(manifest['peerDependenciesMeta'], { react: { optional: true }, svelte: { optional: true }, vue: { optional: true } }, 'every peer is optional')
      const installed = readdirSync(path.join(project, 'node_modules'))
      assert.deepEqual(installed.filter((name) => ['react', 'svelte', 'vue'].includes(name)), [], `npm installed a framework: ${installed.join(', ')}`)
    })

    it('patchwire/svelte, which imports no framework, runs on the server with none installed: a store of undefined', TIMEOUT, async () => {
      const seen = await consume('svelte-on-the-server.mjs')
      assert.deepEqual(seen['seen'], [null], 'undefined (null in JSON) before any snapshot, and nothing subscribed')
      assert.equal(await realpath(seen['resolved'] as string), path.join(await realpath(path.join(project, 'node_modules', 'patchwire')), 'dist/bindings/svelte.js'), 'resolved in the installed package')
    })
  })

  describe('bundled for the browser (esbuild, from the installed package)', () => {
    it('bundles patchwire/client, and the bundle works', TIMEOUT, async () => {
      const bundled = await run(ESBUILD, ['browser-entry.mjs', '--bundle', '--platform=browser', '--format=esm', '--outfile=bundle.mjs', '--log-level=error'], project, RUN_TIMEOUT_MS)
      assert.equal(bundled.exitCode, 0, bundled.stderr)
      const bundle = await readFile(path.join(project, 'bundle.mjs'), 'utf8')
      assert.doesNotMatch(bundle, /node:|require\(/, 'the browser bundle has no Node import or require')
      const seen = await consume('bundle.mjs')
      assert.deepEqual(seen, { subscribe: 'function', applied: { n: 1 } }, 'the bundle subscribes and applies a patch')
    })

    it('fails on browser code that imports Node (the control)', TIMEOUT, async () => {
      const bundled = await run(ESBUILD, ['node-in-the-browser.mjs', '--bundle', '--platform=browser', '--format=esm', '--outfile=node.mjs', '--log-level=error'], project, RUN_TIMEOUT_MS)
      assert.notEqual(bundled.exitCode, 0, 'esbuild fails on browser code that imports node:http')
      assert.match(bundled.stderr, /Could not resolve "node:http"/, `esbuild says node:http cannot be resolved: ${bundled.stderr}`)
    })
  })

  /** Runs a consumer in the project and returns what it printed. */
  async function consume(file: string): Promise<Record<string, unknown>> {
    const result = await run(process.execPath, [file], project, RUN_TIMEOUT_MS)
    assert.equal(result.exitCode, 0, result.stderr)
    // Some Node 22 releases print a one-time ExperimentalWarning for require(esm).
    assert.equal(result.stderr.replace(/^.*ExperimentalWarning.*$\n?|^\(Use `node --trace-warnings.*$\n?/gm, ''), '', `the consumer printed nothing on stderr but a require(esm) warning: ${result.stderr}`)
    return JSON.parse(result.stdout) as Record<string, unknown>
  }

  /** The exports work, and they come from the installed copy, not from this repository. */
  async function assertEntries(seen: Record<string, unknown>): Promise<void> {
    assert.equal(seen['formatPatch'], 'function', 'patchwire exports formatPatch')
    assert.equal(seen['publish'], 'function', 'patchwire exports publish')
    assert.equal(seen['createHandler'], 'function', 'patchwire exports createHandler')
    assert.equal(seen['frame'], 'event: patch\ndata: [["replace","/n",1]]\n\n', 'formatPatch from the installed package frames a patch')
    assert.equal(seen['subscribe'], 'function', 'patchwire/client exports subscribe')
    assert.deepEqual(seen['applied'], { n: 1 }, 'applyPatch from patchwire/client applies a patch')
    assert.deepEqual(seen['serverApplied'], { n: 2 }, 'applyPatch is exported from patchwire too')
    assert.equal(seen['createRedisBroker'], 'function', 'patchwire/redis exports createRedisBroker')
    assert.equal(seen['createPostgresBroker'], 'function', 'patchwire/postgres exports createPostgresBroker')
    assert.equal(seen['postgresSchema'], 'string', 'patchwire/postgres exports its SQL')
    const installed = await realpath(path.join(project, 'node_modules', 'patchwire'))
    assert.ok(installed.startsWith(await realpath(project)), `node_modules/patchwire links out of the project, to ${installed}`)
    const resolved = await Promise.all((seen['resolved'] as string[]).map((file) => realpath(file)))
    assert.deepEqual(resolved, ENTRY_FILES.map((file) => path.join(installed, file)), `every entry resolves in the installed copy: ${JSON.stringify(resolved)}`)
  }
})

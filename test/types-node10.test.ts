/**
 * The package's types under every module resolution an application may use.
 * `node10` (TypeScript's default for `module: commonjs`) ignores package.json
 * `exports`, so it finds `patchwire/client` and `patchwire/redis` only
 * through `typesVersions`; `node16`, `nodenext` and `bundler` go through
 * `exports`. The package is packed and installed from its tarball once,
 * and the same consumer code is compiled under each setting. Each run takes
 * seconds, so the controls are few: one per way the check could pass wrongly.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { copyCleanClone, installTarball, pack, ROOT } from './helpers/package.ts'
import { tsc, type TscResult } from './helpers/tsc.ts'

const SETUP_TIMEOUT = { timeout: 300_000 }

/** The three entry points and a few of their types, as an application uses them. */
const CONSUMER = `import { createHandler, formatPatch, PatchwireError, type Broker, type HandlerOptions, type PatchOp } from 'patchwire'
import { applyPatch, subscribe, type SubscribeOptions } from 'patchwire/client'
import { createRedisBroker, type RedisBrokerOptions } from 'patchwire/redis'

const ops: PatchOp[] = [['replace', '/counter', 1], ['remove', '/draft']]
const frame: string = formatPatch(ops)
const options: HandlerOptions = { path: '/events', heartbeatMs: 15_000 }
createHandler(options)
const state: { counter: number } = applyPatch({ counter: 0 }, ops)
const subscribeOptions: SubscribeOptions = { path: '/events', onError: (error) => error instanceof PatchwireError }
subscribe('room', (received) => applyPatch(state, received), subscribeOptions)
declare const redis: RedisBrokerOptions
const broker: Broker = createRedisBroker(redis)
createHandler({ broker })
export { frame }
`

/** The control: a subpath the package does not export. */
const MISSING = `import { subscribe } from 'patchwire/nope'
export { subscribe }
`

/**
 * What an application's tsconfig would have (`tsc --init` sets skipLibCheck;
 * checking @types/node and the DOM library would triple each run); the
 * repository's stricter flags are not the point here.
 */
const COMMON = ['--strict', '--skipLibCheck', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types')]

const NODE10 = ['--module', 'commonjs', '--moduleResolution', 'node10']

describe('types under each moduleResolution, from the installed tarball', () => {
  let work = ''
  let node10: TscResult
  let node16: TscResult
  let bundler: TscResult
  let node10Missing: TscResult
  let withoutTypesVersions: TscResult

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'patchwire-types-node10-'))
    const clone = await copyCleanClone(path.join(work, 'clone'))
    const { tarball } = await pack(clone, path.join(work, 'out'))
    const app = path.join(work, 'app')
    await installTarball(tarball, app)
    // Under node16 the consumer must be an ES module: node16 types no require(esm)
    // (nodenext does, for a .cts file: test/types.test.ts compiles one).
    for (const file of ['consumer.ts', 'consumer.mts']) await writeFile(path.join(app, file), CONSUMER)
    await writeFile(path.join(app, 'missing.ts'), MISSING)
    // The same install without typesVersions: what node10 saw before it was added.
    const bare = path.join(work, 'bare')
    await cp(app, bare, { recursive: true })
    const manifest = path.join(bare, 'node_modules', 'patchwire', 'package.json')
    const { typesVersions: _typesVersions, ...rest } = JSON.parse(await readFile(manifest, 'utf8')) as Record<string, unknown>
    await writeFile(manifest, JSON.stringify(rest))
    // Two at a time: each run loads @types/node and the DOM library for seconds.
    ;[node10, node16] = await Promise.all([
      tsc([...COMMON, ...NODE10, 'consumer.ts'], app),
      tsc([...COMMON, '--module', 'node16', '--moduleResolution', 'node16', 'consumer.mts'], app),
    ])
    ;[bundler, node10Missing] = await Promise.all([
      tsc([...COMMON, '--module', 'esnext', '--moduleResolution', 'bundler', 'consumer.ts'], app),
      tsc([...COMMON, ...NODE10, 'missing.ts'], app),
    ])
    withoutTypesVersions = await tsc([...COMMON, ...NODE10, 'consumer.ts'], bare)
  }, SETUP_TIMEOUT)

  after(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true })
  })

  it('node10 (module commonjs): all three entries and their types resolve', () => {
    assert.deepEqual(node10.diagnostics, [], node10.output)
    assert.equal(node10.exitCode, 0, node10.output)
  })

  it('node16 (module node16, an ES module file): all three resolve through exports', () => {
    assert.deepEqual(node16.diagnostics, [], node16.output)
    assert.equal(node16.exitCode, 0, node16.output)
  })

  it('bundler (module esnext): all three resolve through exports', () => {
    assert.deepEqual(bundler.diagnostics, [], bundler.output)
    assert.equal(bundler.exitCode, 0, bundler.output)
  })

  describe('the controls: the same check fails where it should', () => {
    it('under node10, a subpath the package does not have is still not found: typesVersions maps two names, not a wildcard', () => {
      assert.notEqual(node10Missing.exitCode, 0, node10Missing.output)
      assert.deepEqual(node10Missing.diagnostics.map((d) => `${d.file} ${d.code}`), ['missing.ts TS2307'], node10Missing.output)
    })

    it('without typesVersions, node10 cannot find patchwire/client and patchwire/redis (the bug it fixes)', () => {
      assert.notEqual(withoutTypesVersions.exitCode, 0)
      const notFound = withoutTypesVersions.diagnostics.filter((d) => d.code === 'TS2307').map((d) => /'([^']+)'/.exec(d.message)?.[1])
      assert.deepEqual(notFound, ['patchwire/client', 'patchwire/redis'], withoutTypesVersions.output)
    })
  })
})

/**
 * The package's types under every module resolution an application may use,
 * checked as a user with `skipLibCheck: false` checks them: every
 * declaration file the package ships is compiled, not only the names the
 * consumer uses. `node10` (TypeScript's default for `module: commonjs`)
 * ignores package.json `exports`, so it finds the subpaths only through
 * `typesVersions`; `node16`, `nodenext` and `bundler` go through `exports`.
 *
 * The package is packed and installed from its tarball once. Besides a
 * consumer that uses the main names, a file imports every entry of the
 * installed package.json `exports`, read at run time: an entry added there
 * (`patchwire/postgres`, `patchwire/react`) is checked without editing this
 * test, and one that `typesVersions` misses fails under node10. Each run takes
 * seconds, so the controls are few: one per way the check could pass wrongly.
 */
import assert from 'node:assert/strict'
import { appendFile, cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { copyCleanClone, installTarball, pack, ROOT } from './helpers/package.ts'
import { tsc, type TscResult } from './helpers/tsc.ts'

const SETUP_TIMEOUT = { timeout: 600_000 }

/** The first four entry points and a few of their types, as an application uses them. */
const CONSUMER = `import { createHandler, formatPatch, PatchwireError, type Broker, type HandlerOptions, type PatchOp } from 'patchwire'
import { applyPatch, subscribe, type SubscribeOptions } from 'patchwire/client'
import { createRedisBroker, type RedisBrokerOptions } from 'patchwire/redis'
import { createPostgresBroker, postgresSchema, type PostgresPool } from 'patchwire/postgres'

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
declare const pool: PostgresPool
const pgBroker: Broker = createPostgresBroker({ pool, history: 100 })
createHandler({ broker: pgBroker })
const schema: string = postgresSchema
export { frame, schema }
`

/**
 * The framework bindings as an application uses them, their state typed by
 * the generic. The application has the framework it binds installed (Vue's
 * types are in the declaration of `patchwire/vue`; the others import none).
 */
const BINDINGS = `import { useLive, type LiveOptions } from 'patchwire/react'
import { live, type LiveStore } from 'patchwire/svelte'
import { useLive as useLiveVue } from 'patchwire/vue'

interface Room { count: number }
const options: LiveOptions<Room> = { path: '/events', initial: { state: { count: 1 }, position: '1' }, onError: (error) => error.code }
const fromReact: number | undefined = useLive<Room>('room', options)?.count
const store: LiveStore<Room> = live<Room>('room', options)
const fromVue: number | undefined = useLiveVue<Room>('room', options).value?.count
// @ts-expect-error: the state is State | undefined, not any
const untyped: string = useLive<Room>('room')
export { fromReact, store, fromVue, untyped }
`

/** The frameworks an application of the bindings has installed, linked from this repository's devDependencies. */
const FRAMEWORKS = ['vue']

/** The control: a subpath the package does not export. */
const MISSING = `import { subscribe } from 'patchwire/nope'
export { subscribe }
`

/**
 * An application's settings, with the library check on: `tsc --init` turns
 * `skipLibCheck` on, which is how a broken declaration file went unnoticed.
 */
const STRICT = ['--strict', '--skipLibCheck', 'false', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types')]

/**
 * For the controls about resolution only: the library check adds seconds per
 * run (@types/node, the DOM library) and is not what they test.
 */
const SKIP_LIB_CHECK = ['--strict', '--skipLibCheck', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types')]

const NODE10 = ['--module', 'commonjs', '--moduleResolution', 'node10']

/**
 * Each resolution, and the kind of file that compiles under it. node16 types
 * no `require(esm)`, so its consumer is an ES module; nodenext (TypeScript
 * 5.8+) does, so its consumer is a CommonJS one.
 */
const RESOLUTIONS = [
  { name: 'node10', args: NODE10, ext: '.ts', how: 'module commonjs; subpaths through typesVersions' },
  { name: 'node16', args: ['--module', 'node16', '--moduleResolution', 'node16'], ext: '.mts', how: 'an ES module file, through exports' },
  { name: 'nodenext', args: ['--module', 'nodenext', '--moduleResolution', 'nodenext'], ext: '.cts', how: 'a CommonJS file, require(esm), through exports' },
  { name: 'bundler', args: ['--module', 'esnext', '--moduleResolution', 'bundler'], ext: '.ts', how: 'module esnext, through exports' },
] as const

/** One entry of package.json `exports`, as a consumer imports it. */
interface Entry {
  /** `patchwire`, `patchwire/client`, … */
  readonly specifier: string
  /** Its `types` condition, relative to the package (`./dist/index.d.ts`); `undefined` when it has none. */
  readonly types: string | undefined
}

/** What this test reads of a package.json. */
interface Manifest {
  readonly name: string
  readonly exports: Record<string, string | { readonly types?: string }>
}

/**
 * Every entry of a package.json `exports` but the JSON files
 * (`./package.json`), in the order they are listed.
 * @param manifest - the installed package.json, parsed
 */
function entriesOf(manifest: Manifest): Entry[] {
  return Object.entries(manifest.exports)
    .filter(([, target]) => !(typeof target === 'string' && target.endsWith('.json')))
    .map(([key, target]) => ({
      specifier: key === '.' ? manifest.name : `${manifest.name}/${key.slice('./'.length)}`,
      types: typeof target === 'string' ? undefined : target.types,
    }))
}

/** A module that imports each entry whole, so that all its declarations are in the program. */
function importEvery(entries: readonly Entry[]): string {
  const names = entries.map((_, i) => `entry${i}`)
  return `${entries.map(({ specifier }, i) => `import * as ${names[i]} from '${specifier}'\n`).join('')}export { ${names.join(', ')} }\n`
}

describe('types under each moduleResolution, from the installed tarball, without skipLibCheck', () => {
  let work = ''
  let entries: Entry[] = []
  const results = new Map<string, TscResult>()
  let node10Missing: TscResult
  let withoutTypesVersions: TscResult
  let broken: TscResult

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'patchwire-types-node10-'))
    const clone = await copyCleanClone(path.join(work, 'clone'))
    const { tarball } = await pack(clone, path.join(work, 'out'))
    const app = path.join(work, 'app')
    await installTarball(tarball, app)
    const installed = path.join('node_modules', 'patchwire')
    entries = entriesOf(JSON.parse(await readFile(path.join(app, installed, 'package.json'), 'utf8')) as Manifest)
    for (const { ext } of RESOLUTIONS) {
      await writeFile(path.join(app, `consumer${ext}`), CONSUMER)
      await writeFile(path.join(app, `entries${ext}`), importEvery(entries))
      await writeFile(path.join(app, `bindings${ext}`), BINDINGS)
    }
    for (const name of FRAMEWORKS) await symlink(path.join(ROOT, 'node_modules', name), path.join(app, 'node_modules', name), 'dir')
    await writeFile(path.join(app, 'missing.ts'), MISSING)
    // The same install without typesVersions: what node10 saw before it was added.
    const bare = path.join(work, 'bare')
    await cp(app, bare, { recursive: true })
    const bareManifest = path.join(bare, installed, 'package.json')
    const { typesVersions: _typesVersions, ...rest } = JSON.parse(await readFile(bareManifest, 'utf8')) as Record<string, unknown>
    await writeFile(bareManifest, JSON.stringify(rest))
    // The same install with a declaration that imports a name its module does
    // not export (what stripInternal did), in the types file of every entry.
    const damaged = path.join(work, 'damaged')
    await cp(app, damaged, { recursive: true })
    await writeFile(path.join(damaged, installed, 'control.d.ts'), 'export {};\n')
    for (const { types: file } of entries) {
      // An entry without types fails the first test below.
      if (file === undefined) continue
      const control = path.posix.relative(path.posix.dirname(file), 'control.js')
      await appendFile(path.join(damaged, installed, file), `\nimport type { NotExported } from '${control.startsWith('.') ? control : `./${control}`}';\n`)
    }
    // Two at a time: each run loads @types/node and the DOM library for seconds.
    for (let i = 0; i < RESOLUTIONS.length; i += 2) {
      await Promise.all(RESOLUTIONS.slice(i, i + 2).map(async ({ name, args, ext }) => {
        results.set(name, await tsc([...STRICT, ...args, `consumer${ext}`, `entries${ext}`, `bindings${ext}`], app))
      }))
    }
    ;[node10Missing, withoutTypesVersions] = await Promise.all([
      tsc([...SKIP_LIB_CHECK, ...NODE10, 'missing.ts'], app),
      tsc([...SKIP_LIB_CHECK, ...NODE10, 'consumer.ts'], bare),
    ])
    broken = await tsc([...STRICT, '--module', 'esnext', '--moduleResolution', 'bundler', 'entries.ts'], damaged)
  }, SETUP_TIMEOUT)

  after(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true })
  })

  it('finds every entry of package.json exports, the first four included, each with a types file', () => {
    assert.deepEqual(entries.slice(0, 4).map((entry) => entry.specifier), ['patchwire', 'patchwire/client', 'patchwire/redis', 'patchwire/postgres'], 'the entries read from the installed package.json exports')
    const untyped = entries.filter((entry) => !entry.types?.endsWith('.d.ts')).map((entry) => entry.specifier)
    assert.deepEqual(untyped, [], 'every entry of exports needs a "types" condition naming its .d.ts (and, for node10, a typesVersions line)')
  })

  for (const { name, how } of RESOLUTIONS) {
    it(`${name} (${how}): every entry resolves, and every declaration it reaches compiles`, () => {
      const result = results.get(name) as TscResult
      assert.deepEqual(result.diagnostics, [], result.output)
      assert.equal(result.exitCode, 0, result.output)
    })
  }

  describe('the controls: the same check fails where it should', () => {
    it('a declaration that imports a name its module does not export fails the check, in every entry', () => {
      assert.notEqual(broken.exitCode, 0, broken.output)
      const damaged = broken.diagnostics.map((d) => `${d.code} ${d.file.slice(d.file.indexOf('node_modules/patchwire/') + 'node_modules/patchwire/'.length)}`)
      assert.deepEqual(damaged.sort(), entries.map((entry) => `TS2305 ${entry.types?.slice('./'.length)}`).sort(), broken.output)
    })

    it('under node10, a subpath the package does not have is still not found: typesVersions maps names, not a wildcard', () => {
      assert.notEqual(node10Missing.exitCode, 0, node10Missing.output)
      assert.deepEqual(node10Missing.diagnostics.map((d) => `${d.file} ${d.code}`), ['missing.ts TS2307'], node10Missing.output)
    })

    it('without typesVersions, node10 cannot find patchwire/client, patchwire/redis and patchwire/postgres (the bug it fixes)', () => {
      assert.notEqual(withoutTypesVersions.exitCode, 0, withoutTypesVersions.output)
      const notFound = withoutTypesVersions.diagnostics.filter((d) => d.code === 'TS2307').map((d) => /'([^']+)'/.exec(d.message)?.[1])
      assert.deepEqual(notFound, ['patchwire/client', 'patchwire/redis', 'patchwire/postgres'], withoutTypesVersions.output)
    })
  })
})

/**
 * Type-level tests: `tsc` compiles files of positive cases and
 * `@ts-expect-error` cases, and any error fails the test. An unused
 * `@ts-expect-error` is itself an error (TS2578), so a type that became too
 * loose fails too; the control case below shows that this harness sees both.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const TIMEOUT = { timeout: 60_000 }

interface Diagnostic {
  file: string
  line: number
  code: string
  message: string
}

interface TscResult {
  exitCode: number | null
  diagnostics: Diagnostic[]
  output: string
}

/** Runs `tsc --noEmit` with `args` and collects its errors, one per diagnostic. */
async function tsc(args: string[]): Promise<TscResult> {
  // Without NODE_V8_COVERAGE: under c8, coverage of the compiler itself would double its run time.
  const { NODE_V8_COVERAGE: _coverage, ...env } = process.env
  const child = spawn(process.execPath, [TSC, '--noEmit', '--pretty', 'false', ...args], { cwd: ROOT, env })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  const diagnostics: Diagnostic[] = []
  for (const match of output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)) {
    const [, file = '', line = '', code = '', message = ''] = match
    diagnostics.push({ file: path.resolve(ROOT, file), line: Number(line), code, message })
  }
  return { exitCode, diagnostics, output }
}

/**
 * A project outside the repository that uses the built package by name, as
 * an application would: `node_modules/patchwire` links to the repository, so
 * the types come from `dist/*.d.ts` through `package.json` `exports`.
 */
const CONSUMER_ESM = `import http from 'node:http'
import { createHandler, publish, type Broker, type Handler, type HandlerOptions, type HandlerStats, type PatchOp } from 'patchwire'
import { applyPatch, subscribe, type SubscribeOptions } from 'patchwire/client'
import { createRedisBroker, type RedisBrokerOptions } from 'patchwire/redis'

const options: HandlerOptions = { path: '/events', heartbeatMs: 15_000 }
const events: Handler = createHandler(options)
http.createServer(events)
const stats: HandlerStats = events.stats()
stats.connections satisfies number
publish('room', [['replace', '/counter', 1]])
const op = (value: PatchOp): PatchOp => value
op(['limit', '/feed', 50])
applyPatch({ counter: 0 }, [['replace', '/counter', 1]]).counter satisfies number
const subscribeOptions: SubscribeOptions = { path: '/events' }
subscribe('room', (ops) => applyPatch({}, ops), subscribeOptions)
declare const redis: RedisBrokerOptions
const broker: Broker = createRedisBroker(redis)
createHandler({ broker })

// @ts-expect-error remove takes no value
op(['remove', '/a', 1])
// @ts-expect-error unknown option
createHandler({ heartbeat: 1 })
`

/** A CommonJS TypeScript module: TypeScript 5.8+ types \`require(esm)\` under module nodenext. */
const CONSUMER_CJS = `import { createHandler, type PatchOp } from 'patchwire'

const op = (value: PatchOp): PatchOp => value
op(['move', '/to', '/from'])
createHandler({ path: '/events' })
// @ts-expect-error move takes a \`from\` path
op(['move', '/to', 1])
`

/**
 * The \`\`\`ts blocks of docs/scaling-out.md (the Redis setup with
 * node-redis, then with ioredis; the PostgreSQL quick start and migration,
 * with pg), so that they compile as the guide shows them.
 */
async function scalingOutGuide(): Promise<string[]> {
  const guide = await readFile(path.join(ROOT, 'docs', 'scaling-out.md'), 'utf8')
  return [...guide.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '')
}

/** The control: one directive on a correct line, one wrong line without a directive. */
const CONTROL = `import type { PatchOp } from 'patchwire'

const op = (value: PatchOp): PatchOp => value
// @ts-expect-error (on a correct op, so the directive is unused)
op(['replace', '/counter', 1])
op(['remove', '/counter', 1])
`

/** For the client's check: Node's globals are unknown with the DOM library and no Node types. */
const NODE_IN_THE_BROWSER = `export const bytes = Buffer.byteLength('x')
`

describe('types', () => {
  let dir = ''
  let own: TscResult
  let consumer: TscResult
  let client: TscResult
  let clientControl: TscResult
  let guideBlocks: string[] = []

  // Both compilations run at once: each spends seconds loading @types/node.
  before(async () => {
    assert.ok(existsSync(path.join(ROOT, 'dist', 'index.d.ts')), 'dist/index.d.ts is missing: run `npm run build` first (npm test does)')
    dir = await mkdtemp(path.join(os.tmpdir(), 'patchwire-types-'))
    await mkdir(path.join(dir, 'node_modules'))
    await symlink(ROOT, path.join(dir, 'node_modules', 'patchwire'), 'dir')
    // The client libraries the guide imports, as the application would have them.
    await mkdir(path.join(dir, 'node_modules', '@types'))
    await symlink(path.join(ROOT, 'node_modules', '@types', 'pg'), path.join(dir, 'node_modules', '@types', 'pg'), 'dir')
    for (const name of ['redis', 'ioredis', 'pg']) {
      await symlink(path.join(ROOT, 'node_modules', name), path.join(dir, 'node_modules', name), 'dir')
    }
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
    await writeFile(path.join(dir, 'consumer.ts'), CONSUMER_ESM)
    await writeFile(path.join(dir, 'consumer.cts'), CONSUMER_CJS)
    await writeFile(path.join(dir, 'control.ts'), CONTROL)
    guideBlocks = await scalingOutGuide()
    const guideFiles = guideBlocks.map((_, i) => `guide-scaling-out-${i + 1}.ts`)
    for (const [i, file] of guideFiles.entries()) await writeFile(path.join(dir, file), guideBlocks[i] ?? '')
    // An application's own, ordinary settings: not this repository's strict ones.
    await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        lib: ['es2023', 'dom'],
        module: 'nodenext',
        strict: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['consumer.ts', 'consumer.cts', 'control.ts', ...guideFiles],
    }))
    await mkdir(path.join(dir, 'browser'))
    await writeFile(path.join(dir, 'browser', 'node-in-the-browser.ts'), NODE_IN_THE_BROWSER)
    // tsconfig.client.json's own options, on a file that uses Node.
    await writeFile(path.join(dir, 'browser', 'tsconfig.json'), JSON.stringify({ extends: path.join(ROOT, 'tsconfig.client.json'), include: [], files: ['node-in-the-browser.ts'] }))
    ;[own, consumer, client, clientControl] = await Promise.all([
      tsc(['-p', path.join('test', 'types')]),
      tsc(['-p', dir]),
      tsc(['-p', 'tsconfig.client.json']),
      tsc(['-p', path.join(dir, 'browser')]),
    ])
  }, TIMEOUT)

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('compiles test/types: every positive case, and an error on every @ts-expect-error line', () => {
    assert.deepEqual(own.diagnostics, [], own.output)
    assert.equal(own.exitCode, 0, own.output)
  })

  it('compiles patchwire/client with the DOM library and no Node types: it uses nothing of Node', () => {
    assert.deepEqual(client.diagnostics, [], client.output)
    assert.equal(client.exitCode, 0, client.output)
    // The control: with those options a Node global does not compile.
    assert.deepEqual(clientControl.diagnostics.map((d) => d.code), ['TS2591'], clientControl.output)
  })

  describe('the built package, used by name from another project', () => {
    it('types an ES module and a CommonJS module that import patchwire, patchwire/client and patchwire/redis', () => {
      const errors = consumer.diagnostics.filter((d) => d.file.endsWith('consumer.ts') || d.file.endsWith('consumer.cts'))
      assert.deepEqual(errors, [], consumer.output)
    })

    it('types the code of docs/scaling-out.md, with node-redis, with ioredis and with pg', () => {
      assert.deepEqual(guideBlocks.map((code) => /from '(ioredis|redis|pg)'/.exec(code)?.[1]), ['redis', 'ioredis', 'pg', 'pg'], 'docs/scaling-out.md: one ```ts block per Redis library, and the PostgreSQL quick start and migration')
      const errors = consumer.diagnostics.filter((d) => path.basename(d.file).startsWith('guide-'))
      assert.deepEqual(errors, [], consumer.output)
    })

    it('reports an unused @ts-expect-error and a wrong tuple without one (the control)', () => {
      assert.notEqual(consumer.exitCode, 0, `the control fails to compile: ${consumer.output}`)
      const control = consumer.diagnostics
        .filter((d) => d.file.endsWith('control.ts'))
        .map((d) => `${d.line} ${d.code}`)
      assert.deepEqual(control, ['4 TS2578', '6 TS2345'], consumer.output)
    })
  })
})

/**
 * How a user types an ops array that is built in a variable. Inline
 * literals are contextually typed as tuples, but `const ops = [[…]]` widens
 * to `(string | number)[][]`, and the error then names whichever tuple of
 * the `PatchOp` union TypeScript tried last. Each way out is compiled as its
 * own small file of an application that uses the built package by name; the
 * table says which compile, which is the README's one-line fix
 * (`const ops: PatchOp[]`: the only one that also fits `push`), and where
 * each reports a wrong op.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ROOT } from './helpers/package.ts'
import { tsc, type TscResult } from './helpers/tsc.ts'

const SETUP_TIMEOUT = { timeout: 120_000 }

const HEADER = `import { publish, type PatchOp } from 'patchwire'
declare const state: { counter: number; draft: boolean }
declare const items: { id: number; title: string }[]
`
/** Lines of HEADER: a case's line n is line HEADER_LINES + n of its file. */
const HEADER_LINES = 3

interface Case {
  readonly name: string
  readonly code: string
  /** `<line of code> <TS code>` of each error, [] when it compiles. */
  readonly errors: readonly string[]
}

const CASES: readonly Case[] = [
  {
    name: 'inferred',
    code: `const ops = [['replace', '/counter', state.counter], ['remove', '/draft']]
publish('room', ops)`,
    errors: ['2 TS2345'],
  },
  {
    name: 'annotated',
    code: `const ops: PatchOp[] = [['replace', '/counter', state.counter], ['remove', '/draft']]
publish('room', ops)`,
    errors: [],
  },
  {
    name: 'satisfies',
    code: `const ops = [['replace', '/counter', state.counter], ['remove', '/draft']] satisfies PatchOp[]
publish('room', ops)`,
    errors: [],
  },
  {
    name: 'as-const',
    code: `const ops = [['replace', '/counter', state.counter], ['remove', '/draft']] as const
publish('room', ops)`,
    errors: [],
  },
  {
    name: 'annotated-push',
    code: `const ops: PatchOp[] = [['replace', '/counter', state.counter]]
if (state.draft) ops.push(['remove', '/draft'])
publish('room', ops)`,
    errors: [],
  },
  {
    // The array's type is the first op's tuple: a different op does not fit.
    name: 'satisfies-push',
    code: `const ops = [['replace', '/counter', state.counter]] satisfies PatchOp[]
if (state.draft) ops.push(['remove', '/draft'])
publish('room', ops)`,
    errors: ['2 TS2322'],
  },
  {
    name: 'as-const-push',
    code: `const ops = [['replace', '/counter', state.counter]] as const
if (state.draft) ops.push(['remove', '/draft'])
publish('room', ops)`,
    errors: ['2 TS2339'],
  },
  {
    name: 'map-inline',
    code: `publish('room', items.map((item) => ['upsert', \`/items/$$\${item.id}\`, item]))`,
    errors: [],
  },
  {
    name: 'map-inferred',
    code: `const ops = items.map((item) => ['upsert', \`/items/$$\${item.id}\`, item])
publish('room', ops)`,
    errors: ['2 TS2345'],
  },
  {
    name: 'map-annotated',
    code: `const ops: PatchOp[] = items.map((item) => ['upsert', \`/items/$$\${item.id}\`, item])
publish('room', ops)`,
    errors: [],
  },
  {
    name: 'function-inferred',
    code: `function counterOps() { return [['replace', '/counter', state.counter]] }
publish('room', counterOps())`,
    errors: ['2 TS2345'],
  },
  {
    name: 'function-annotated',
    code: `function counterOps(): PatchOp[] { return [['replace', '/counter', state.counter]] }
publish('room', counterOps())`,
    errors: [],
  },
  // A wrong op (remove takes no value): the annotation reports it on its own line.
  {
    name: 'annotated-wrong',
    code: `const ops: PatchOp[] = [
  ['replace', '/counter', state.counter],
  ['remove', '/draft', true],
]
publish('room', ops)`,
    errors: ['3 TS2322'],
  },
  {
    name: 'satisfies-wrong',
    code: `const ops = [
  ['replace', '/counter', state.counter],
  ['remove', '/draft', true],
] satisfies PatchOp[]
publish('room', ops)`,
    errors: ['3 TS2322', '5 TS2345'],
  },
  {
    name: 'as-const-wrong',
    code: `const ops = [
  ['replace', '/counter', state.counter],
  ['remove', '/draft', true],
] as const
publish('room', ops)`,
    errors: ['5 TS2345'],
  },
]

describe('typing an ops array built in a variable', () => {
  let dir = ''
  let result: TscResult

  before(async () => {
    assert.ok(existsSync(path.join(ROOT, 'dist', 'index.d.ts')), 'dist/index.d.ts is missing: run `npm run build` first (npm test does)')
    dir = await mkdtemp(path.join(os.tmpdir(), 'patchwire-types-ops-'))
    await mkdir(path.join(dir, 'node_modules'))
    await symlink(ROOT, path.join(dir, 'node_modules', 'patchwire'), 'dir')
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
    for (const { name, code } of CASES) await writeFile(path.join(dir, `${name}.ts`), `${HEADER}${code}\n`)
    // One program for every case: each file is a module of its own, and one run spares a second of start-up per case.
    result = await tsc([
      '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'nodenext',
      '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'),
      ...CASES.map(({ name }) => `${name}.ts`),
    ], dir)
  }, SETUP_TIMEOUT)

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  for (const { name, errors } of CASES) {
    it(errors.length === 0 ? `${name}: compiles` : `${name}: fails, ${errors.map(where).join(', ')}`, () => {
      const seen = result.diagnostics
        .filter((d) => d.file === `${name}.ts`)
        .map((d) => `${d.line - HEADER_LINES} ${d.code}`)
      assert.deepEqual(seen, errors, result.output)
    })
  }

  it('reports no error outside the cases (every diagnostic is in one of their files)', () => {
    const names = new Set(CASES.map(({ name }) => `${name}.ts`))
    assert.deepEqual(result.diagnostics.filter((d) => !names.has(d.file)), [], result.output)
    assert.notEqual(result.exitCode, 0, 'some cases must fail to compile, or the harness sees nothing')
  })
})

/** `'2 TS2345'` → `'TS2345 on line 2'`, for test names. */
function where(error: string): string {
  const [line, code] = error.split(' ')
  return `${code} on line ${line}`
}

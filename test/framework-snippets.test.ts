/**
 * Every framework snippet of the README and the guides compiles with its
 * framework's own checker, as a user's project would check it: each
 * ```tsx block with tsc (`"jsx": "react-jsx"`, strict), each ```svelte block
 * with svelte-check (Svelte 5, `<script lang="ts">`). `patchwire/*` resolves
 * to this repository's sources. A block whose first line names its file
 * (`// app/orders/page.tsx`) is written there, so that the blocks of one
 * multi-file example import each other; what such an example leaves to the
 * reader (its `Orders` type, `loadOrders`) is declared in {@link PLACEHOLDERS}.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ROOT, run } from './helpers/package.ts'
import { tsc } from './helpers/tsc.ts'

const TIMEOUT = { timeout: 120_000 }
const SVELTE_CHECK = path.join(ROOT, 'node_modules', 'svelte-check', 'bin', 'svelte-check')

/** The pages: the README and every guide. */
const PAGES = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

interface Snippet {
  readonly page: string
  readonly lang: 'tsx' | 'svelte'
  readonly code: string
  /** The file it is checked as. */
  readonly file: string
}

function snippets(): Snippet[] {
  const found: Snippet[] = []
  for (const page of PAGES) {
    const text = readFileSync(path.join(ROOT, page), 'utf8')
    for (const match of text.matchAll(/^```(tsx|svelte)\n([\s\S]*?)^```$/gm)) {
      const lang = match[1] as Snippet['lang']
      const named = lang === 'tsx' ? /^\/\/ ([\w./-]+\.tsx)\b/.exec(match[2] ?? '')?.[1] : undefined
      const file = named ?? `${page.replace(/[/.]/g, '-')}-${found.length}.${lang}`
      found.push({ page, lang, code: match[2] ?? '', file })
    }
  }
  return found
}

/** What the guides' multi-file examples leave to the reader, declared as the reader would have it. */
const PLACEHOLDERS: Record<string, string> = {
  'app/orders/orders.ts': 'export interface Orders {\n  count: number\n  latest: string\n}\n',
  'placeholders.d.ts': 'declare function loadOrders(): Promise<import(\'./app/orders/orders.ts\').Orders>\n',
}

/** A user's tsconfig: strict, the DOM (and Node, for server components), bundler resolution, and patchwire from the sources. */
function tsconfig(include: readonly string[]): string {
  const src = (file: string): string => path.join(ROOT, 'src', file)
  return JSON.stringify({
    compilerOptions: {
      target: 'es2022', lib: ['es2022', 'dom'], module: 'esnext', moduleResolution: 'bundler', jsx: 'react-jsx',
      strict: true, noEmit: true, skipLibCheck: true, types: ['node'], allowImportingTsExtensions: true, verbatimModuleSyntax: true,
      paths: {
        patchwire: [src('index.ts')],
        'patchwire/client': [src('client/index.ts')],
        'patchwire/*': [src('bindings/*.ts'), src('adapters/*/index.ts')],
      },
    },
    include,
  })
}

describe('framework snippets in the README and the guides', TIMEOUT, () => {
  const all = snippets()
  let work = ''

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'patchwire-snippets-'))
    // The checkers find react, svelte and their types where a project has them.
    await symlink(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'), 'dir')
  })

  after(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true })
  })

  it('finds a React (tsx) and a Svelte snippet', () => {
    assert.ok(all.some((s) => s.lang === 'tsx'), `a tsx block in ${PAGES.join(', ')}`)
    assert.ok(all.some((s) => s.lang === 'svelte'), `a svelte block in ${PAGES.join(', ')}`)
  })

  it('compiles every tsx snippet with tsc (strict, react-jsx)', async () => {
    const tsx = all.filter((s) => s.lang === 'tsx')
    const dir = path.join(work, 'tsx')
    const files = { ...PLACEHOLDERS, ...Object.fromEntries(tsx.map((s) => [s.file, s.code])) }
    for (const [file, code] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
      await writeFile(path.join(dir, file), code)
    }
    await writeFile(path.join(work, 'tsconfig.tsx.json'), tsconfig(Object.keys(files).map((file) => `tsx/${file}`)))
    const result = await tsc(['-p', 'tsconfig.tsx.json'], work)
    assert.deepEqual(result.diagnostics.map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`), [], result.output)
    assert.equal(result.exitCode, 0, result.output)
  })

  it('checks every svelte snippet with svelte-check (Svelte 5)', async () => {
    const svelte = all.filter((s) => s.lang === 'svelte')
    const dir = path.join(work, 'svelte')
    await mkdir(dir)
    await writeFile(path.join(dir, 'tsconfig.json'), tsconfig(['./*.svelte']))
    for (const s of svelte) await writeFile(path.join(dir, s.file), s.code)
    const result = await run(process.execPath, [SVELTE_CHECK, '--workspace', dir, '--tsconfig', path.join(dir, 'tsconfig.json'), '--fail-on-warnings', '--output', 'machine'], dir, 90_000)
    const problems = result.stdout.split('\n').filter((line) => / (ERROR|WARNING) /.test(line))
    assert.deepEqual(problems, [], `${result.stdout}\n${result.stderr}`)
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout, /COMPLETED \d+ FILES 0 ERRORS 0 WARNINGS/, `svelte-check ran: ${result.stdout}`)
  })

  it('fails on a tsx snippet that does not type-check (control)', async () => {
    await writeFile(path.join(work, 'tsconfig.control.json'), tsconfig(['control.tsx']))
    await writeFile(path.join(work, 'control.tsx'), `import { subscribe } from 'patchwire/client'\nsubscribe<{ n: number }>('t', () => {}, { onSnapshot: (s) => s.n.toUpperCase() })\nexport const el = <p>{1}</p>\n`)
    const result = await tsc(['-p', 'tsconfig.control.json'], work)
    assert.deepEqual(result.diagnostics.map((d) => d.code), ['TS2339'], `the state is typed by subscribe<T>: ${result.output}`)
  })

  it('fails on the old Svelte snippet, whose `state` clashes with the $state rune (control)', async () => {
    const dir = path.join(work, 'control')
    await mkdir(dir)
    await writeFile(path.join(dir, 'tsconfig.json'), tsconfig(['./*.svelte']))
    await writeFile(path.join(dir, 'Old.svelte'), OLD_SVELTE)
    const result = await run(process.execPath, [SVELTE_CHECK, '--workspace', dir, '--tsconfig', path.join(dir, 'tsconfig.json'), '--output', 'machine'], dir, 90_000)
    assert.notEqual(result.exitCode, 0, `svelte-check passed the old snippet: ${result.stdout}`)
    assert.match(result.stdout, / ERROR .*Old\.svelte.*\$state/, `svelte-check reports the clash with $state: ${result.stdout}`)
  })
})

/** The Svelte snippet as it was, with a second rune as any real component soon has. */
const OLD_SVELTE = `<script lang="ts">
  import { applyPatch, subscribe } from 'patchwire/client'
  let state = $state()
  let count = $state(0)
  $effect(() => subscribe('dashboard', (ops) => { applyPatch(state, ops); count++ }, {
    path: '/events',
    onSnapshot: (snapshot) => { state = snapshot },
  }))
</script>

{#if state}<p>{state.counter} orders</p>{/if}
`

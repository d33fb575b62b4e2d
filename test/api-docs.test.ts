/**
 * docs/API.md cannot drift from the code: every export of each entry point
 * (values from the module namespace at run time, types from the source's
 * export lists and declarations) has an entry, every entry names an export,
 * every entry shows TypeScript code, every field of an exported interface is
 * mentioned in its entry, and every in-page link lands on a heading. And
 * the README cannot drift from the files it shows: its recipes are copies
 * of the example files the tests run, and its links work in the installed
 * package (shipped files, absolute URLs, or its own headings).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DOC = readFileSync(path.join(ROOT, 'docs', 'API.md'), 'utf8')

/** Each public entry point, as `package.json` `exports` maps it, and its source. */
const ENTRIES = [
  { module: 'patchwire', source: 'src/index.ts' },
  { module: 'patchwire/client', source: 'src/client/index.ts' },
  { module: 'patchwire/redis', source: 'src/adapters/redis/index.ts' },
] as const

describe('docs/API.md', () => {
  const sections = documentedSections(DOC)

  it('has one section per entry point, in package.json exports', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
    const entryPoints = Object.keys(pkg.exports)
      .filter((key) => key !== './package.json')
      .map((key) => key.replace(/^\./, 'patchwire'))
    assert.deepEqual([...sections.keys()], entryPoints)
    assert.deepEqual(ENTRIES.map((entry) => entry.module), entryPoints)
  })

  for (const { module, source } of ENTRIES) {
    describe(module, () => {
      it(`documents every export of ${source}, and nothing else`, async () => {
        const exported = await exportsOf(source)
        const documented = [...(sections.get(module)?.keys() ?? [])]
        const missing = [...exported.keys()].filter((name) => !documented.includes(name))
        const extra = documented.filter((name) => !exported.has(name))
        assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `docs/API.md § ${module} is out of date`)
      })

      it('shows TypeScript code in every entry', () => {
        for (const [name, body] of sections.get(module) ?? []) {
          assert.match(body, /```ts\n/, `${module} › ${name} has no \`\`\`ts block`)
        }
      })

      it('mentions every field of every exported interface in its entry', async () => {
        const exported = await exportsOf(source)
        for (const [name, declaredIn] of exported) {
          if (declaredIn === undefined) continue
          const fields = interfaceFields(readFileSync(path.join(ROOT, declaredIn), 'utf8'), name)
          const body = sections.get(module)?.get(name) ?? ''
          for (const field of fields) {
            assert.ok(body.includes(`\`${field}`) || body.includes(`  ${field}`), `${module} › ${name}: field "${field}" (from ${declaredIn}) is not documented`)
          }
        }
      })
    })
  }

  it('states the default of every optional field of an exported interface in its TSDoc', async () => {
    const undocumented: string[] = []
    for (const { source } of ENTRIES) {
      for (const [name, declaredIn] of await exportsOf(source)) {
        if (declaredIn === undefined) continue
        const text = readFileSync(path.join(ROOT, declaredIn), 'utf8')
        for (const field of optionalFieldsWithoutDefault(text, name)) undocumented.push(`${name}.${field} (${declaredIn})`)
      }
    }
    assert.deepEqual(undocumented, [], 'add a @defaultValue to these fields')
  })

  it('links only to headings that exist', () => {
    const anchors = headingAnchors(DOC)
    const broken = [...DOC.matchAll(/\]\(#([^)]+)\)/g)].map((match) => match[1]).filter((anchor) => !anchors.has(anchor ?? ''))
    assert.deepEqual(broken, [])
  })

  it('the checks fail on a drifted page (control)', async () => {
    const exported = await exportsOf('src/index.ts')
    const drifted = documentedSections(DOC.replace('### `createHandler(options?)`', '### `makeHandler(options?)`')).get('patchwire')
    assert.ok(drifted?.has('makeHandler') && !drifted.has('createHandler'), 'the drifted page documents makeHandler instead of createHandler')
    assert.ok(exported.has('createHandler') && !exported.has('makeHandler'), 'the code exports createHandler, not makeHandler')
    const source = 'export interface X {\n  /**\n   * doc\n   * @defaultValue 1\n   */\n  a?: number\n  /** doc */\n  readonly b: string\n  c(): void\n  /** no default */\n  d?: string\n  (): void\n}\n'
    assert.deepEqual(interfaceFields(source, 'X'), ['a', 'b', 'c', 'd'])
    assert.deepEqual(optionalFieldsWithoutDefault(source, 'X'), ['d'])
  })
})

describe('README.md', () => {
  const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  /** The files the README shows: the recipes the tests run, each under an `<!-- <path> -->` comment. */
  const RECIPES = [
    'examples/metrics/prometheus.ts',
    ...readdirSync(path.join(ROOT, 'examples', 'runtimes')).filter((name) => name.endsWith('.ts')).map((name) => `examples/runtimes/${name}`),
  ]

  it('shows every recipe file (examples/metrics, examples/runtimes) exactly as the file is, and names only files it copies exactly', () => {
    const shown = shownFiles(README)
    const drifted = [...new Set([...RECIPES, ...shown.keys()])].filter((file) => shown.get(file) !== readFileSync(path.join(ROOT, file), 'utf8'))
    assert.deepEqual(drifted, [], 'copy each file into README.md as it is, in a ```ts block right under <!-- <path> -->')
  })

  it('links only to files the package ships, to absolute URLs, or to headings that exist', () => {
    assert.deepEqual(badLinks(README), [])
  })

  it('the checks fail on a drifted README (control)', () => {
    const file = readFileSync(path.join(ROOT, 'examples', 'metrics', 'prometheus.ts'), 'utf8')
    const drifted = README.replace(file, file.replace('patchwire_connections', 'patchwire_streams'))
    assert.notEqual(shownFiles(drifted).get('examples/metrics/prometheus.ts'), file)
    assert.ok(RECIPES.length > 1, `the README shows more than one recipe, found ${RECIPES.length}`)
    assert.deepEqual(badLinks('[a](docs/API.md) [b](#nowhere) [c](LICENSE) [d](https://x.example/y) [e](dist/index.js)\n## Somewhere\n[f](#somewhere) [g](#somewhere-1) [h](#somewhere-2)\n## Somewhere'), ['docs/API.md', '#nowhere', '#somewhere-2'])
  })
})

/** The ```ts blocks right under an `<!-- <path> -->` comment, by path. */
function shownFiles(markdown: string): Map<string, string> {
  return new Map([...markdown.matchAll(/^<!-- (\S+) -->\n```ts\n([\s\S]*?)^```$/gm)].map((match) => [match[1] ?? '', match[2] ?? '']))
}

/**
 * Links of a README that break in the installed package (node_modules,
 * unpkg, jsDelivr): relative links to files npm does not pack, and in-page
 * links to headings that do not exist.
 */
function badLinks(markdown: string): string[] {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] }
  // npm always packs these, whatever `files` says.
  const shipped = new Set([...pkg.files, 'package.json', 'README.md', 'LICENSE'])
  const anchors = headingAnchors(markdown)
  const bad: string[] = []
  for (const [, target = ''] of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
    if (target.startsWith('#')) {
      if (!anchors.has(target.slice(1))) bad.push(target)
      continue
    }
    const file = target.replace(/#.*$/, '').replace(/^\.\//, '')
    if (!shipped.has(file.split('/')[0] ?? '')) bad.push(target)
  }
  return bad
}

/**
 * The page's `## \`<module>\`` sections, each mapping the name of every
 * `### \`<name>…\`` entry to the entry's text.
 */
function documentedSections(doc: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>()
  let entries: Map<string, string> | undefined
  let current: string | undefined
  for (const line of doc.split('\n')) {
    const section = /^## `([^`]+)`/.exec(line)
    if (section) {
      entries = new Map()
      sections.set(section[1] ?? '', entries)
      current = undefined
      continue
    }
    if (line.startsWith('## ')) {
      entries = undefined
      continue
    }
    const entry = /^### `([A-Za-z_$][\w$]*)/.exec(line)
    if (entry && entries) {
      current = entry[1] ?? ''
      assert.ok(!entries.has(current), `${current} is documented twice in one section`)
      entries.set(current, '')
      continue
    }
    if (entries && current !== undefined) entries.set(current, `${entries.get(current)}${line}\n`)
  }
  return sections
}

const cache = new Map<string, Map<string, string | undefined>>()

/**
 * Every public export of an entry point, mapped to the source file that
 * declares it when it is an interface (for the field check). Values come
 * from importing the module; types from `export type {…}` lists and
 * `export interface|type` declarations that are not `@internal`.
 */
async function exportsOf(source: string): Promise<Map<string, string | undefined>> {
  const cached = cache.get(source)
  if (cached) return cached
  const exported = new Map<string, string | undefined>()
  const namespace = (await import(pathToFileURL(path.join(ROOT, source)).href)) as Record<string, unknown>
  for (const name of Object.keys(namespace)) exported.set(name, undefined)

  const text = readFileSync(path.join(ROOT, source), 'utf8')
  for (const match of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}(?:\s*from\s*'([^']+)')?/g)) {
    const [, typeOnly, list = '', from] = match
    for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
      const isType = typeOnly !== undefined || item.startsWith('type ')
      if (!isType) continue
      const [local = '', alias] = item.replace(/^type\s+/, '').split(/\s+as\s+/)
      const declaredIn = from === undefined ? source : path.join(path.dirname(source), from.replace(/\.js$/, '.ts'))
      exported.set(alias ?? local, isInterface(declaredIn, local) ? declaredIn : undefined)
    }
  }
  for (const match of text.matchAll(/^export\s+(interface|type)\s+([A-Za-z_$][\w$]*)/gm)) {
    const [, kind, name = ''] = match
    if (isInternal(text, match.index)) continue
    exported.set(name, kind === 'interface' ? source : undefined)
  }
  cache.set(source, exported)
  return exported
}

function isInterface(file: string, name: string): boolean {
  return new RegExp(`^export interface ${name}\\b`, 'm').test(readFileSync(path.join(ROOT, file), 'utf8'))
}

/** True when the TSDoc right before `index` is marked `@internal`. */
function isInternal(text: string, index: number): boolean {
  const before = text.slice(0, index).trimEnd()
  if (!before.endsWith('*/')) return false
  return before.slice(before.lastIndexOf('/**')).includes('@internal')
}

/** The named members of `export interface <name> { … }`: properties and methods, not call signatures. */
function interfaceFields(text: string, name: string): string[] {
  return [...interfaceBody(text, name).matchAll(/^ {2}(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*[:(<]/gm)].map((match) => match[1] ?? '')
}

/** The text between the braces of `export interface <name> { … }`. */
function interfaceBody(text: string, name: string): string {
  const start = new RegExp(`^export interface ${name}\\b[^{]*\\{\\n`, 'm').exec(text)
  assert.ok(start, `interface ${name} not found`)
  return text.slice(start.index + start[0].length, text.indexOf('\n}', start.index))
}

/** The optional members of `export interface <name>` whose TSDoc has no `@defaultValue`. */
function optionalFieldsWithoutDefault(text: string, name: string): string[] {
  const body = interfaceBody(text, name)
  const missing: string[] = []
  for (const match of body.matchAll(/(\/\*\*(?:(?!\*\/)[\s\S])*\*\/\s*)?^ {2}(?:readonly\s+)?([A-Za-z_$][\w$]*)\?\s*:/gm)) {
    const [, doc = '', field = ''] = match
    if (!doc.includes('@defaultValue')) missing.push(field)
  }
  return missing
}

/**
 * The anchors of a Markdown text's headings, as GitHub makes them: a
 * heading whose slug came before gets `-1`, `-2`, … (the client's entries
 * of the types it shares with the server, say).
 */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading = ''] of markdown.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    anchors.add(count === 0 ? base : `${base}-${count}`)
  }
  return anchors
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')
}

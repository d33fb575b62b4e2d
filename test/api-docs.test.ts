/**
 * docs/API.md cannot drift from the code: every export of each entry point
 * (values from the module namespace at run time, types from the source's
 * export lists and declarations) has an entry, every entry names an export,
 * every entry shows TypeScript code, every field of an exported interface is
 * mentioned in its entry. Its links, like those of the README and the
 * other guides, are checked by test/docs.test.ts.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
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
  { module: 'patchwire/postgres', source: 'src/adapters/postgres/index.ts' },
  { module: 'patchwire/react', source: 'src/bindings/react.ts' },
  { module: 'patchwire/svelte', source: 'src/bindings/svelte.ts' },
  { module: 'patchwire/vue', source: 'src/bindings/vue.ts' },
] as const

describe('docs/API.md', () => {
  const sections = documentedSections(DOC)

  it('has one section per entry point, in package.json exports', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
    const entryPoints = Object.keys(pkg.exports)
      .filter((key) => key !== './package.json')
      .map((key) => key.replace(/^\./, 'patchwire'))
    assert.deepEqual([...sections.keys()], entryPoints, 'docs/API.md has one section per package.json export, in order')
    assert.deepEqual(ENTRIES.map((entry) => entry.module), entryPoints, 'the test\'s ENTRIES list every package.json export, in order')
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

  it('the checks fail on a drifted page (control)', async () => {
    const exported = await exportsOf('src/index.ts')
    const drifted = documentedSections(DOC.replace('### `createHandler(options?)`', '### `makeHandler(options?)`')).get('patchwire')
    assert.ok(drifted?.has('makeHandler') && !drifted.has('createHandler'), 'the drifted page documents makeHandler, not createHandler')
    assert.ok(exported.has('createHandler') && !exported.has('makeHandler'), 'the source exports createHandler, not makeHandler')
    const source = 'export interface X {\n  /**\n   * doc\n   * @defaultValue 1\n   */\n  a?: number\n  /** doc */\n  readonly b: string\n  c(): void\n  /** no default */\n  d?: string\n  (): void\n}\n'
    assert.deepEqual(interfaceFields(source, 'X'), ['a', 'b', 'c', 'd'], 'interfaceFields finds every field of the control interface')
    assert.deepEqual(optionalFieldsWithoutDefault(source, 'X'), ['d'], 'optionalFieldsWithoutDefault finds the optional field without @defaultValue')
  })
})

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

/**
 * The shape of src/ stays one a reader can hold in their head: no file over
 * 400 lines, no class over 300, no function over 120, and no import circle
 * between files (type-only imports count: they are the same knot to a
 * reader). Measured with the TypeScript compiler's own parser.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import ts from 'typescript'
import { ROOT } from './helpers/package.ts'

const MAX_FILE_LINES = 400
const MAX_CLASS_LINES = 300
const MAX_FUNCTION_LINES = 120

describe('the shape of src/', () => {
  const files = sourceFiles(path.join(ROOT, 'src'))

  it(`has no file over ${MAX_FILE_LINES} lines`, () => {
    const long = files.filter((file) => lineCount(file.text) > MAX_FILE_LINES).map((file) => `${file.name} (${lineCount(file.text)} lines)`)
    assert.deepEqual(long, [], 'split these files: one concept per file')
  })

  it(`has no class over ${MAX_CLASS_LINES} lines and no function over ${MAX_FUNCTION_LINES}`, () => {
    const long = files.flatMap((file) => longDeclarations(file.name, file.text))
    assert.deepEqual(long, [], 'split these declarations')
  })

  it('has no import circle between files, type-only imports included', () => {
    assert.deepEqual(importCircles(files), [], 'break these circles: move what both sides need into a file of its own')
  })

  it('the checks fail on a source that breaks them (control)', () => {
    const body = Array.from({ length: MAX_FUNCTION_LINES + 1 }, (_, i) => `  const a${i} = ${i}`).join('\n')
    assert.deepEqual(longDeclarations('x.ts', `export function f() {\n${body}\n}\n`), [`x.ts: function f (${MAX_FUNCTION_LINES + 3} lines)`], 'a long function is found')
    const circle = [
      { name: 'src/a.ts', text: "import type { B } from './b.js'\n" },
      { name: 'src/b.ts', text: "import { c } from './c.js'\n" },
      { name: 'src/c.ts', text: "export { a } from './a.js'\n" },
      { name: 'src/d.ts', text: "import { a } from './a.js'\n" },
    ]
    assert.deepEqual(importCircles(circle), ['src/a.ts → src/b.ts → src/c.ts → src/a.ts'], 'a circle through a type import and a re-export is found')
  })
})

interface SourceFile {
  /** Relative to the repository, with `/` separators. */
  readonly name: string
  readonly text: string
}

function sourceFiles(dir: string): SourceFile[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .sort()
    .map((name) => {
      const full = path.join(dir, name)
      return { name: path.relative(ROOT, full).split(path.sep).join('/'), text: readFileSync(full, 'utf8') }
    })
}

function lineCount(text: string): number {
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length
}

/** Classes and functions (declarations, methods, arrow functions) longer than the limits, as `file: kind name (n lines)`. */
function longDeclarations(name: string, text: string): string[] {
  const source = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true)
  const long: string[] = []
  const visit = (node: ts.Node): void => {
    const kind = ts.isClassLike(node) ? 'class' : ts.isFunctionLike(node) && 'body' in node && node.body !== undefined ? 'function' : undefined
    if (kind !== undefined) {
      const lines = source.getLineAndCharacterOfPosition(node.getEnd()).line - source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1
      if (lines > (kind === 'class' ? MAX_CLASS_LINES : MAX_FUNCTION_LINES)) long.push(`${name}: ${kind} ${declarationName(node)} (${lines} lines)`)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return long
}

function declarationName(node: ts.Node): string {
  const named = node as ts.Node & { name?: ts.Node }
  if (named.name !== undefined) return named.name.getText()
  if (ts.isVariableDeclaration(node.parent)) return node.parent.name.getText()
  return '(anonymous)'
}

/** Every import circle between the files, each once, as `a → b → … → a`, starting from its first file in name order. */
function importCircles(files: readonly SourceFile[]): string[] {
  const names = new Set(files.map((file) => file.name))
  const edges = new Map(files.map((file) => [file.name, importsOf(file, names)]))
  const circles = new Set<string>()
  const visit = (name: string, trail: string[]): void => {
    const at = trail.indexOf(name)
    if (at !== -1) {
      const loop = trail.slice(at)
      const first = loop.indexOf([...loop].sort()[0] as string)
      const rotated = [...loop.slice(first), ...loop.slice(0, first)]
      circles.add([...rotated, rotated[0]].join(' → '))
      return
    }
    for (const next of edges.get(name) ?? []) visit(next, [...trail, name])
  }
  for (const name of names) visit(name, [])
  return [...circles].sort()
}

/** The files of `names` that `file` imports or re-exports, type-only ones included. */
function importsOf(file: SourceFile, names: ReadonlySet<string>): string[] {
  const source = ts.createSourceFile(file.name, file.text, ts.ScriptTarget.Latest, false)
  const found: string[] = []
  for (const statement of source.statements) {
    if (!(ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement))) continue
    const specifier = statement.moduleSpecifier
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) continue
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file.name), specifier.text.replace(/\.js$/, '.ts')))
    if (names.has(target)) found.push(target)
  }
  return found
}

/**
 * Every `assert(value)` / `assert.ok(value)` in test/ carries a message.
 *
 * Why: when one without a message fails, Node 20 builds the message itself
 * by reading the expression from the source file, at the line and column
 * of the call in the code that ran. Under tsx that code is not the file on
 * disk (tsx compiles each file to a few long lines), so Node parses the
 * TypeScript source from the wrong place, fails on its type syntax, and
 * retries, reading nothing new, for as long as the stack lasts: the test
 * process spins at 100% CPU, its timeouts cannot fire, and the run hangs.
 * test/runner-bounds.test.ts shows the spin on a fixture. With a message
 * (any value but `undefined`/`null`), Node never reads the source.
 *
 * The check parses each file with the TypeScript compiler and follows the
 * imports of `node:assert`, so that a call spread over several lines, an
 * alias (`import { ok } from 'node:assert'`) or `assert.strict.ok` counts.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import ts from 'typescript'
import { ROOT } from './helpers/package.ts'

/** An assertion call whose failure makes Node read the source. */
interface MessagelessAssertion {
  /** `file:line`, the line 1-based. */
  readonly at: string
  /** The call as written. */
  readonly text: string
}

const ASSERT_MODULES = new Set(['assert', 'assert/strict', 'node:assert', 'node:assert/strict'])

/**
 * Finds the `ok`-style assertion calls (`assert(v)`, `assert.ok(v)`,
 * `ok(v)`, `assert.strict(v)`, `assert.strict.ok(v)`) that have no message.
 * @param file - the name to report, relative to the repository
 * @param text - the file's source
 * @returns each such call, in source order
 */
function messagelessAssertions(file: string, text: string): MessagelessAssertion[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  // Local names that are node:assert's `ok` function (the default export is `ok` too) and names of the module object.
  const okFunctions = new Set<string>()
  const modules = new Set<string>()
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue
    if (!ASSERT_MODULES.has(statement.moduleSpecifier.text)) continue
    const clause = statement.importClause
    if (clause?.name !== undefined) {
      okFunctions.add(clause.name.text)
      modules.add(clause.name.text)
    }
    const bindings = clause?.namedBindings
    if (bindings !== undefined && ts.isNamespaceImport(bindings)) modules.add(bindings.name.text)
    if (bindings !== undefined && ts.isNamedImports(bindings)) {
      for (const element of bindings.elements) {
        const imported = (element.propertyName ?? element.name).text
        if (imported === 'ok') okFunctions.add(element.name.text)
        if (imported === 'strict' || imported === 'default') {
          okFunctions.add(element.name.text)
          modules.add(element.name.text)
        }
      }
    }
  }
  const isModule = (node: ts.Expression): boolean =>
    (ts.isIdentifier(node) && modules.has(node.text)) ||
    (ts.isPropertyAccessExpression(node) && node.name.text === 'strict' && isModule(node.expression))
  const isOk = (callee: ts.Expression): boolean =>
    (ts.isIdentifier(callee) && okFunctions.has(callee.text)) ||
    (ts.isPropertyAccessExpression(callee) && (callee.name.text === 'ok' || callee.name.text === 'strict') && isModule(callee.expression))
  const hasMessage = (call: ts.CallExpression): boolean => {
    const message = call.arguments[1]
    if (message === undefined) return call.arguments.some(ts.isSpreadElement)
    return !(ts.isIdentifier(message) && message.text === 'undefined') && message.kind !== ts.SyntaxKind.NullKeyword
  }
  const found: MessagelessAssertion[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && isOk(node.expression) && !hasMessage(node)) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source))
      found.push({ at: `${file}:${line + 1}`, text: node.getText(source) })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/** Every TypeScript and JavaScript file under `dir`, relative to the repository. */
function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(relative)
    return /\.[cm]?[tj]s$/.test(entry.name) ? [relative] : []
  })
}

describe('assertions in test/', () => {
  it('every assert(value) and assert.ok(value) carries a message, so that a failing one cannot hang the run', () => {
    const files = sourceFiles('test')
    assert.ok(files.includes(path.join('test', 'assertions.test.ts')), `the scan sees this file among ${files.length}`)
    const found = files.flatMap((file) => messagelessAssertions(file, readFileSync(path.join(ROOT, file), 'utf8')))
    assert.deepEqual(found, [], `add a message saying what is expected to each of these:\n${found.map((call) => `${call.at}  ${call.text}`).join('\n')}`)
  })

  describe('the check', () => {
    const cases: { name: string, source: string, expected: string[] }[] = [
      {
        name: 'finds assert(v) and assert.ok(v) through the default import, with their lines',
        source: "import assert from 'node:assert/strict'\nassert(a)\n\nassert.ok(b === 1)\n",
        expected: ['x.ts:2', 'x.ts:4'],
      },
      {
        name: 'finds a call spread over several lines, by the line it starts on',
        source: "import assert from 'node:assert'\nassert.ok(\n  compute(a, b) === 3,\n)\n",
        expected: ['x.ts:2'],
      },
      {
        name: 'finds named and renamed imports of ok and strict, and assert.strict.ok',
        source: "import { ok, strict as s } from 'assert'\nimport * as ns from 'node:assert'\nimport plain from 'node:assert'\nok(a)\ns(b)\ns.ok(c)\nns.ok(d)\nns.strict.ok(e)\nplain.strict(f)\n",
        expected: ['x.ts:4', 'x.ts:5', 'x.ts:6', 'x.ts:7', 'x.ts:8', 'x.ts:9'],
      },
      {
        name: 'counts an undefined or null message as none',
        source: "import assert from 'node:assert/strict'\nassert.ok(a, undefined)\nassert(b, null)\n",
        expected: ['x.ts:2', 'x.ts:3'],
      },
      {
        name: 'accepts calls with a message, other assertions, and other functions named ok',
        source: "import assert from 'node:assert/strict'\nimport { ok } from './elsewhere.ts'\nassert.ok(a, 'a holds')\nassert(b, `b is ${b}`)\nassert.ok(...pair)\nassert.equal(c, 1)\nok(d)\nconst other = { ok: (v: unknown) => v }\nother.ok(e)\n",
        expected: [],
      },
      {
        name: 'ignores files that do not import node:assert',
        source: 'declare const assert: (v: unknown) => void\nassert(a)\n',
        expected: [],
      },
    ]
    for (const { name, source, expected } of cases) {
      it(name, () => {
        assert.deepEqual(messagelessAssertions('x.ts', source).map((call) => call.at), expected, `on:\n${source}`)
      })
    }
  })
})

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
 *
 * A second check holds the other assertions (`equal`, `deepEqual`, `match`,
 * `throws`, `rejects`, …) to the same rule, so that a failure says what was
 * being checked and not only two values. Both run on every file of test/,
 * helpers, fixtures and test/soak included.
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

/** The local names under which a file imports node:assert. */
interface AssertImports {
  /** Names of the module object (the default import, `* as ns`, `strict`). */
  readonly modules: ReadonlySet<string>
  /** Each imported function's local name, and the node:assert function it is (`ok` for the default export and `strict`). */
  readonly functions: ReadonlyMap<string, string>
}

/** Reads the imports of node:assert at the top of `source`. */
function assertImports(source: ts.SourceFile): AssertImports {
  const modules = new Set<string>()
  const functions = new Map<string, string>()
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue
    if (!ASSERT_MODULES.has(statement.moduleSpecifier.text)) continue
    const clause = statement.importClause
    if (clause?.name !== undefined) {
      functions.set(clause.name.text, 'ok')
      modules.add(clause.name.text)
    }
    const bindings = clause?.namedBindings
    if (bindings !== undefined && ts.isNamespaceImport(bindings)) modules.add(bindings.name.text)
    if (bindings !== undefined && ts.isNamedImports(bindings)) {
      for (const element of bindings.elements) {
        const imported = (element.propertyName ?? element.name).text
        if (imported === 'strict' || imported === 'default') {
          functions.set(element.name.text, 'ok')
          modules.add(element.name.text)
        } else {
          functions.set(element.name.text, imported)
        }
      }
    }
  }
  return { modules, functions }
}

/** Whether `node` is the node:assert module object: one of `modules`, or `.strict` of one. */
function isAssertModule(node: ts.Expression, modules: ReadonlySet<string>): boolean {
  return (ts.isIdentifier(node) && modules.has(node.text)) ||
    (ts.isPropertyAccessExpression(node) && node.name.text === 'strict' && isAssertModule(node.expression, modules))
}

/** Whether `argument` is a message: present, and neither `undefined` nor `null`, which Node takes as none. */
function isMessage(argument: ts.Expression | undefined): boolean {
  return argument !== undefined && !(ts.isIdentifier(argument) && argument.text === 'undefined') && argument.kind !== ts.SyntaxKind.NullKeyword
}

/** Each call in `source` for which `lacksMessage` holds, as `file:line` and its text. */
function callsWithout(file: string, source: ts.SourceFile, lacksMessage: (call: ts.CallExpression) => boolean): MessagelessAssertion[] {
  const found: MessagelessAssertion[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && lacksMessage(node)) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source))
      found.push({ at: `${file}:${line + 1}`, text: node.getText(source) })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/**
 * Finds the `ok`-style assertion calls (`assert(v)`, `assert.ok(v)`,
 * `ok(v)`, `assert.strict(v)`, `assert.strict.ok(v)`) that have no message.
 * @param file - the name to report, relative to the repository
 * @param text - the file's source
 * @returns each such call, in source order
 */
function messagelessAssertions(file: string, text: string): MessagelessAssertion[] {
  const source = parse(file, text)
  const { modules, functions } = assertImports(source)
  const isOk = (callee: ts.Expression): boolean =>
    (ts.isIdentifier(callee) && functions.get(callee.text) === 'ok') ||
    (ts.isPropertyAccessExpression(callee) && (callee.name.text === 'ok' || callee.name.text === 'strict') && isAssertModule(callee.expression, modules))
  const hasMessage = (call: ts.CallExpression): boolean =>
    call.arguments[1] === undefined ? call.arguments.some(ts.isSpreadElement) : isMessage(call.arguments[1])
  return callsWithout(file, source, (call) => isOk(call.expression) && !hasMessage(call))
}

/**
 * The position of the message in each node:assert function other than `ok`.
 * For `throws` and `rejects` it comes after the validator: Node would take a
 * string in the validator's place as the message, and the call would then
 * check nothing about the error.
 */
const MESSAGE_POSITION: ReadonlyMap<string, number> = new Map([
  ...['equal', 'notEqual', 'strictEqual', 'notStrictEqual', 'deepEqual', 'notDeepEqual', 'deepStrictEqual', 'notDeepStrictEqual', 'partialDeepStrictEqual'].map((name) => [name, 2] as const),
  ...['match', 'doesNotMatch', 'throws', 'rejects', 'doesNotThrow', 'doesNotReject'].map((name) => [name, 2] as const),
  ['fail', 0],
])

/**
 * Finds the calls of node:assert's other assertions (`equal`, `deepEqual`,
 * `match`, `throws`, `rejects`, `doesNotThrow`, `fail`, their strict and
 * negated forms) that have no message. `doesNotThrow(fn, 'message')` and
 * `doesNotReject(p, 'message')` count: there Node takes a string second
 * argument as the message.
 * @param file - the name to report, relative to the repository
 * @param text - the file's source
 * @returns each such call, in source order
 */
function messagelessComparisons(file: string, text: string): MessagelessAssertion[] {
  const source = parse(file, text)
  const { modules, functions } = assertImports(source)
  const nameOf = (callee: ts.Expression): string | undefined => {
    if (ts.isIdentifier(callee)) return functions.get(callee.text)
    return ts.isPropertyAccessExpression(callee) && isAssertModule(callee.expression, modules) ? callee.name.text : undefined
  }
  const lacksMessage = (call: ts.CallExpression): boolean => {
    const name = nameOf(call.expression)
    const position = name === undefined ? undefined : MESSAGE_POSITION.get(name)
    if (position === undefined || call.arguments.some(ts.isSpreadElement)) return false
    const second = call.arguments[1]
    const isText = second !== undefined && (ts.isStringLiteral(second) || ts.isNoSubstitutionTemplateLiteral(second) || ts.isTemplateExpression(second))
    if ((name === 'doesNotThrow' || name === 'doesNotReject') && isText) return false
    return !isMessage(call.arguments[position])
  }
  return callsWithout(file, source, lacksMessage)
}

/** Parses `text` as TypeScript, with JSX in a `.tsx` or `.jsx` file. */
function parse(file: string, text: string): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS)
}

/** Every TypeScript and JavaScript file under `dir` (`.tsx` and `.jsx` included), relative to the repository. */
function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(relative)
    return /\.[cm]?[tj]sx?$/.test(entry.name) ? [relative] : []
  })
}

describe('assertions in test/', () => {
  it('every assert(value) and assert.ok(value) carries a message, so that a failing one cannot hang the run', () => {
    const files = sourceFiles('test')
    assert.ok(files.includes(path.join('test', 'assertions.test.ts')), `the scan sees this file among ${files.length}`)
    const found = files.flatMap((file) => messagelessAssertions(file, readFileSync(path.join(ROOT, file), 'utf8')))
    assert.deepEqual(found, [], `add a message saying what is expected to each of these:\n${found.map((call) => `${call.at}  ${call.text}`).join('\n')}`)
  })

  it('every equal, deepEqual, match, throws, rejects and other assertion carries a message, so that a failure says what was checked', () => {
    const files = sourceFiles('test')
    const found = files.flatMap((file) => messagelessComparisons(file, readFileSync(path.join(ROOT, file), 'utf8')))
    assert.deepEqual(found, [], `add a message saying what is checked (for throws and rejects, after a validator) to each of these:\n${found.map((call) => `${call.at}  ${call.text}`).join('\n')}`)
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

  describe('the check of the other assertions', () => {
    const cases: { name: string, source: string, expected: string[] }[] = [
      {
        name: 'finds comparisons and matches without a message, with their lines',
        source: "import assert from 'node:assert/strict'\nassert.equal(a, 1)\nassert.deepEqual(b, [])\nassert.notEqual(c, 2)\nassert.match(d, /x/)\nassert.doesNotMatch(e, /y/)\nassert.deepStrictEqual(f, {})\nassert.fail()\n",
        expected: ['x.ts:2', 'x.ts:3', 'x.ts:4', 'x.ts:5', 'x.ts:6', 'x.ts:7', 'x.ts:8'],
      },
      {
        name: 'finds throws and rejects without a message after the validator, and with a string in its place',
        source: "import assert from 'node:assert/strict'\nassert.throws(f)\nassert.throws(f, TypeError)\nawait assert.rejects(p, /boom/)\nassert.throws(f, 'throws')\nawait assert.rejects(p, `rejects ${n}`)\n",
        expected: ['x.ts:2', 'x.ts:3', 'x.ts:4', 'x.ts:5', 'x.ts:6'],
      },
      {
        name: 'finds doesNotThrow and doesNotReject without a message',
        source: "import assert from 'node:assert/strict'\nassert.doesNotThrow(f)\nawait assert.doesNotReject(p, TypeError)\n",
        expected: ['x.ts:2', 'x.ts:3'],
      },
      {
        name: 'finds a call spread over several lines by the line it starts on, named imports and assert.strict.equal',
        source: "import { deepEqual as same, strict as s } from 'assert'\nimport * as ns from 'node:assert'\nsame(\n  a,\n  [],\n)\ns.equal(b, 1)\nns.strict.match(c, /x/)\n",
        expected: ['x.ts:3', 'x.ts:7', 'x.ts:8'],
      },
      {
        name: 'counts an undefined or null message as none',
        source: "import assert from 'node:assert/strict'\nassert.equal(a, 1, undefined)\nassert.throws(f, TypeError, null)\n",
        expected: ['x.ts:2', 'x.ts:3'],
      },
      {
        name: 'accepts calls with a message, a string message to doesNotThrow, spreads, ok, and functions of other objects',
        source: "import assert from 'node:assert/strict'\nassert.equal(a, 1, 'a is one')\nassert.deepEqual(b, [], `b: ${b}`)\nassert.throws(f, TypeError, 'f throws')\nawait assert.rejects(p, (e) => e === x, why)\nassert.doesNotThrow(f, 'f does not throw')\nawait assert.doesNotReject(p, undefined, 'p resolves')\nassert.equal(...pair)\nassert.fail('unreachable')\nassert.ok(c)\nconst other = { equal: (x: unknown, y: unknown) => x === y }\nother.equal(d, 1)\n",
        expected: [],
      },
      {
        name: 'ignores files that do not import node:assert',
        source: "import { equal } from './elsewhere.ts'\nequal(a, 1)\n",
        expected: [],
      },
    ]
    for (const { name, source, expected } of cases) {
      it(name, () => {
        assert.deepEqual(messagelessComparisons('x.ts', source).map((call) => call.at), expected, `on:\n${source}`)
      })
    }
  })
})

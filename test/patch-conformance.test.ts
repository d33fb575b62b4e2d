// Runs the RFC 6902 test suite (json-patch-test-suite, Apache-2.0) against
// applyPatch, with each op object converted to patchwire's tuple form.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { applyPatch, PatchError } from '../src/client/index.ts'
import type { PatchOp } from '../src/client/index.ts'

interface SuiteCase {
  comment?: string
  doc?: unknown
  patch?: Record<string, unknown>[]
  expected?: unknown
  error?: string
  disabled?: boolean
}

const require = createRequire(import.meta.url)
const load = (file: string): SuiteCase[] => JSON.parse(readFileSync(require.resolve(`json-patch-test-suite/${file}`), 'utf8'))

// `{ op, path, value }` → `[op, path, value]`; `{ op, path, from }` → `[op, path, from]`
// for move and copy. A missing value or from stays missing, so the case still
// fails as the suite expects; members the RFC says to ignore are dropped.
function toTuple(op: Record<string, unknown>): unknown[] {
  const third = op['op'] === 'move' || op['op'] === 'copy' ? 'from' : 'value'
  return third in op ? [op['op'], op['path'], op[third]] : [op['op'], op['path']]
}

for (const file of ['tests.json', 'spec_tests.json']) {
  describe(`json-patch-test-suite ${file}`, () => {
    const cases = load(file)

    it('has cases', () => assert.ok(cases.length > 10, `more than 10 cases in ${file}, found ${cases.length}`))

    cases.forEach((c, n) => {
      const name = `#${n} ${c.comment ?? c.error ?? JSON.stringify(c.patch)}`
      // The suite's README: "disabled: True if the test should be skipped";
      // records without a doc or a patch are comments. The disabled ones run
      // too, but for "two 'op' members", which has no tuple form at all.
      if (c.disabled === true && c.error?.includes("two 'op' members") === true) {
        it(name, { skip: `disabled in the suite${c.error === undefined ? '' : ` (${c.error})`}` })
        return
      }
      if (c.doc === undefined || c.patch === undefined) {
        it(name, { skip: 'a comment-only record' })
        return
      }
      const ops = c.patch.map(toTuple) as unknown as PatchOp[]

      for (const immutable of [false, true]) {
        it(`${name} (${immutable ? 'immutable' : 'in place'})`, () => {
          const doc = structuredClone(c.doc)
          const before = JSON.stringify(doc)
          if (c.error !== undefined) {
            assert.throws(() => applyPatch(doc, ops, { immutable }), PatchError, `expected: ${c.error}`)
            assert.equal(JSON.stringify(doc), before, 'the document is left as it was')
            return
          }
          const result = applyPatch(doc, ops, { immutable })
          if ('expected' in c) assert.deepEqual(result, c.expected, `the patched document is the suite's expected one, got ${JSON.stringify(result)}`)
          if (immutable) assert.equal(JSON.stringify(doc), before, 'immutable leaves the input as it was')
        })
      }
    })
  })
}

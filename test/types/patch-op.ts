/**
 * Type-level cases for `PatchOp`: compiled by test/types.test.ts with
 * `tsc --noEmit -p test/types`, never run. Each `@ts-expect-error` line must
 * fail to compile; an unused directive is itself an error, so a type that
 * became too loose fails the test.
 */
import { formatPatch, publish, type PatchOp, type PatchOpName } from '../../src/index.ts'
import { applyPatch } from '../../src/client/index.ts'

const op = (value: PatchOp): PatchOp => value
const name = (value: PatchOpName): PatchOpName => value

// Every shape that is allowed.
op(['add', '/items/-', { id: 1 }])
op(['remove', '/items/0'])
op(['replace', '/counter', 7])
op(['move', '/to', '/from'])
op(['copy', '/to', '/from'])
op(['test', '/counter', null])
op(['upsert', '/items/$$7', { id: 7, done: true }])
op(['limit', '/feed', -50])
name('upsert')

// Inline literals are inferred as tuples, with no `as const`.
publish('room', [['replace', '/counter', 7], ['remove', '/draft']])
formatPatch([['add', '/log/-', 'line']], '42')
applyPatch({ counter: 0 }, [['replace', '/counter', 1]]).counter satisfies number
// A readonly array of ops, as `as const` gives.
publish('room', [['limit', '/feed', 10]] as const)

// @ts-expect-error unknown op name
op(['delete', '/a'])
// @ts-expect-error RFC 6902's object form is not an op here
op({ op: 'add', path: '/a', value: 1 })
// @ts-expect-error add needs a value
op(['add', '/a'])
// @ts-expect-error replace needs a value
op(['replace', '/a'])
// @ts-expect-error test needs a value
op(['test', '/a'])
// @ts-expect-error upsert needs a value
op(['upsert', '/items/0'])
// @ts-expect-error remove takes no value
op(['remove', '/a', 1])
// @ts-expect-error move takes a `from` path, not a value
op(['move', '/a', 3])
// @ts-expect-error copy needs a `from` path
op(['copy', '/a'])
// @ts-expect-error limit takes a number
op(['limit', '/feed', '50'])
// @ts-expect-error the path is a string
op(['replace', 5, 1])
// @ts-expect-error no fourth element
op(['replace', '/a', 1, 2])
// @ts-expect-error an op is a tuple, not a bare string
op('replace')
// @ts-expect-error not an op name
name('delete')
// @ts-expect-error publish takes an array of ops, not one op
publish('room', ['replace', '/counter', 7])
// @ts-expect-error a wrong tuple inside publish's array
publish('room', [['replace', '/counter', 7], ['remove', '/a', 'x']])
// @ts-expect-error a wrong tuple inside applyPatch's array
applyPatch({}, [['limit', '/feed']])
// @ts-expect-error a wrong tuple inside formatPatch's array
formatPatch([['move', '/a']])

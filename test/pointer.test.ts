/**
 * JSON Pointer paths as applyPatch reads them and diff writes them
 * (RFC 6901): segments, the `~0`/`~1` escapes, and the names refused so that
 * no op reaches `Object.prototype`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { escapeSegment, FORBIDDEN, parsePointer } from '../src/client/pointer.ts'

/** The reason parsePointer fails with (failures travel as strings inside applyPatch). */
function reason(path: string): unknown {
  try {
    parsePointer(path)
  } catch (thrown) {
    return thrown
  }
  return assert.fail(`${JSON.stringify(path)} was accepted`)
}

describe('parsePointer', () => {
  it('splits a path into its segments, unescaped', () => {
    const table: Array<[string, string[]]> = [
      ['', []],
      ['/', ['']],
      ['/a', ['a']],
      ['/a/b/0', ['a', 'b', '0']],
      ['//', ['', '']],
      ['/a~1b', ['a/b']],
      ['/m~0n', ['m~n']],
      ['/~01', ['~1']],
      ['/~10', ['/0']],
      ['/items/$$42/done', ['items', '$$42', 'done']],
      ['/ü/€', ['ü', '€']],
    ]
    for (const [path, segments] of table) assert.deepEqual(parsePointer(path), segments, JSON.stringify(path))
  })

  it('refuses a path that does not start with "/", and a "~" not followed by 0 or 1', () => {
    assert.equal(reason('a/b'), 'must be "" or start with "/"', 'no leading slash')
    assert.equal(reason('/a~2'), '"~" must be followed by 0 or 1', '~2')
    assert.equal(reason('/a~'), '"~" must be followed by 0 or 1', 'a trailing ~')
  })

  it('refuses __proto__, constructor and prototype anywhere in a path', () => {
    for (const name of FORBIDDEN) {
      assert.equal(reason(`/${name}`), `"${name}" is not allowed`, name)
      assert.equal(reason(`/a/${name}/b`), `"${name}" is not allowed`, `${name} in the middle`)
    }
    assert.equal(reason('/a~1b/prototype'), '"prototype" is not allowed', 'after an escaped segment')
    assert.deepEqual(parsePointer('/protos/constructors'), ['protos', 'constructors'], 'names that only look alike pass')
  })
})

describe('escapeSegment', () => {
  it('writes "~" as "~0" and "/" as "~1", and parsePointer reads it back', () => {
    const names = ['plain', '', 'a/b', 'm~n', '~1', '/0', '~/~/', 'ü']
    for (const name of names) {
      assert.deepEqual(parsePointer(`/x/${escapeSegment(name)}`), ['x', name], JSON.stringify(name))
    }
    assert.equal(escapeSegment('a/b~c'), 'a~1b~0c', 'both escapes')
  })
})

/**
 * formatPatch: the exact wire bytes of a `patch` frame, checked byte for byte
 * and parsed back with eventsource-parser (a spec-conformant SSE parser), so
 * that a value which splits the `data:` line cannot go unnoticed.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { formatPatch, type PatchOp } from '../src/index.ts'

/** Every event a spec parser reads from `text`. */
function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (event) => events.push(event) })
  parser.feed(text)
  return events
}

describe('formatPatch', () => {
  describe('exact bytes', () => {
    const cases: { name: string; ops: PatchOp[]; id?: string; expected: string }[] = [
      { name: 'no id', ops: [['replace', '/counter', 7]], expected: 'event: patch\ndata: [["replace","/counter",7]]\n\n' },
      { name: 'with id', ops: [['replace', '/counter', 7]], id: '42', expected: 'id: 42\nevent: patch\ndata: [["replace","/counter",7]]\n\n' },
      { name: 'empty ops', ops: [], expected: 'event: patch\ndata: []\n\n' },
      { name: 'empty ops with id', ops: [], id: 'abc-1', expected: 'id: abc-1\nevent: patch\ndata: []\n\n' },
      { name: 'remove (two-element tuple)', ops: [['remove', '/a/0']], expected: 'event: patch\ndata: [["remove","/a/0"]]\n\n' },
      {
        name: 'several ops, nested values',
        ops: [['add', '/items/-', { id: 1, tags: ['x', null, true] }], ['move', '/b', '/a'], ['limit', '/feed', -50]],
        expected: 'event: patch\ndata: [["add","/items/-",{"id":1,"tags":["x",null,true]}],["move","/b","/a"],["limit","/feed",-50]]\n\n',
      },
      { name: 'Unicode kept as is', ops: [['replace', '/name', 'Zoë 日本 🎉']], expected: 'event: patch\ndata: [["replace","/name","Zoë 日本 🎉"]]\n\n' },
      { name: 'LF escaped', ops: [['replace', '/t', 'a\nb']], expected: 'event: patch\ndata: [["replace","/t","a\\nb"]]\n\n' },
      { name: 'CR escaped', ops: [['replace', '/t', 'a\rb']], expected: 'event: patch\ndata: [["replace","/t","a\\rb"]]\n\n' },
      { name: 'CRLF escaped', ops: [['replace', '/t', 'a\r\nb']], expected: 'event: patch\ndata: [["replace","/t","a\\r\\nb"]]\n\n' },
      { name: 'NUL escaped', ops: [['replace', '/t', 'a\0b']], expected: 'event: patch\ndata: [["replace","/t","a\\u0000b"]]\n\n' },
      { name: 'lone surrogate escaped', ops: [['replace', '/t', '\ud800']], expected: 'event: patch\ndata: [["replace","/t","\\ud800"]]\n\n' },
      { name: 'newline in a path', ops: [['add', '/a\nb', 1]], expected: 'event: patch\ndata: [["add","/a\\nb",1]]\n\n' },
    ]
    for (const { name, ops, id, expected } of cases) {
      it(name, () => {
        assert.equal(id === undefined ? formatPatch(ops) : formatPatch(ops, id), expected, `the frame for ${name}`)
      })
    }

    it('treats an explicit undefined id as no id', () => {
      assert.equal(formatPatch([], undefined), 'event: patch\ndata: []\n\n', 'an explicit undefined id frames like no id')
    })
  })

  describe('one data line whatever the values contain', () => {
    const tricky = ['line\nbreak', 'carriage\rreturn', 'crlf\r\nhere', 'ls\u2028ps\u2029', 'nel\u0085', '\n\n\n', 'data: forged\n\nevent: reset', 'tab\tend', '🎉\u0000']
    for (const value of tricky) {
      it(`round-trips ${JSON.stringify(value)}`, () => {
        const ops: PatchOp[] = [['replace', '/v', value], ['add', `/k/${value}`, { [value]: [value] }]]
        const frame = formatPatch(ops, '7')
        // Exactly three lines and the blank line ending the frame.
        assert.deepEqual(frame.split(/\r\n|\r|\n/), ['id: 7', 'event: patch', frame.split('\n')[2], '', ''], `one id line, one event line, one data line, then the blank line: ${JSON.stringify(frame)}`)
        assert.equal(frame.match(/^data:/gm)?.length, 1, `one data line: ${JSON.stringify(frame)}`)
        const events = parse(frame)
        assert.equal(events.length, 1, 'a spec parser reads one event')
        const [event] = events
        assert.equal(event?.event, 'patch', 'the event is a patch')
        assert.equal(event?.id, '7', 'the event keeps its id')
        assert.deepEqual(JSON.parse(event?.data ?? ''), ops, 'the data parses back to the ops')
      })
    }

    it('keeps frames apart when several are concatenated', () => {
      const a: PatchOp[] = [['replace', '/a', 'x\n\ny']]
      const b: PatchOp[] = [['replace', '/b', 'z\r\n']]
      const events = parse(formatPatch(a, '1') + formatPatch(b, '2') + formatPatch([]))
      assert.deepEqual(events.map((e) => [e.id, e.event, JSON.parse(e.data)]), [['1', 'patch', a], ['2', 'patch', b], [undefined, 'patch', []]], 'three frames parse apart, each with its id and ops')
    })
  })

  describe('invalid id', () => {
    for (const id of ['a\nb', 'a\rb', 'a\r\nb', 'a\0b', '\n', '1\n\ndata: forged']) {
      it(`throws TypeError for ${JSON.stringify(id)}`, () => {
        assert.throws(() => formatPatch([], id), TypeError, `an id with a line break or NUL (${JSON.stringify(id)}) throws a TypeError`)
      })
    }
  })

  describe('invalid ops', () => {
    const circular: Record<string, unknown> = {}
    circular['self'] = circular
    const throwingToJSON = { toJSON() { throw new Error('nope') } }
    const cases: { name: string; ops: unknown }[] = [
      { name: 'undefined', ops: undefined },
      { name: 'null', ops: null },
      { name: 'a string', ops: '[["replace","/a",1]]' },
      { name: 'a number', ops: 1 },
      { name: 'an object', ops: { 0: ['replace', '/a', 1], length: 1 } },
      { name: 'a flat tuple instead of a list of tuples', ops: ['replace', '/a', 1] },
      { name: 'a null op', ops: [null] },
      { name: 'a hole', ops: [, ['replace', '/a', 1]] },
      { name: 'an object op', ops: [{ op: 'replace', path: '/a', value: 1 }] },
      { name: 'an empty tuple', ops: [[]] },
      { name: 'a tuple without path', ops: [['replace']] },
      { name: 'a non-string op name', ops: [[1, '/a', 1]] },
      { name: 'a non-string path', ops: [['replace', 5, 1]] },
      { name: 'a bad second op', ops: [['replace', '/a', 1], ['add']] },
      { name: 'a circular value', ops: [['add', '/a', circular]] },
      { name: 'a BigInt value', ops: [['add', '/a', 1n]] },
      { name: 'a nested BigInt', ops: [['add', '/a', { deep: [2n] }]] },
      { name: 'a throwing toJSON', ops: [['add', '/a', throwingToJSON]] },
      { name: 'a path without its leading slash', ops: [['replace', 'counter', 1]] },
      { name: 'a path with a bare "~"', ops: [['replace', '/a~b', 1]] },
      { name: 'a path ending in "~"', ops: [['remove', '/a~']] },
      { name: 'a move from a path that is not a pointer', ops: [['move', '/b', 'a']] },
      { name: 'a copy from a path with "~2"', ops: [['copy', '/b', '/a~2']] },
      { name: 'a Map value', ops: [['add', '/a', new Map([['k', 1]])]] },
      { name: 'a nested Set', ops: [['add', '/a', { tags: new Set(['x']) }]] },
      { name: 'a class instance without toJSON', ops: [['add', '/a', new (class Point { x = 1 })()]] },
      { name: 'a RegExp', ops: [['add', '/a', [/x/]]] },
    ]
    for (const { name, ops } of cases) {
      it(`throws TypeError for ${name}`, () => {
        assert.throws(() => formatPatch(ops as PatchOp[]), TypeError, `${name}: formatPatch throws a TypeError`)
        assert.throws(() => formatPatch(ops as PatchOp[], '1'), TypeError, `${name}: formatPatch with an id throws a TypeError`)
      })
    }

    it('names the path that is not a JSON Pointer, and the fix', () => {
      assert.throws(() => formatPatch([['replace', 'counter', 1]]), /ops\[0\] \(replace\): the path "counter" is not a JSON Pointer: it must be "" \(the whole state\) or start with "\/", as in "\/counter"/, 'the message names the op, the path and the fix')
      assert.throws(() => formatPatch([['add', '/a', 1], ['move', '/b', 'a']]), /ops\[1\] \(move\): the from path "a"/, 'the message names the from path of a move')
      assert.throws(() => formatPatch([['add', '/a~b', 1]]), /"~" must be written "~0"/, 'the message says how to write "~"')
    })

    it('names a Map, a Set or a class instance and its member', () => {
      assert.throws(() => formatPatch([['add', '/a', { m: new Map() }]]), /ops\[0\] is not JSON: a Map at member "m".*Object\.fromEntries/, 'the message names the kind, the member and a fix')
      assert.throws(() => formatPatch([['add', '/a', new Set([1])]]), /a Set at member "2"/, 'the tuple index is the member of a top-level value')
    })

    it('accepts JSON Pointers of every form, Dates, objects with toJSON, null-prototype objects and plain objects of another realm', async () => {
      const { runInNewContext } = await import('node:vm')
      const foreign = runInNewContext('({ a: [1, { b: 2 }] })') as unknown
      const ops: PatchOp[] = [
        ['replace', '', { at: new Date(0) }],
        ['add', '/', 1],
        ['add', '/a~0b/c~1d', 1],
        ['add', '/list/$$42', { id: 42 }],
        ['move', '/x', '/y'],
        ['add', '/n', Object.assign(Object.create(null) as object, { k: 1 })],
        ['add', '/f', foreign],
        ['add', '/t', { toJSON: () => 'text' }],
      ]
      assert.equal(
        formatPatch(ops),
        'event: patch\ndata: [["replace","",{"at":"1970-01-01T00:00:00.000Z"}],["add","/",1],["add","/a~0b/c~1d",1],["add","/list/$$42",{"id":42}],["move","/x","/y"],["add","/n",{"k":1}],["add","/f",{"a":[1,{"b":2}]}],["add","/t","text"]]\n\n',
        'each of them is published as JSON writes it',
      )
    })

    it('keeps the serialisation error as cause', () => {
      assert.throws(() => formatPatch([['add', '/a', 1n]]), (error: unknown) => {
        assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`)
        assert.ok(error.cause instanceof TypeError, 'cause is the JSON.stringify error')
        return true
      }, 'a BigInt value throws')
    })
  })
})

/**
 * applyPatch throughput: patchwire's `applyPatch` (in place, atomic) against
 * fast-json-patch (mutating, with and without its validation), rfc6902's
 * `applyPatch` and immer's `applyPatches`, on the same documents and the
 * same changes, per op mix and document size.
 *
 * Run:
 *   node --import tsx bench/apply-patch.bench.ts
 *   node --import tsx bench/apply-patch.bench.ts --sizes 1000 --mixes key-replace,upsert-limit --runs 50
 *   node --import tsx bench/apply-patch.bench.ts --source /tmp/old-patch.ts   # another applyPatch, for before/after
 *   node --import tsx bench/apply-patch.bench.ts --libraries patchwire,fast-json-patch-validate
 *
 * Fixtures (generated, seeded PRNG, so every run patches the same data): a
 * document `{ title, counter, version, meta: { owner: { settings } }, items }`
 * with `items` holding N objects `{ id, name, done, n, tags }`, and one
 * 600-op patch per mix (remove-index: min(600, N / 2) ops):
 * - top-replace: `replace /counter` (and `/title`, `/version`) with scalars
 * - nested-replace: `replace /items/<i>/n`
 * - add-end: `add /items/-` of a new item
 * - remove-index: `remove /items/<i>` at random valid indices
 * - key-replace: `replace /items/$$<id>/done`
 * - upsert-limit: a live feed, repeating `upsert /items/<i>` of an existing
 *   item (an update), `upsert /items/0` of a new item, `limit /items N`
 * The other libraries get the equivalent RFC 6902 patch, computed once,
 * outside the timed code, by following the array's ids: `$$<id>` becomes the
 * item's index, an update upsert becomes `replace`, a new one `add`, a limit
 * `remove`s of the items past N. immer gets the same ops with array paths.
 * Before timing, every library's result is checked deep-equal to
 * patchwire's, so they all do the same work.
 *
 * Method: patchwire is bundled with esbuild first (`--source`, default
 * src/client/patch.ts), so the code timed is the code that ships, not tsx's
 * transform of it. Each timed call patches a fresh `structuredClone` of the document,
 * made before the clock starts; `performance.now()` around the call only.
 * Per size and mix: warm-up calls of every library first (JIT), then rounds
 * in which the libraries take turns (A B C … A B C), so drift hits them alike.
 * A library that has spent 4 s on one size and mix stops after 3 timed runs
 * (its cell then shows how many).
 * The median over the runs is printed in µs per patch with the ratio against
 * fast-json-patch with validation (`applyPatch(doc, ops, true)`). Each result's
 * size is summed into a checksum printed at the end, so no call can be
 * optimised away. Never run by `npm test`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import { buildSync } from 'esbuild'
import fastJsonPatch from 'fast-json-patch'
import { applyPatches as immerApplyPatches, enablePatches } from 'immer'
import type { Patch as ImmerPatch } from 'immer'
import { applyPatch as rfc6902ApplyPatch } from 'rfc6902'
import type { Operation as RfcOperation } from 'rfc6902'
import type { applyPatch as ApplyPatch } from '../src/client/patch.ts'
import type { PatchOp } from '../src/patch-op.ts'
import { seededRandom as prng } from '../test/helpers/random.ts'

enablePatches()

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,10000' },
    mixes: { type: 'string', default: 'top-replace,nested-replace,add-end,remove-index,key-replace,upsert-limit' },
    runs: { type: 'string' },
    ops: { type: 'string', default: '600' },
    source: { type: 'string', default: new URL('../src/client/patch.ts', import.meta.url).pathname },
    libraries: { type: 'string' },
  },
})

// patchwire as it ships: bundled by esbuild, as a browser app would. Through
// tsx, every closure would be wrapped in a `__name()` call (esbuild's
// keepNames), which the published build does not have.
const bundle = buildSync({ entryPoints: [args.source], bundle: true, format: 'esm', write: false, logLevel: 'error' })
const bundled = join(mkdtempSync(join(tmpdir(), 'patchwire-bench-')), 'patch.mjs')
writeFileSync(bundled, bundle.outputFiles[0]?.text ?? '')
const { applyPatch } = (await import(pathToFileURL(bundled).href)) as { applyPatch: typeof ApplyPatch }

interface Item {
  id: number
  name: string
  done: boolean
  n: number
  tags: string[]
}
interface Doc {
  title: string
  counter: number
  version: number
  meta: { owner: { name: string; settings: { theme: string; size: number } } }
  items: Item[]
}
interface RfcOp {
  op: 'add' | 'remove' | 'replace'
  path: string
  value?: unknown
}
interface Fixture {
  doc: Doc
  pw: PatchOp[]
  rfc: RfcOp[]
}


const item = (id: number): Item => ({ id, name: `item ${id}`, done: id % 3 === 0, n: id, tags: ['a', `t${id % 7}`] })

function makeDoc(size: number): Doc {
  return {
    title: 'board',
    counter: 0,
    version: 1,
    meta: { owner: { name: 'ada', settings: { theme: 'dark', size: 12 } } },
    items: Array.from({ length: size }, (_, i) => item(i)),
  }
}

function makeFixture(mix: string, size: number, count: number): Fixture {
  const random = prng(size * 31 + mix.length)
  const pick = (n: number): number => Math.floor(random() * n)
  const doc = makeDoc(size)
  // The ids of `items` as the ops so far leave it, to turn keys into indices.
  const ids = doc.items.map((it) => it.id)
  let next = size
  const pw: PatchOp[] = []
  const rfc: RfcOp[] = []
  const both = (op: PatchOp, ...equivalent: RfcOp[]): void => {
    pw.push(op)
    rfc.push(...equivalent)
  }
  for (let k = 0; pw.length < count; k++) {
    switch (mix) {
      case 'top-replace': {
        const [path, value] = [['/counter', k], ['/title', `board ${k}`], ['/version', k + 2]][k % 3] as [string, unknown]
        both(['replace', path, value], { op: 'replace', path, value })
        break
      }
      case 'nested-replace': {
        const path = `/items/${pick(size)}/n`
        both(['replace', path, k], { op: 'replace', path, value: k })
        break
      }
      case 'add-end': {
        const value = item(next++)
        both(['add', '/items/-', value], { op: 'add', path: '/items/-', value })
        break
      }
      case 'remove-index': {
        const i = pick(ids.length)
        ids.splice(i, 1)
        both(['remove', `/items/${i}`], { op: 'remove', path: `/items/${i}` })
        break
      }
      case 'key-replace': {
        const i = pick(size)
        both(['replace', `/items/$$${ids[i]}/done`, k % 2 === 0], { op: 'replace', path: `/items/${i}/done`, value: k % 2 === 0 })
        break
      }
      case 'upsert-limit': {
        if (k % 3 === 0) {
          const i = pick(ids.length)
          const value = { ...item(ids[i] as number), n: size + k }
          both(['upsert', `/items/${pick(ids.length)}`, value], { op: 'replace', path: `/items/${i}`, value })
        } else if (k % 3 === 1) {
          const value = item(next++)
          ids.unshift(value.id)
          both(['upsert', '/items/0', value], { op: 'add', path: '/items/0', value })
        } else {
          const cut = ids.splice(size)
          both(['limit', '/items', size], ...cut.map((): RfcOp => ({ op: 'remove', path: `/items/${size}` })))
        }
        break
      }
      default:
        throw new RangeError(`unknown mix "${mix}"`)
    }
    if (mix === 'remove-index' && pw.length >= size / 2) break
  }
  return { doc, pw, rfc }
}

const toImmer = (ops: RfcOp[]): ImmerPatch[] =>
  ops.map(({ op, path, value }) => {
    const segments = path.slice(1).split('/').map((s, i, all) => (i > 0 && all[i - 1] === 'items' && s !== '-' ? Number(s) : s))
    return op === 'remove' ? { op, path: segments } : { op, path: segments, value }
  })

interface Library {
  name: string
  prepare: (fixture: Fixture) => unknown
  apply: (doc: Doc, ops: unknown) => Doc
}

const ALL: Library[] = [
  { name: 'patchwire', prepare: (f) => f.pw, apply: (doc, ops) => applyPatch(doc, ops as PatchOp[]) },
  {
    name: 'fast-json-patch (validate)',
    prepare: (f) => f.rfc,
    apply: (doc, ops) => fastJsonPatch.applyPatch(doc, ops as fastJsonPatch.Operation[], true).newDocument,
  },
  {
    name: 'fast-json-patch',
    prepare: (f) => f.rfc,
    apply: (doc, ops) => fastJsonPatch.applyPatch(doc, ops as fastJsonPatch.Operation[], false).newDocument,
  },
  {
    name: 'rfc6902',
    prepare: (f) => f.rfc,
    apply: (doc, ops) => {
      const errors = rfc6902ApplyPatch(doc, ops as RfcOperation[])
      if (errors.some((e) => e !== null)) throw new Error('rfc6902 failed')
      return doc
    },
  },
  { name: 'immer applyPatches', prepare: (f) => toImmer(f.rfc), apply: (doc, ops) => immerApplyPatches(doc, ops as ImmerPatch[]) },
  { name: 'patchwire (immutable)', prepare: (f) => f.pw, apply: (doc, ops) => applyPatch(doc, ops as PatchOp[], { immutable: true }) },
]
const BASELINE = 'fast-json-patch (validate)'
// --libraries names them in lower case, with dashes for spaces and brackets.
const slug = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/-$/, '')
const LIBRARIES = ALL.filter((l) => l.name === BASELINE || args.libraries === undefined || args.libraries.split(',').includes(slug(l.name)))
// Time one library may spend on one size and mix before it stops early, ms.
const BUDGET_MS = 4000

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

let checksum = 0
const sizes = args.sizes.split(',').map(Number)
const mixes = args.mixes.split(',')
const opCount = Number(args.ops)
console.log(`| mix | N | ops | ${LIBRARIES.map((l) => l.name).join(' | ')} |`)
console.log(`| --- | ---: | ---: | ${LIBRARIES.map(() => '---:').join(' | ')} |`)
for (const size of sizes) {
  // Fewer runs for big documents: each run clones the whole document first.
  const runs = args.runs === undefined ? Math.max(30, Math.round(60_000 / size) + 40) : Number(args.runs)
  for (const mix of mixes) {
    const fixture = makeFixture(mix, size, opCount)
    const prepared = LIBRARIES.map((l) => l.prepare(fixture))
    const expected = applyPatch(structuredClone(fixture.doc), fixture.pw)
    LIBRARIES.forEach((l, i) => {
      const got = l.apply(structuredClone(fixture.doc), prepared[i])
      if (!isDeepStrictEqual(JSON.parse(JSON.stringify(got)), expected)) throw new Error(`${l.name} disagrees on ${mix} N=${size}`)
    })
    const times: number[][] = LIBRARIES.map(() => [])
    const spent = LIBRARIES.map(() => 0)
    for (let round = -Math.min(20, runs); round < runs; round++) {
      LIBRARIES.forEach((l, i) => {
        // A library far slower than the others (immer removing from a long
        // array) stops after a few runs instead of holding the bench up.
        if ((spent[i] as number) > BUDGET_MS && (times[i] as number[]).length >= 3) return
        const doc = structuredClone(fixture.doc)
        const t0 = performance.now()
        const result = l.apply(doc, prepared[i])
        const t1 = performance.now()
        checksum += result.items.length
        spent[i] = (spent[i] as number) + t1 - t0
        if (round >= 0 || (spent[i] as number) > BUDGET_MS) times[i]?.push((t1 - t0) * 1000)
      })
    }
    const medians = times.map(median)
    const base = medians[LIBRARIES.findIndex((l) => l.name === BASELINE)] as number
    const cells = medians.map((m, i) => `${m < 100 ? m.toFixed(1) : m.toFixed(0)} (${(m / base).toFixed(2)}×)${(times[i] as number[]).length < 10 ? ` [${(times[i] as number[]).length} runs]` : ''}`)
    const row = `| ${mix} | ${size} | ${fixture.pw.length} | ${cells.join(' | ')} |`
    console.log(row)
  }
}
console.log(`\nmedian µs per patch (ratio vs ${BASELINE}); checksum ${checksum}`)

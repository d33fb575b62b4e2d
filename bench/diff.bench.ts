/**
 * diff speed and size: patchwire's `diff` against fast-json-patch's `compare`
 * and rfc6902's `createPatch` on a keyed list, the case `diff` is for: a
 * document whose `items` holds N objects `{ id, name, done, n, tags }`, and a
 * new version of it with a few items changed, one removed and one added.
 *
 * Run:
 *   node --import tsx bench/diff.bench.ts
 *   node --import tsx bench/diff.bench.ts --sizes 1000,10000 --runs 30 --limit-s 60
 *
 * Two versions of `after` per size: `shared`, where the unchanged items are
 * the same objects as in `before` (an immutable update, as React state or a
 * store makes it), and `copied`, a deep copy (a state rebuilt from a database
 * or parsed from JSON), where every item must be compared member by member.
 *
 * Method: fixtures are generated with a seeded PRNG (the same data every
 * run). patchwire is bundled with esbuild first, so the code timed is the code
 * that ships, not tsx's transform of it. Before timing, each library's ops are
 * applied to a copy of `before` by that library's own applyPatch and must give
 * `after`. The first call of each library runs in a worker thread, stopped
 * after `--limit-s` seconds (rfc6902's array diff is quadratic in time and
 * memory: it takes minutes at N = 1000); one that took more than 4 s keeps
 * that single time. The others go on in this thread: 300 ms of warm-up
 * calls each (JIT), then rounds in which the libraries take turns, each
 * sample timing (`performance.now()`) enough calls to last 2 ms, per call. Printed: the median time per call, the
 * ops count and the ops' JSON size. Op counts are summed into a checksum
 * printed at the end, so no call can be optimised away. Never run by
 * `npm test`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { buildSync } from 'esbuild'
import fastJsonPatch from 'fast-json-patch'
import { applyPatch as rfc6902ApplyPatch, createPatch } from 'rfc6902'
import type { diff as Diff } from '../src/client/diff.ts'
import type { applyPatch as ApplyPatch } from '../src/client/patch.ts'
import { seededRandom as prng } from '../test/helpers/random.ts'

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,10000' },
    runs: { type: 'string', default: '40' },
    'limit-s': { type: 'string', default: '120' },
  },
})

const here = new URL('../src/client/', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'patchwire-bench-'))
const load = async <T>(entry: string): Promise<T> => {
  const bundle = buildSync({ entryPoints: [join(here, entry)], bundle: true, format: 'esm', write: false, logLevel: 'error' })
  const file = join(dir, entry.replace('.ts', '.mjs'))
  writeFileSync(file, bundle.outputFiles[0]?.text ?? '')
  return (await import(pathToFileURL(file).href)) as T
}
const { diff } = await load<{ diff: typeof Diff }>('diff.ts')
const { applyPatch } = await load<{ applyPatch: typeof ApplyPatch }>('patch.ts')

interface Item {
  id: number
  name: string
  done: boolean
  n: number
  tags: string[]
}
interface Doc {
  title: string
  items: Item[]
}


const item = (id: number): Item => ({ id, name: `item ${id}`, done: id % 3 === 0, n: id, tags: ['a', `t${id % 7}`] })

// before, and after as an immutable update: 5 items changed, one removed, one added.
function fixture(size: number): { before: Doc; shared: Doc; copied: Doc } {
  const random = prng(size)
  const pick = (n: number): number => Math.floor(random() * n)
  const before: Doc = { title: 'board', items: Array.from({ length: size }, (_, i) => item(i)) }
  const items = before.items.slice()
  for (let k = 0; k < 5; k++) {
    const i = pick(items.length)
    const old = items[i] as Item
    items[i] = k === 0 ? { ...old, name: `${old.name} (renamed)` } : { ...old, done: !old.done }
  }
  items.splice(pick(items.length), 1)
  items.splice(pick(items.length + 1), 0, item(size))
  const shared = { title: before.title, items }
  return { before, shared, copied: structuredClone(shared) }
}

interface Library {
  name: string
  diff: (before: Doc, after: Doc) => unknown[]
  apply: (doc: Doc, ops: unknown[]) => Doc
  // For the worker: the module and the export that diffs.
  module: string
  exported: string
}

const require = createRequire(import.meta.url)
const LIBRARIES: Library[] = [
  {
    name: 'patchwire diff',
    diff: (a, b) => diff(a, b),
    apply: (doc, ops) => applyPatch(doc, ops as Parameters<typeof applyPatch>[1]),
    module: join(dir, 'diff.mjs'),
    exported: 'diff',
  },
  {
    name: 'fast-json-patch compare',
    diff: (a, b) => fastJsonPatch.compare(a, b),
    apply: (doc, ops) => fastJsonPatch.applyPatch(doc, ops as fastJsonPatch.Operation[]).newDocument,
    module: require.resolve('fast-json-patch'),
    exported: 'compare',
  },
  {
    name: 'rfc6902 createPatch',
    diff: (a, b) => createPatch(a, b),
    apply: (doc, ops) => {
      rfc6902ApplyPatch(doc, ops as Parameters<typeof rfc6902ApplyPatch>[1])
      return doc
    },
    module: require.resolve('rfc6902'),
    exported: 'createPatch',
  },
]
// A library slower than this on its first call keeps that one time, ms.
const BUDGET_MS = 4000
// Warm-up time per library and fixture, and the least time of one sample, ms.
const WARM_MS = 300
const SAMPLE_MS = 2

// One call in a worker thread, given up after limitMs: its time and ops.
async function firstCall(library: Library, before: Doc, after: Doc, limitMs: number): Promise<{ ms: number; ops: unknown[] }> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    import(require('node:url').pathToFileURL(workerData.module).href).then((m) => {
      const diff = m[workerData.exported] ?? m.default[workerData.exported]
      const t0 = performance.now()
      const ops = diff(workerData.before, workerData.after)
      parentPort.postMessage({ ms: performance.now() - t0, ops })
    })`
  const worker = new Worker(code, { eval: true, workerData: { module: library.module, exported: library.exported, before, after } })
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish in ${limitMs / 1000} s`)), limitMs)
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`worker exited (${code})`)))
    })
  } finally {
    clearTimeout(timer)
    await worker.terminate()
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
const ms = (x: number): string => (x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(0))

let checksum = 0
const runs = Number(args.runs)
console.log('| N | after | library | median ms | ops | ops JSON bytes |')
console.log('| ---: | --- | --- | ---: | ---: | ---: |')
for (const size of args.sizes.split(',').map(Number)) {
  const { before, shared, copied } = fixture(size)
  for (const [label, after] of [['shared', shared], ['copied', copied]] as const) {
    const results: { ops: unknown[]; spent: number; times: number[]; error: string | undefined }[] = []
    for (const library of LIBRARIES) {
      try {
        const { ms, ops } = await firstCall(library, before, after, Number(args['limit-s']) * 1000)
        if (!isDeepStrictEqual(library.apply(structuredClone(before), ops), after)) throw new Error('its ops do not give after')
        results.push({ ops, spent: ms, times: ms > BUDGET_MS ? [ms] : [], error: undefined })
      } catch (error) {
        results.push({ ops: [], spent: 0, times: [], error: (error as Error).message })
      }
    }
    // Warm-up: WARM_MS of calls per library (the JIT needs many calls of a
    // fast one), which also sets how many calls one timed sample makes, so
    // that a sample lasts at least SAMPLE_MS.
    const batches = results.map((result, i) => {
      if (result.error !== undefined || result.spent > BUDGET_MS) return 0
      let calls = 0
      const t0 = performance.now()
      while (performance.now() - t0 < WARM_MS) {
        checksum += (LIBRARIES[i] as Library).diff(before, after).length
        calls++
      }
      return Math.max(1, Math.ceil(SAMPLE_MS / ((performance.now() - t0) / calls)))
    })
    for (let round = 0; round < runs; round++) {
      LIBRARIES.forEach((library, i) => {
        const result = results[i] as (typeof results)[number]
        const batch = batches[i] as number
        if (batch === 0) return
        const t0 = performance.now()
        for (let k = 0; k < batch; k++) checksum += library.diff(before, after).length
        result.times.push((performance.now() - t0) / batch)
      })
    }
    LIBRARIES.forEach((library, i) => {
      const result = results[i]
      if (result === undefined) return
      const cells =
        result.error === undefined
          ? [`${ms(median(result.times))}${result.times.length === 1 ? ' (one run)' : ''}`, String(result.ops.length), String(JSON.stringify(result.ops).length)]
          : [`failed: ${result.error}`, '', '']
      console.log(`| ${size} | ${label} | ${library.name} | ${cells.join(' | ')} |`)
    })
  }
}
console.log(`\nchecksum ${checksum}`)

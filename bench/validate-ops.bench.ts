/**
 * The cost of publish's op validation (issue 25: paths must be JSON
 * Pointers; Map, Set and other non-plain objects are refused) on the
 * publish hot path: `formatPatch` of this checkout against the same function
 * from a baseline git ref (default `main`), in one run.
 *
 * Run:
 *   node --import tsx bench/validate-ops.bench.ts
 *   node --import tsx bench/validate-ops.bench.ts --base main --rounds 15
 *
 * Fixtures: `small`, three ops as a dashboard publishes them (a number, a
 * short string, an object of four members); `list`, one `replace` of an
 * array of 1000 objects `{ id, name, done, tags: [..] }` (the replacer
 * visits every object, where the prototype check costs most); `escaped`,
 * 20 ops whose paths contain `~0`/`~1` (the pointer check's slow branch).
 *
 * Method: both versions are bundled with esbuild (the code that ships, not
 * tsx's transform), the baseline from `git show <base>:src/protocol/frame.ts`.
 * 300 ms of warm-up each, then rounds in which the two take turns, each
 * sample timing enough calls to last 5 ms, per call; printed: the median
 * per call and the ratio new/base. Output lengths are summed into a
 * checksum, so no call can be optimised away. Never run by `npm test`.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { buildSync } from 'esbuild'

type Format = (ops: readonly unknown[]) => string

const { values } = parseArgs({ options: { base: { type: 'string', default: 'main' }, rounds: { type: 'string', default: '15' } } })
const ROUNDS = Number(values.rounds)

const dir = mkdtempSync(join(tmpdir(), 'patchwire-validate-bench-'))
mkdirSync(join(dir, 'base', 'protocol'), { recursive: true })
writeFileSync(join(dir, 'base', 'protocol', 'frame.ts'), execFileSync('git', ['show', `${values.base}:src/protocol/frame.ts`], { encoding: 'utf8' }))

async function load(entry: string, name: string): Promise<Format> {
  const outfile = join(dir, `${name}.mjs`)
  buildSync({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outfile, logLevel: 'error' })
  return ((await import(pathToFileURL(outfile).href)) as { formatPatch: Format }).formatPatch
}

const versions: [string, Format][] = [
  ['base', await load(join(dir, 'base', 'protocol', 'frame.ts'), 'base')],
  ['new', await load(new URL('../src/protocol/frame.ts', import.meta.url).pathname, 'new')],
]

const fixtures: Record<string, unknown[]> = {
  small: [['replace', '/counter', 42], ['replace', '/status', 'shipped'], ['add', '/orders/$$17', { id: 17, product: 'Lamp', status: 'new', at: '2026-12-04T15:00:00Z' }]],
  list: [['replace', '/items', Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item ${i}`, done: i % 3 === 0, tags: ['a', 'b'] }))]],
  escaped: Array.from({ length: 20 }, (_, i) => ['replace', `/a~1b/c~0d/${i}`, i]),
}

let checksum = 0
function sample(format: Format, ops: unknown[]): number {
  let calls = 0
  const start = performance.now()
  let elapsed = 0
  do {
    checksum += format(ops).length
    calls++
    elapsed = performance.now() - start
  } while (elapsed < 5)
  return elapsed / calls
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

console.log(`node ${process.version}, base ${values.base}, ${ROUNDS} rounds`)
console.log('fixture  | base (µs/call) | new (µs/call) | new/base')
for (const [name, ops] of Object.entries(fixtures)) {
  for (const [, format] of versions) {
    const until = performance.now() + 300
    while (performance.now() < until) checksum += format(ops).length
  }
  const times: Record<string, number[]> = { base: [], new: [] }
  for (let round = 0; round < ROUNDS; round++) for (const [label, format] of versions) times[label]?.push(sample(format, ops))
  const base = median(times['base'] ?? []) * 1000
  const next = median(times['new'] ?? []) * 1000
  console.log(`${name.padEnd(8)} | ${base.toFixed(2).padStart(14)} | ${next.toFixed(2).padStart(13)} | ${(next / base).toFixed(2)}×`)
}
console.log(`checksum ${checksum}`)

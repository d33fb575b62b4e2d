/**
 * Where an idle stream's heap goes: heap snapshots of one variant's server
 * before any stream connects and after N streams connected and got a few
 * broadcasts, diffed by object kind, per stream. This is how the fan-out
 * bench's "heap per idle stream" is explained (and slimmed): it names the
 * objects each stream keeps alive, with their count and bytes per stream.
 *
 * Run:
 *   npm run bench:heap                           # patchwire and probe, N = 3000
 *   npm run bench:heap -- --variants patchwire,bare --n 2000 --top 30
 *   npm run bench:heap -- --variants patchwire,patchwire-attached   # detached from node:http, and not
 *
 * Method: the fan-out bench's server process and load client (`Fleet`);
 * `v8.writeHeapSnapshot()` after two GCs, before connecting and after
 * connecting plus five broadcasts; each snapshot's nodes grouped by
 * (node type, constructor or string kind), and the difference of their
 * self sizes and counts divided by N. Self sizes only: what each object
 * costs by itself, which adds up to `heapUsed` growth (retained sizes would
 * count shared structures once per path). The snapshots (large) are
 * written to `bench/results/` and deleted after parsing.
 *
 * Output: one table per variant on stdout and in
 * `bench/results/heap-per-stream.md`; the JSON beside it.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Fleet, fmt, killChildrenOnExit, loadAverage, machine, positive, progress, RESULTS, usage, writeResults } from './harness.js'
import { VARIANT_NAMES } from './variants/variant.js'

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '3000' },
    variants: { type: 'string', default: 'patchwire,probe' },
    top: { type: 'string', default: '20' },
  },
})
const n = positive(args.n, '--n')
const top = positive(args.top, '--top')
const variants = args.variants.split(',')
const known = [...VARIANT_NAMES, 'patchwire-attached']
for (const v of variants) if (!known.includes(v)) usage(`unknown variant "${v}" (known: ${known.join(', ')})`)

killChildrenOnExit()
// The snapshots are written there before any result is (a fresh checkout has no such folder).
mkdirSync(RESULTS, { recursive: true })
const loadBefore = loadAverage()

/** Self size and count per object kind. */
type Census = Map<string, { count: number; bytes: number }>
const tables: string[] = []
const json: Record<string, Array<{ kind: string; countPerStream: number; bytesPerStream: number }>> = {}

for (const variant of variants) {
  const fleet = await Fleet.open({ variant, n, heartbeatMs: 1000 })
  try {
    const before = await snapshot(fleet, `${variant}-before`)
    await fleet.connect(variant)
    for (let seq = 1; seq <= 5; seq++) await fleet.publish({ type: 'broadcast', seq }, seq, true)
    const after = await snapshot(fleet, `${variant}-after`)
    const rows = [...after].map(([kind, a]) => {
      const b = before.get(kind) ?? { count: 0, bytes: 0 }
      return { kind, countPerStream: (a.count - b.count) / n, bytesPerStream: (a.bytes - b.bytes) / n }
    }).sort((x, y) => y.bytesPerStream - x.bytesPerStream)
    json[variant] = rows
    const total = rows.reduce((s, r) => s + r.bytesPerStream, 0)
    tables.push([
      `${variant}, N = ${n.toLocaleString('en-US')}: ${fmt(total, 0)} B of self size per stream in all`,
      '',
      '| object kind (snapshot type: name) | per stream | bytes per stream |',
      '|---|---:|---:|',
      ...rows.slice(0, top).map((r) => `| ${r.kind.replaceAll('|', '\\|')} | ${fmt(r.countPerStream, 2)} | ${fmt(r.bytesPerStream, 0)} |`),
    ].join('\n'))
    progress(`${variant}: ${fmt(total, 0)} B per stream`, true)
  } finally {
    await fleet.kill()
  }
}
writeResults('heap-per-stream', { machine, load: loadBefore, n, variants, rows: json }, `${tables.join('\n\n')}\n\n\`npm run bench:heap${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`: Node ${machine.node}, load average ${loadBefore}.\n`)
process.exit(0)

async function snapshot(fleet: Fleet, name: string): Promise<Census> {
  const server = fleet.servers[0]
  if (server === undefined) throw new Error('no server')
  progress(`${name}: heap snapshot`)
  server.send({ type: 'heap-snapshot', path: join(RESULTS, `${name}.heapsnapshot`) })
  const { path } = await server.next('heap-snapshot', 120_000)
  const census = parse(readFileSync(path, 'utf8'))
  rmSync(path)
  return census
}

/** Groups a snapshot's nodes by type and name (strings and code by type only). */
function parse(text: string): Census {
  const snap = JSON.parse(text) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] }
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const census: Census = new Map()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt] as number] ?? '?'
    const name = snap.strings[snap.nodes[i + nameAt] as number] ?? '?'
    // Strings and code are named by their content: group them by type.
    const kind = type === 'object' || type === 'closure' || type === 'native' || type === 'array' || type === 'hidden' ? `${type}: ${name.length > 60 ? `${name.slice(0, 57)}…` : name}` : type
    const entry = census.get(kind) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += snap.nodes[i + sizeAt] as number
    census.set(kind, entry)
  }
  return census
}

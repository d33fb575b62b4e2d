/**
 * Hostile clients (issue 12, "Measure"): readers that stop reading. How long
 * cutting 3000 stalled readers takes, how long the event loop is blocked
 * while it happens, and the heap a stalled stream holds before its cut, for
 * 66-byte and 64 KB frames; and whether a stalled reader on a quiet topic is
 * still cut (by the stall check), and a small heap survives. The issue's
 * "before" figures: a 16.8 s freeze cutting 3000 stalled readers, about
 * 1.2 MB of heap per stalled stream with 66-byte frames, and 300 stalled
 * streams crashing a `--max-old-space-size=256` process before any cut.
 *
 * Run:
 *   npm run bench:hostile                      # every scenario below
 *   npm run bench:hostile -- --streams 1000 --scenarios flood-66,quiet
 *
 * Scenarios, each in a fresh server process (`hostile-server.ts`,
 * `node --expose-gc`; patchwire with the default `maxBufferedBytes` of
 * 1 MiB, a broker without history):
 * - flood-66, flood-64k: `--streams` stalled readers; frames of 66 bytes (or
 *   64 KB) on the wire, one publish per event-loop turn (each frame its own
 *   write: the most queue entries per byte), until every stream is cut.
 *   Heartbeat 60 s, so that only the write-time cut-off acts.
 * - quiet: `--streams` stalled readers, 64 KB frames until the first
 *   stalled socket has a backlog the kernel did not take, two more (far less
 *   than the cut-off), then nothing; heartbeat 1 s: the stall check must cut
 *   them all within its window (two heartbeats, and at least 10 s).
 * - small-heap: 300 stalled readers, 66-byte frames, the server under
 *   `--max-old-space-size=256`: every stream cut, the process alive.
 *
 * Stalled readers (`stalled-readers.py`, Python, because Node cannot set
 * SO_RCVBUF): each socket gets a 4 KiB receive buffer before it connects,
 * sends its GET, reads the status line and never reads again. The server
 * runs with `sndbuf-shim.c` preloaded (compiled here with `cc`), which
 * fixes each accepted socket's SO_SNDBUF at 16 KiB: otherwise the kernel's
 * send-buffer autotuning absorbs about 2.5 MB per stalled connection on
 * loopback, and 3000 of them would exceed the machine's `tcp_mem` and slow
 * every other socket on this shared machine. So the backlog piles up in the
 * server, where the cut-off sees it.
 *
 * Measured in the server: the time to the first cut (publish loop start →
 * the turn that cut one), cutting (that turn → the turn that cut the last),
 * closed (→ the last socket's `close`), the longest gap between two turns
 * of the publishing loop and `monitorEventLoopDelay` max (10 ms
 * resolution), both while cutting (from the turn that cut the first stream
 * until the last socket closed) and over the whole phase (the flood's own
 * turns and its GCs of a heap near 1 GB included);
 * memory: after two GCs at 90 % of the cut-off as it counts (bytes + 128
 * per queued write), minus before the flood, per stream (heap, external),
 * and the un-GC'd peak before the first cut.
 *
 * Output: progress on stderr; the table on stdout and in
 * `bench/results/hostile.md`; every report in `bench/results/hostile.json`.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { fmt, HERE, killChildrenOnExit, RESULTS, loadAverage, machine, ms, positive, progress, usage, writeResults } from './harness.js'
import { Peer } from './peer.js'
import type { HostileCommand, HostileReport, HostileServerReport } from './protocol.js'

type Server = Peer<HostileCommand, HostileServerReport>

interface Scenario {
  name: string
  streams: number
  nodeArgs: string[]
  serverArgs: string[]
  command: (streams: number) => HostileCommand
}

const { values: args } = parseArgs({
  options: {
    streams: { type: 'string', default: '3000' },
    scenarios: { type: 'string', default: 'flood-66,flood-64k,quiet,small-heap' },
  },
})
const streams = positive(args.streams, '--streams')
const SCENARIOS: Scenario[] = [
  { name: 'flood-66', streams, nodeArgs: [], serverArgs: [], command: (n) => ({ type: 'flood', frameBytes: 66, expect: n, fraction: 0.9, maxFrames: 200_000 }) },
  { name: 'flood-64k', streams, nodeArgs: [], serverArgs: [], command: (n) => ({ type: 'flood', frameBytes: 64 * 1024, expect: n, fraction: 0.9, maxFrames: 2000 }) },
  { name: 'quiet', streams, nodeArgs: [], serverArgs: ['--heartbeat-ms', '1000'], command: (n) => ({ type: 'quiet', frameBytes: 64 * 1024, expect: n, timeoutMs: 30_000 }) },
  { name: 'small-heap', streams: 300, nodeArgs: ['--max-old-space-size=256'], serverArgs: [], command: (n) => ({ type: 'flood', frameBytes: 66, expect: n, fraction: 0.9, maxFrames: 200_000 }) },
]
const chosen = args.scenarios.split(',').map((name) => SCENARIOS.find((s) => s.name === name) ?? usage(`unknown scenario "${name}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`))

const SNDBUF = 16 * 1024
const shim = join(RESULTS, 'sndbuf-shim.so')
mkdirSync(RESULTS, { recursive: true })
const compiled = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, join(HERE, 'sndbuf-shim.c'), '-ldl'], { stdio: 'inherit' })
if (compiled.status !== 0) usage('could not compile bench/sndbuf-shim.c with cc: without it 3000 stalled readers would exhaust the machine\'s TCP memory')

killChildrenOnExit()
const readers = new Set<ChildProcess>()
process.on('exit', () => {
  for (const r of readers) r.kill('SIGKILL')
})
const loadBefore = loadAverage()
const started = performance.now()
const results: Array<{ scenario: string; streams: number; report?: HostileReport; error?: string }> = []

progress(`hostile clients: ${chosen.map((s) => `${s.name} (${s.streams})`).join(', ')}; ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; load average ${loadBefore}`, true)
for (const scenario of chosen) {
  const result: (typeof results)[number] = { scenario: scenario.name, streams: scenario.streams }
  results.push(result)
  try {
    result.report = await run(scenario)
    const r = result.report
    progress(`${scenario.name}: ${r.cut}/${scenario.streams} cut after ${r.frames} frames of ${r.frameLength} B; first cut at ${ms(r.toFirstCutMs)}, cutting ${ms(r.cuttingMs)}, all closed ${ms(r.closedMs)}; while cutting: longest turn ${ms(r.longestCuttingTurnMs)}, loop delay max ${ms(r.cuttingDelayMaxMs)}; whole phase: ${ms(r.longestTurnMs)}, ${ms(r.loopDelayMaxMs)}; retained heap ${perStream(r.retained?.heapUsed, scenario.streams)}/stream, external ${perStream(r.retained?.external, scenario.streams)}/stream; peak heap ${perStream(r.peak.heapUsed, scenario.streams)}/stream`, true)
  } catch (error) {
    result.error = (error as Error).message
    progress(`${scenario.name}: FAILED: ${result.error}`, true)
  }
}
report()
process.exit(0)

async function run(scenario: Scenario): Promise<HostileReport> {
  const server: Server = new Peer(`hostile server (${scenario.name})`, ['--expose-gc', ...scenario.nodeArgs, '--import', 'tsx', join(HERE, 'hostile-server.ts'), ...scenario.serverArgs], { LD_PRELOAD: shim, PATCHWIRE_BENCH_SNDBUF: String(SNDBUF) })
  let reader: ChildProcess | undefined
  try {
    const { port } = await server.next('listening', 30_000)
    progress(`${scenario.name}: opening ${scenario.streams} stalled readers`)
    reader = spawn('python3', [join(HERE, 'stalled-readers.py'), String(port), String(scenario.streams), '/?topic=stalled'], { stdio: ['pipe', 'pipe', 'inherit'] })
    readers.add(reader)
    const lines = createInterface({ input: reader.stdout as NodeJS.ReadableStream })
    const [line] = (await Promise.race([once(lines, 'line'), once(reader, 'exit').then(() => { throw new Error('the stalled readers exited') })])) as [string]
    if (!line.startsWith('ready')) throw new Error(`stalled readers: ${line}`)
    server.send({ type: 'streams' })
    const { count } = await server.next('streams', 10_000)
    if (count !== scenario.streams) throw new Error(`the server holds ${count} streams, expected ${scenario.streams}`)
    progress(`${scenario.name}: publishing`)
    server.send(scenario.command(scenario.streams))
    return await (scenario.command(0).type === 'flood' ? server.next('flood', 600_000) : server.next('quiet', 600_000))
  } finally {
    reader?.kill('SIGKILL')
    if (reader !== undefined) readers.delete(reader)
    await server.kill()
  }
}

function perStream(bytes: number | undefined, n: number): string {
  if (bytes === undefined) return '–'
  const each = bytes / n
  return Math.abs(each) >= 1024 * 1024 ? `${fmt(each / 1024 ** 2, 2)} MiB` : `${fmt(each / 1024, 1)} KiB`
}

function report(): void {
  const lines = [
    '| scenario | stalled streams | frame on the wire | frames until all cut | cut | first cut after | first → last cut | first cut → all closed | longest turn while cutting | event-loop delay max while cutting | longest turn, whole phase | event-loop delay max, whole phase | heap per stream at 90 % of the cut-off | external per stream there | backlog per stream there | kernel took per stream | peak heap per stream (no GC) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const { scenario, streams: n, report: r, error } of results) {
    if (r === undefined) {
      lines.push(`| ${scenario} | ${n} | FAILED: ${error} ||||||||||||||||`)
      continue
    }
    lines.push(`| ${scenario} | ${n.toLocaleString('en-US')} | ${r.frameLength.toLocaleString('en-US')} B | ${r.frames.toLocaleString('en-US')} | ${r.cut} | ${ms(r.toFirstCutMs)} | ${ms(r.cuttingMs)} | ${ms(r.closedMs)} | ${ms(r.longestCuttingTurnMs)} | ${ms(r.cuttingDelayMaxMs)} | ${ms(r.longestTurnMs)} | ${ms(r.loopDelayMaxMs)} | ${perStream(r.retained?.heapUsed, n)} | ${perStream(r.retained?.external, n)} | ${perStream(r.backlog, n)} | ${perStream(r.kernelPerStream, 1)} | ${perStream(r.peak.heapUsed, n)} |`)
  }
  const command = `npm run bench:hostile${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const markdown = `${lines.join('\n')}\n\nBefore (issue 12): cutting 3000 stalled readers froze the process for 16.8 s; about 1.2 MB of heap per stalled stream with 66-byte frames; 300 stalled streams crashed a 256 MB heap before any cut.\n\n\`${command}\`: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${loadBefore} before and ${loadAverage()} after, ${((performance.now() - started) / 1000).toFixed(0)} s.\n`
  writeResults('hostile', { machine, load: { before: loadBefore, after: loadAverage() }, results }, markdown)
}

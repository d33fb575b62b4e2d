/**
 * The orchestrator side shared by the fan-out benches (`fanout.bench.ts`,
 * `burst.bench.ts`, `rate.bench.ts`, `storm.bench.ts`, `topics.bench.ts`):
 * a {@link Fleet} is one variant's server process(es), the load clients and,
 * behind Redis, the publisher, with the steps every bench takes (connect,
 * publish and wait for the last delivery, memory, CPU); plus the machine
 * description, the progress line and the small statistics they all print.
 *
 * Processes: the server is `fanout-server.ts` (`node --expose-gc`), each
 * load client `load-client.ts` with at most 19 000 streams (the fd cap here
 * is 20 000 per process), all driven over IPC (`peer.ts`). Every child is
 * killed when the orchestrator exits, fails or gets SIGINT/SIGTERM.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BroadcastSample, MemorySample } from './fanout-report.js'
import { killAllPeers, Peer } from './peer.js'
import type { ClientCommand, ClientReport, ClientTarget, PublisherCommand, PublisherReport, ServerCommand, ServerReport } from './protocol.js'

export const HERE = dirname(fileURLToPath(import.meta.url))
export const RESULTS = join(HERE, 'results')
export const MAX_STREAMS_PER_PROCESS = 19_000
export const CONNECT_CONCURRENCY = 256
export const TIMEOUT_MS = 30_000
/** ephemeral ports left to the rest of the machine */
const PORT_MARGIN = 2048

export type Server = Peer<ServerCommand, ServerReport>
export type Client = Peer<ClientCommand, ClientReport>
export type Publisher = Peer<PublisherCommand, PublisherReport>

/** The machine, as every bench records it. */
export const machine = {
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
  kernel: os.release(),
  node: process.version,
}

/** Kills every child on the way out, whatever the way. Call once, first thing. */
export function killChildrenOnExit(): void {
  process.on('exit', killAllPeers)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))
}

/** @returns the 1-, 5- and 15-minute load averages, as `uptime` prints them */
export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(', ')
}

let progressWidth = 0

/** Writes a status line on stderr; a transient one is overwritten by the next, and shown only on a terminal. */
export function progress(text: string, keep = false): void {
  if (!keep && !process.stderr.isTTY) return
  process.stderr.write(`\r${text.padEnd(progressWidth)}${keep ? '\n' : ''}`)
  progressWidth = keep ? 0 : text.length
}

/** How one variant's processes are set up. */
export interface FleetOptions {
  variant: string
  n: number
  /** server processes; more than one means patchwire behind Redis */
  servers?: number
  heartbeatMs: number
  redisUrl?: string
  redisPrefix?: string
  /** every stream on its own topic */
  topicPerStream?: boolean
  /** the servers keep their sockets so that `drop` can cut them all */
  trackSockets?: boolean
  /** load-client processes (default: one per 19 000 streams) */
  clients?: number
  /** where stream j of server s reconnects after a drop: a port of server `(s + 1) % K` */
  reconnectElsewhere?: boolean
}

/** One variant's server process(es), load clients and (behind Redis) publisher. */
export class Fleet {
  readonly servers: Server[] = []
  readonly clients: Client[] = []
  readonly publisher: Publisher | undefined
  readonly n: number
  #ports: number[][] = []
  readonly #options: FleetOptions
  /** the most streams the servers closed at once, outside teardown and storms */
  lost = 0
  #tearingDown = false
  #expectingCloses = false

  private constructor(options: FleetOptions) {
    this.#options = options
    this.n = options.n
    const serverCount = options.servers ?? 1
    const redis = options.redisUrl !== undefined
    for (let i = 0; i < serverCount; i++) {
      const extra = redis ? ['--redis-url', options.redisUrl as string, '--redis-prefix', options.redisPrefix ?? 'bench:'] : []
      if (options.trackSockets === true) extra.push('--track-sockets')
      const listeners = listenersFor(evenShare(options.n, serverCount, i))
      this.servers.push(new Peer(`server ${options.variant}#${i}`, ['--expose-gc', '--import', 'tsx', join(HERE, 'fanout-server.ts'), options.variant, '--heartbeat-ms', String(options.heartbeatMs), '--listeners', String(listeners), ...extra]))
    }
    const clientCount = options.clients ?? Math.ceil(options.n / MAX_STREAMS_PER_PROCESS)
    for (let i = 0; i < clientCount; i++) this.clients.push(new Peer(`client #${i}`, ['--import', 'tsx', join(HERE, 'load-client.ts')]))
    if (redis) this.publisher = new Peer('publisher', ['--import', 'tsx', join(HERE, 'fanout-publisher.ts'), '--redis-url', options.redisUrl as string, '--redis-prefix', options.redisPrefix ?? 'bench:'])
    // Streams the server closes while the run lasts; teardown and storms close them on purpose.
    for (const c of this.clients) c.on('lost', (r) => {
      if (!this.#tearingDown && !this.#expectingCloses && r.type === 'lost') this.lost = Math.max(this.lost, r.count)
    })
  }

  /**
   * Spawns the processes and waits until the servers listen.
   * @param options - the variant and its setup
   * @returns the fleet, no stream connected yet
   */
  static async open(options: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(options)
    try {
      fleet.#ports = await Promise.all(fleet.servers.map(async (s) => (await s.next('listening', TIMEOUT_MS)).ports))
      if (fleet.publisher !== undefined) await fleet.publisher.next('ready', TIMEOUT_MS)
    } catch (error) {
      await fleet.kill()
      throw error
    }
    return fleet
  }

  /**
   * Connects every stream and waits until the servers hold them all.
   * @param label - the progress line's prefix
   * @returns connect time, rate and the timeline [ms, established]
   */
  async connect(label: string): Promise<{ ms: number; perSecond: number; timeline: Array<[number, number]> }> {
    const { n } = this
    const established = this.clients.map(() => 0)
    const timeline: Array<[number, number]> = []
    const connectStart = performance.now()
    this.clients.forEach((c, i) => c.on('progress', (r) => {
      established[i] = r.type === 'progress' ? r.established : 0
      timeline.push([Math.round(performance.now() - connectStart), sum(established)])
      progress(`${label}: connecting ${sum(established)}/${n}`)
    }))
    const plan = connectPlan(n, this.#ports, this.clients.length, this.#options.reconnectElsewhere === true)
    let firstIndex = 0
    plan.forEach((p, i) => {
      this.clients[i]?.send({ type: 'start', ...p, concurrency: CONNECT_CONCURRENCY, topicPerStream: this.#options.topicPerStream === true, firstIndex })
      firstIndex += p.targets.reduce((a, t) => a + t.count, 0)
    })
    const connected = await Promise.all(this.clients.map((c) => c.next('connected', TIMEOUT_MS + n * 10)))
    const ms = Math.max(...connected.map((c) => c.ms))
    await this.waitForStreams(n)
    return { ms, perSecond: (n / ms) * 1000, timeline }
  }

  /**
   * Sends one publishing command and waits until its last broadcast reached
   * every stream.
   * @param command - `broadcast`, `burst` or `topics` (to the first server, or the publisher behind Redis)
   * @param lastSeq - the broadcast whose delivery to every stream ends it
   * @param warmup - kept out of the statistics
   * @param timeoutMs - how long to wait for the deliveries
   * @returns the sample: server CPU of the fan-out window, publish → first and last delivery
   */
  async publish(command: Extract<ServerCommand, { type: 'broadcast' | 'burst' | 'topics' }>, lastSeq: number, warmup: boolean, timeoutMs = TIMEOUT_MS): Promise<BroadcastSample> {
    const delivered = Promise.all(this.clients.map((c) => c.next('delivered', timeoutMs, (r) => r.seq === lastSeq)))
    const fannedOut = Promise.all(this.servers.map((s) => s.next('broadcast', timeoutMs, (r) => r.seq === lastSeq)))
    let published: Promise<bigint>
    if (this.publisher === undefined) {
      this.servers[0]?.send(command)
      published = fannedOut.then((reports) => reports[0]?.t0 ?? 0n)
    } else {
      if (command.type !== 'broadcast') throw new Error(`${command.type} is not published through Redis here`)
      this.publisher.send(command)
      published = this.publisher.next('published', timeoutMs, (r) => r.seq === lastSeq).then((r) => r.t0)
    }
    const [deliveries, fanOuts, t0] = await Promise.all([delivered, fannedOut, published])
    const first = deliveries.reduce((min, d) => (d.first < min ? d.first : min), deliveries[0]?.first ?? 0n)
    const last = deliveries.reduce((max, d) => (d.last > max ? d.last : max), 0n)
    return { seq: lastSeq, warmup, cpuUs: sum(fanOuts.map((f) => f.cpuUs)), fanOutMs: Math.max(...fanOuts.map((f) => f.wallUs)) / 1000, firstMs: Number(first - t0) / 1e6, lastMs: Number(last - t0) / 1e6 }
  }

  /**
   * Where publishing commands (`broadcast`, `rate`, `stop-rate`, `position`)
   * go: the publisher behind Redis, else the first server, which takes the
   * same commands and answers them with the same reports.
   */
  get source(): Publisher {
    return this.publisher ?? (this.servers[0] as unknown as Publisher)
  }

  /** Server memory summed over the servers, after two GCs in each. */
  async memory(): Promise<MemorySample> {
    const readings = await Promise.all(
      this.servers.map((s) => {
        s.send({ type: 'memory' })
        return s.next('memory', TIMEOUT_MS)
      }),
    )
    return {
      rss: sum(readings.map((r) => r.rss)),
      heapUsed: sum(readings.map((r) => r.heapUsed)),
      heapTotal: sum(readings.map((r) => r.heapTotal)),
      external: sum(readings.map((r) => r.external)),
      arrayBuffers: sum(readings.map((r) => r.arrayBuffers)),
    }
  }

  /** Server CPU (user + system, µs) summed over the servers, and the latest reading's time. */
  async cpu(): Promise<{ cpuUs: number; t: bigint }> {
    const readings = await Promise.all(
      this.servers.map((s) => {
        s.send({ type: 'cpu' })
        return s.next('cpu', TIMEOUT_MS)
      }),
    )
    return { cpuUs: sum(readings.map((r) => r.cpuUs)), t: readings.reduce((max, r) => (r.t > max ? r.t : max), 0n) }
  }

  /** Waits until the servers hold `n` streams in all. */
  async waitForStreams(n: number, timeoutMs = TIMEOUT_MS): Promise<void> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const counts = await Promise.all(
        this.servers.map(async (s) => {
          s.send({ type: 'streams' })
          return (await s.next('streams', TIMEOUT_MS)).count
        }),
      )
      if (sum(counts) === n) return
      if (performance.now() > deadline) throw new Error(`servers hold ${sum(counts)} streams, expected ${n}`)
      await sleep(100)
    }
  }

  /** The smallest and largest broadcast count over every stream of every client. */
  async counts(): Promise<{ min: number; max: number }> {
    const all = await Promise.all(
      this.clients.map((c) => {
        c.send({ type: 'counts' })
        return c.next('counts', TIMEOUT_MS)
      }),
    )
    return { min: Math.min(...all.map((c) => c.min)), max: Math.max(...all.map((c) => c.max)) }
  }

  /** Closes the servers make on purpose from now on are not counted as lost streams. */
  expectCloses(): void {
    this.#expectingCloses = true
  }

  /** Kills the servers and the publisher first, then the clients. */
  async kill(): Promise<void> {
    this.#tearingDown = true
    await Promise.all([...this.servers, ...(this.publisher === undefined ? [] : [this.publisher])].map((p) => p.kill()))
    await Promise.all(this.clients.map((c) => c.kill()))
  }
}

/**
 * Where each client's streams go. N is split evenly over the servers, each
 * server's share evenly over its listening ports, and the resulting
 * destinations are dealt to the clients in turn. With `elsewhere`, each
 * destination reconnects to a port of the next server.
 */
function connectPlan(n: number, serverPorts: number[][], clientCount: number, elsewhere: boolean): Array<{ targets: ClientTarget[]; localAddresses: string[] }> {
  const ephemeralPorts = readEphemeralPortCount()
  const destinations: ClientTarget[] = serverPorts.flatMap((ports, s) => {
    const share = evenShare(n, serverPorts.length, s)
    const next = serverPorts[(s + 1) % serverPorts.length] as number[]
    return ports.map((port, l) => ({ port, count: evenShare(share, ports.length, l), ...(elsewhere ? { reconnectPort: next[l % next.length] as number } : {}) }))
  })
  let nextAddress = 2
  return Array.from({ length: clientCount }, (_, c) => {
    let want = evenShare(n, clientCount, c)
    const total = want
    const targets: ClientTarget[] = []
    for (const destination of destinations) {
      const take = Math.min(want, destination.count)
      if (take === 0) continue
      destination.count -= take
      want -= take
      targets.push({ ...destination, count: take })
    }
    // One source address can hold a connection per ephemeral port whatever the
    // destination; past that, the client spreads over 127.0.0.x addresses.
    const addresses = total > ephemeralPorts - PORT_MARGIN ? Math.ceil(total / (ephemeralPorts - PORT_MARGIN)) : 0
    return { targets, localAddresses: Array.from({ length: addresses }, () => `127.0.0.${nextAddress++}`) }
  })
}

/**
 * How many listening ports a server needs for its streams. Linux's connect()
 * searches the ephemeral range for a free port on one parity first (the other
 * is left to bind()); once a single destination holds that half, every
 * further connect scans it all and the rate drops five-fold, which would make
 * the client, not the server, set the connect rate.
 */
function listenersFor(streams: number): number {
  return Math.max(1, Math.ceil(streams / (Math.floor(readEphemeralPortCount() / 2) - PORT_MARGIN)))
}

function evenShare(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0)
}

/** @returns the size of the machine's ephemeral port range */
export function readEphemeralPortCount(): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low !== undefined && high !== undefined && high > low) return high - low + 1
  } catch {
    // Not Linux: assume the IANA range.
  }
  return 65535 - 49152 + 1
}

/** @returns the sum */
export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

/** @returns the median, or NaN for no values */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}

/**
 * @param q - from 0 to 1
 * @returns the nearest-rank quantile (q = 0.99: the value 99 % of the samples are at or below), NaN for no values
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  if (q === 0.5 && sorted.length % 2 === 0) return ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
}

/** @returns text for a number with `digits` decimals, `–` for none */
export function fmt(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? '–' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** @returns positive integers from a comma-separated flag, or exits with usage */
export function parseList(text: string, name: string): number[] {
  return text.split(',').map((part) => positive(part, name))
}

/** @returns a positive integer flag, or exits with usage */
export function positive(text: string | undefined, name: string): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value <= 0) usage(`${name} takes positive integers, got "${text}"`)
  return value
}

/** Prints the message and exits with status 2. */
export function usage(message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}

/**
 * Writes a bench's results: `bench/results/<name>.json` (every sample) and,
 * when given, `bench/results/<name>.md` (the table), which is also printed.
 */
export function writeResults(name: string, json: unknown, markdown?: string): void {
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify(json, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`)
  if (markdown === undefined) return
  writeFileSync(join(RESULTS, `${name}.md`), markdown)
  process.stdout.write(`\n${markdown}`)
}

/** @returns the ratio as `1.23×`, `–` when either side is missing */
export function times(value: number | undefined, base: number | undefined): string {
  return value === undefined || base === undefined || Number.isNaN(value) || Number.isNaN(base) || base === 0 ? '–' : `${fmt(value / base, 2)}×`
}

/** @returns a duration in ms with sensible digits */
export function ms(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '–'
  return `${fmt(value, value < 10 ? 2 : value < 100 ? 1 : 0)} ms`
}

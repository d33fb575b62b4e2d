/**
 * A private PostgreSQL for the tests of patchwire/postgres: a cluster of its
 * own (`initdb`) in a temporary directory, on a free port of 127.0.0.1, with
 * `fsync=off`, never the machine's shared server. `initdb` and `postgres`
 * refuse to run as root, so both run as the `postgres` user. `postgres`
 * runs in the foreground as a tied child (test/helpers/tied-process.ts)
 * rather than through `pg_ctl start`, which daemonises it out of reach of
 * `--pdeathsig`: a killed test run takes its server with it.
 */
import { execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { freePort } from './free-port.ts'
import { createPostgresBroker } from '../../src/adapters/postgres/index.ts'
import type { PostgresBroker, PostgresBrokerOptions } from '../../src/adapters/postgres/index.ts'
import type { PatchwireError } from '../../src/errors.ts'
import { killAndWait, spawnTied } from './tied-process.ts'

/** A private PostgreSQL server. */
export interface PostgresServer {
  /** The TCP port it listens on (127.0.0.1); it keeps it across restarts. */
  readonly port: number
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  /** Kills the server abruptly (SIGKILL on the postmaster), as a crash would; resolves once it has exited. */
  kill(): Promise<void>
  /** Starts it again on the same port, unless it runs; resolves once it accepts connections. */
  start(): Promise<void>
  /** Kills it, throws its data away and starts an empty cluster on the same port: a database that lost everything. */
  recreate(): Promise<void>
  /** Kills it and removes its directory; idempotent. */
  stop(): Promise<void>
}

const READY_TIMEOUT_MS = 20_000

/** The directory of the PostgreSQL binaries (Debian: /usr/lib/postgresql/<major>/bin), the newest major first. */
export function postgresBinaries(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const majors = readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a))
  for (const major of majors) {
    const bin = path.join(root, major, 'bin')
    if (existsSync(path.join(bin, 'initdb'))) return bin
  }
  return undefined
}

/**
 * Creates a cluster in a temporary directory and starts it on a free port.
 * Call `stop()` in `after`/`t.after`.
 * @returns the server
 * @throws Error when PostgreSQL is not installed (naming the package) or does not start
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = postgresBinaries()
  if (bin === undefined) throw new Error('PostgreSQL is not installed: the tests of patchwire/postgres need its binaries (Debian: apt-get install postgresql; .ci/run does it)')
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
  const root = await mkdtemp(path.join(tmpdir(), 'patchwire-pg-'))
  await chown(root, uid, gid)
  const data = path.join(root, 'data')
  const initdb = async (): Promise<void> => {
    await rm(data, { recursive: true, force: true })
    await run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  }
  await initdb()
  const port = await freePort()
  let current: ChildProcess | undefined
  const kill = async (): Promise<void> => {
    const proc = current
    current = undefined
    if (proc === undefined) return
    await killAndWait(proc)
    // The postmaster's children notice its death and leave soon after; a
    // start before they have gone fails and is tried again (see start).
    await waitFor(async () => !(await isListening(port)), 'PostgreSQL to release its port')
  }
  const start = async (): Promise<void> => {
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      try {
        await spawnServer()
        return
      } catch (error) {
        // Backends of a killed server still hold its shared memory for a moment.
        if (Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }
  const spawnServer = async (): Promise<void> => {
    if (current !== undefined) return
    current = spawnTied(path.join(bin, 'postgres'), [
      '-D', data, '-p', String(port), '-k', root, '-c', 'listen_addresses=127.0.0.1',
      '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200',
    ], { user: 'postgres' })
    const proc = current
    let output = ''
    proc.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    proc.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      if (proc.exitCode !== null) {
        current = undefined
        throw new Error(`postgres exited with ${proc.exitCode}: ${output}`)
      }
      if (await accepts(bin, root, port)) return
      if (Date.now() > deadline) {
        await kill()
        throw new Error(`postgres on port ${port} did not accept connections within ${READY_TIMEOUT_MS} ms: ${output}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  await start()
  let stopped = false
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    kill,
    start,
    async recreate() {
      await kill()
      await initdb()
      await start()
    },
    async stop() {
      if (stopped) return
      stopped = true
      await kill()
      await rm(root, { recursive: true, force: true })
    },
  }
}

function run(command: string, args: readonly string[]): Promise<void> {
  const child = spawnTied(command, args, { user: 'postgres' })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}: ${output}`)))
  })
}

/** Whether the server accepts connections (`pg_isready` over TCP). */
function accepts(bin: string, root: string, port: number): Promise<boolean> {
  const child = spawnTied(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-t', '1'], { cwd: root })
  return new Promise((resolve) => child.on('exit', (code) => resolve(code === 0)))
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('connect', () => { socket.destroy(); resolve(true) })
    socket.on('error', () => resolve(false))
  })
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A broker on a pool of its own, with the errors it reported. */
export interface PostgresSetup {
  readonly broker: PostgresBroker
  readonly pool: pg.Pool
  readonly errors: PatchwireError[]
  /** Checks a connection out of the pool; it is given back after the test, before the pool ends. */
  connect(): Promise<pg.PoolClient>
}

let databases = 0

/**
 * Creates an empty database on `server`, so that tests sharing one server
 * do not share the broker's tables.
 * @returns its URL
 */
export async function freshDatabase(server: PostgresServer): Promise<string> {
  const name = `test_${process.pid}_${++databases}`
  const admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  return server.url.replace(/\/postgres$/, `/${name}`)
}

/**
 * A pool on `url` and a broker over it, both closed after the test (the
 * broker first, so that `pool.end()` can finish).
 */
export async function brokerOn(t: TestContext, url: string, options: Partial<PostgresBrokerOptions> = {}, poolOptions: pg.PoolConfig = {}): Promise<PostgresSetup> {
  const pool = new pg.Pool({ connectionString: url, ...poolOptions })
  // A connection the server cut (a kill, a restart) must not crash the test.
  pool.on('error', () => undefined)
  const errors: PatchwireError[] = []
  const broker = createPostgresBroker({ pool, onError: (error) => errors.push(error), ...options })
  const clients: pg.PoolClient[] = []
  t.after(async () => {
    for (const client of clients) {
      try {
        client.release(true)
      } catch {
        // Given back by the test already.
      }
    }
    await broker.close()
    await pool.end()
  })
  const connect = async (): Promise<pg.PoolClient> => {
    const client = await pool.connect()
    clients.push(client)
    return client
  }
  return { broker, pool, errors, connect }
}

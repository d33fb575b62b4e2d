import type { ChildProcess } from 'node:child_process'
import net from 'node:net'
import { freePort } from './free-port.ts'
import { killAndWait, processState, spawnTied } from './tied-process.ts'

/** A private `redis-server` for tests that stop, pause or restart Redis. */
export interface RedisServer {
  /** The TCP port it listens on (127.0.0.1); it keeps it across restarts. */
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** The process ID of the redis-server while it runs (a restart gives a new one), else undefined. */
  readonly pid: number | undefined
  /** Kills the server abruptly (SIGKILL), as a crash would; resolves once it has exited. */
  kill(): Promise<void>
  /** Starts it again on the same port, unless it runs; resolves once it answers PING. */
  start(): Promise<void>
  /** Freezes it (SIGSTOP): connections stay open but nothing is answered. Resolves once it is stopped. */
  pause(): Promise<void>
  /** Undoes {@link RedisServer.pause}. */
  resume(): void
}

const READY_TIMEOUT_MS = 5000

/**
 * Starts a `redis-server` on a free port of 127.0.0.1, without persistence,
 * and stops it (and any restart of it) when `t.after`/`after` calls the
 * returned `stop`.
 * @param args - more command-line options, such as `['--user', …]`
 * @returns the server and a `stop()` that kills it; `stop` is idempotent
 */
export async function startRedisServer(args: readonly string[] = []): Promise<RedisServer & { stop(): Promise<void> }> {
  // A port found free can be taken before redis-server binds it; try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    let child: ChildProcess | undefined
    try {
      child = await spawnRedis(port, args)
    } catch (error) {
      if (attempt >= 3) throw error
      continue
    }
    let current: ChildProcess | undefined = child
    const kill = async (): Promise<void> => {
      const proc = current
      current = undefined
      await killAndWait(proc)
    }
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      get pid() { return current?.pid },
      kill,
      stop: kill,
      async start() {
        if (current === undefined) current = await spawnRedis(port, args)
      },
      async pause() {
        const proc = current
        if (proc?.pid === undefined) return
        proc.kill('SIGSTOP')
        // The signal is asynchronous: a command sent right after kill() could
        // still be answered, so wait until the kernel reports it stopped.
        const deadline = Date.now() + READY_TIMEOUT_MS
        while (!(await isStopped(proc.pid))) {
          if (Date.now() > deadline) throw new Error('redis-server did not stop on SIGSTOP')
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      },
      resume() {
        current?.kill('SIGCONT')
      },
    }
  }
}

async function isStopped(pid: number): Promise<boolean> {
  const state = await processState(pid)
  return state === 'T' || state === 't'
}


async function spawnRedis(port: number, args: readonly string[]): Promise<ChildProcess> {
  // Tied to this process: a killed test run cannot leave it running.
  const child = spawnTied('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...args,
  ])
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${output}`)
    if (await answersPing(port) && child.exitCode === null) return child
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms: ${output}`)
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) {
        socket.destroy()
        resolve(reply.startsWith('+PONG'))
      }
    })
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
    socket.on('error', () => resolve(false))
  })
}

/**
 * A TCP proxy in front of a Redis, for a test that delays a client's
 * commands or Redis's replies, or cuts the connection at a chosen reply.
 * Meant for one client at a time.
 */
export interface RedisProxy {
  /** The port to point the client at (127.0.0.1). */
  readonly port: number
  /** Redis's replies held since {@link RedisProxy.hold}, as received. */
  readonly held: Buffer
  /** Every byte the client sent, forwarded or held, as latin1 text. */
  readonly sent: string
  /** The client's commands held since {@link RedisProxy.holdCommands}, as latin1 text. */
  readonly heldCommands: string
  /** From now on, keeps Redis's replies instead of forwarding them. */
  hold(): void
  /** Forwards the replies held, and the later ones as they come. */
  release(): void
  /** From now on, keeps the client's commands instead of sending them to Redis. */
  holdCommands(): void
  /** Sends the commands held to Redis, and the later ones as they come. */
  releaseCommands(): void
  /**
   * Forwards the first `bytes` bytes held, then cuts the connections, as a
   * network failure would; the client's next connection is forwarded as usual.
   */
  cut(bytes: number): void
  /** Stops listening and cuts every connection. */
  close(): Promise<void>
}

/** Starts a {@link RedisProxy} to the Redis on `redisPort`; close it after the test. */
export async function startRedisProxy(redisPort: number): Promise<RedisProxy> {
  const connections = new Set<{ client: net.Socket, upstream: net.Socket }>()
  let holding = false
  let held = Buffer.alloc(0)
  let sent = ''
  let holdingCommands = false
  let heldCommands = Buffer.alloc(0)
  const server = net.createServer((client) => {
    const upstream = net.connect(redisPort, '127.0.0.1')
    const connection = { client, upstream }
    connections.add(connection)
    client.on('data', (chunk: Buffer) => {
      sent += chunk.toString('latin1')
      if (holdingCommands) heldCommands = Buffer.concat([heldCommands, chunk])
      else upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (holding) held = Buffer.concat([held, chunk])
      else client.write(chunk)
    })
    upstream.on('close', () => {
      connections.delete(connection)
      client.destroy()
    })
    client.on('close', () => upstream.destroy())
    client.on('error', () => undefined)
    upstream.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    get held() { return held },
    get sent() { return sent },
    get heldCommands() { return heldCommands.toString('latin1') },
    hold() { holding = true },
    release() {
      holding = false
      for (const { client } of connections) client.write(held)
      held = Buffer.alloc(0)
    },
    holdCommands() { holdingCommands = true },
    releaseCommands() {
      holdingCommands = false
      for (const { upstream } of connections) upstream.write(heldCommands)
      heldCommands = Buffer.alloc(0)
    },
    cut(bytes) {
      const forwarded = held.subarray(0, bytes)
      holding = false
      held = Buffer.alloc(0)
      for (const { client, upstream } of connections) {
        // Once the bytes are out, so that destroying the pair cannot drop them.
        client.end(forwarded, () => upstream.destroy())
      }
    },
    async close() {
      for (const { upstream } of connections) upstream.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

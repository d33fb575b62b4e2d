/**
 * The fan-out bench's child processes. Seen from the orchestrator: spawn one
 * with an IPC channel, send it commands, await its reports, and make sure it
 * dies with the orchestrator. Seen from a child: {@link reportToOrchestrator},
 * which also makes it exit by itself when the IPC channel closes (an
 * orchestrator killed with SIGKILL) or when it fails.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'

/** A report any child may send. */
interface Report {
  type: string
}

const live = new Set<ChildProcess>()

/** Kills every child still running. Safe to call from an `exit` handler: it is synchronous. */
export function killAllPeers(): void {
  for (const child of live) child.kill('SIGKILL')
  live.clear()
}

/** One child process and its IPC reports. */
export class Peer<Command, R extends Report> {
  readonly name: string
  readonly #child: ChildProcess
  readonly #buffered: R[] = []
  readonly #waiters = new Set<{ accepts: (report: R) => boolean; resolve: (report: R) => void; reject: (error: Error) => void }>()
  readonly #listeners = new Map<string, (report: R) => void>()
  #failure: Error | undefined
  readonly exited: Promise<void>

  /**
   * @param name - shown in errors
   * @param nodeArgs - arguments after `node`
   * @param env - variables added to the child's environment
   */
  constructor(name: string, nodeArgs: string[], env: Record<string, string> = {}) {
    this.name = name
    this.#child = spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', env: { ...process.env, ...env } })
    live.add(this.#child)
    this.#child.on('message', (report: R) => this.#receive(report))
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        live.delete(this.#child)
        this.#fail(new Error(`${this.name} exited (${signal ?? `code ${code}`})`))
        resolve()
      })
    })
    this.#child.once('error', (error) => this.#fail(error))
  }

  /** Sends a command; dropped silently when the child is gone (its failure is reported by `next`). */
  send(command: Command): void {
    if (this.#child.connected) this.#child.send(command as object)
  }

  /**
   * Routes every report of one type to `listener` instead of the buffer, for
   * reports that stream (progress, heartbeats).
   */
  on(type: R['type'], listener: (report: R) => void): void {
    this.#listeners.set(type, listener)
  }

  /**
   * @param type - the report type awaited
   * @param timeoutMs - rejects after this long
   * @param accepts - further condition on the report
   * @returns the first report of that type (buffered or future) that `accepts` takes
   */
  next<T extends R['type']>(type: T, timeoutMs: number, accepts: (report: Extract<R, { type: T }>) => boolean = () => true): Promise<Extract<R, { type: T }>> {
    const matches = (report: R): report is Extract<R, { type: T }> => report.type === type && accepts(report as Extract<R, { type: T }>)
    const i = this.#buffered.findIndex(matches)
    if (i !== -1) return Promise.resolve(this.#buffered.splice(i, 1)[0] as Extract<R, { type: T }>)
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(`${this.name}: no "${type}" report within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter = {
        accepts: matches,
        resolve: (report: R) => {
          clearTimeout(timer)
          resolve(report as Extract<R, { type: T }>)
        },
        reject: (error: Error) => {
          clearTimeout(timer)
          reject(error)
        },
      }
      this.#waiters.add(waiter)
    })
  }

  /** Kills the child and waits for it to be gone. */
  async kill(): Promise<void> {
    this.#child.kill('SIGKILL')
    await this.exited
  }

  #receive(report: R): void {
    if (report.type === 'error') {
      this.#fail(new Error(`${this.name}: ${(report as Report & { message?: string }).message ?? 'failed'}`))
      return
    }
    const listener = this.#listeners.get(report.type)
    if (listener !== undefined) {
      listener(report)
      return
    }
    for (const waiter of this.#waiters) {
      if (waiter.accepts(report)) {
        this.#waiters.delete(waiter)
        waiter.resolve(report)
        return
      }
    }
    this.#buffered.push(report)
  }

  #fail(error: Error): void {
    this.#failure ??= error
    for (const waiter of this.#waiters) waiter.reject(this.#failure)
    this.#waiters.clear()
  }
}

/**
 * Sets up a child process of the bench: it exits when the orchestrator goes
 * away (taking its server and every socket with it), and reports an uncaught
 * error as `{ type: 'error' }` before exiting.
 * @returns the function that sends a report to the orchestrator
 */
export function reportToOrchestrator<R extends Report>(): (report: R | { type: 'error'; message: string }) => void {
  const send = (report: R | { type: 'error'; message: string }): void => {
    process.send?.(report)
  }
  process.on('disconnect', () => process.exit(0))
  process.on('uncaughtException', (error) => {
    send({ type: 'error', message: error.stack ?? String(error) })
    process.exit(1)
  })
  return send
}

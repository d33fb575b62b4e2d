/**
 * Child processes for the multi-process tests: a fixture run with tsx and
 * an IPC channel, killed after the test.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { until } from './server.ts'
import { spawnTied } from './tied-process.ts'

/** How long a child may take to answer (tsx compiles the fixture first; a loaded machine is slow). */
const ANSWER_MS = 20_000

export interface Child {
  readonly process: ChildProcess
  /** Every IPC message, in order. */
  readonly messages: Record<string, unknown>[]
  /** Resolves with the first message after the last one `next` returned that has `key`. */
  next(key: string, ms?: number): Promise<Record<string, unknown>>
  /** Kills it (SIGKILL, as a crash would); resolves once it has exited. */
  kill(): Promise<void>
}

/**
 * Starts `test/fixtures/<script>` with tsx and an IPC channel; it is killed
 * (SIGKILL) after the test, if it still runs, and when the test process
 * dies (see {@link spawnTied}), so that a killed run leaves no handler or
 * publisher process behind.
 * @param t - the test that owns it
 * @param script - a file name in test/fixtures
 * @param args - its arguments
 */
export function spawnChild(t: TestContext, script: string, args: readonly string[]): Child {
  const child = spawnTied(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`../fixtures/${script}`, import.meta.url)), ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
  t.after(kill)
  const messages: Record<string, unknown>[] = []
  child.on('message', (message: Record<string, unknown>) => messages.push(message))
  let seen = 0
  return {
    process: child,
    messages,
    kill,
    async next(key, ms = ANSWER_MS) {
      const gone = (): boolean => child.exitCode !== null || child.signalCode !== null
      await until(() => messages.slice(seen).some((message) => key in message) || gone(), ms, `a "${key}" message from ${script}`)
      const index = messages.findIndex((message, i) => i >= seen && key in message)
      if (index === -1) throw new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before sending "${key}"`)
      seen = index + 1
      return messages[index] as Record<string, unknown>
    },
  }
}

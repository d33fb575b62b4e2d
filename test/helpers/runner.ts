/**
 * A child test runner (`node --test`) on fixture files, with the flags
 * `npm test` uses, for the tests of how a run ends: a file that fails,
 * leaks a handle, never settles or spins, and a runner that is killed.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { childEnv, ROOT } from './package.ts'

/**
 * The node flags of the `test` script in package.json (`--import tsx`,
 * `--test`, `--test-timeout=…`, …): what every test file runs with.
 */
export const NPM_TEST_FLAGS: readonly string[] = (() => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { test: string } }
  const words = pkg.scripts.test.split(/\s+/)
  const node = words.indexOf('node')
  const flags: string[] = []
  for (let i = node + 1; i < words.length; i++) {
    const word = words[i] as string
    if (!word.startsWith('--')) break
    // `--import tsx`: the one flag here whose value is a separate word.
    flags.push(word === '--import' ? `--import=${words[++i] ?? ''}` : word)
  }
  return flags
})()

/** A child runner and what it printed. */
export interface RunnerRun {
  readonly process: ChildProcess
  /** Its stdout and stderr so far (the TAP report). */
  output(): string
  /**
   * Resolves once it has exited by itself, or rejects after `ms` (then its
   * whole process group, the files' processes included, is killed).
   */
  ended(ms: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Kills its process group: the runner and every process it started. */
  killGroup(signal?: NodeJS.Signals): void
}

/**
 * Starts `node <flags> <files>` in the repository (so that `--import tsx`
 * resolves), in a process group of its own, without the outer run's
 * coverage and test-runner variables; the group is killed after the test.
 * @param t - the test that owns it
 * @param flags - node flags; usually {@link NPM_TEST_FLAGS}, perhaps with one replaced
 * @param files - the test files, absolute paths
 * @param env - more environment variables
 */
export function startRunner(t: TestContext, flags: readonly string[], files: readonly string[], env: NodeJS.ProcessEnv = {}): RunnerRun {
  const child = spawn(process.execPath, [...flags, ...files], { cwd: ROOT, env: { ...childEnv(), ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const killGroup = (signal: NodeJS.Signals = 'SIGKILL'): void => {
    try {
      process.kill(-(child.pid as number), signal)
    } catch {
      // The group is gone already.
    }
  }
  t.after(() => killGroup())
  return {
    process: child,
    output: () => output,
    killGroup,
    async ended(ms) {
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          killGroup()
          reject(new Error(`the test run did not end by itself within ${ms} ms; its output:\n${output}`))
        }, ms)
      })
      try {
        const [code, signal] = await Promise.race([exited, deadline])
        return { code, signal }
      } finally {
        clearTimeout(timer)
      }
    },
  }
}

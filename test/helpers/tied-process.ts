/**
 * Server processes that die with the test process that started them: a
 * private redis-server (and later a private PostgreSQL) must not outlive a
 * test run that is killed (Ctrl-C, SIGTERM, SIGKILL, a runner's timeout),
 * however it is killed. A `process.on('exit')` handler does not run on
 * SIGKILL, nor on a SIGTERM that Node does not handle, nor while a test
 * spins; so the kernel does it instead: the process is started through
 * util-linux `setpriv --pdeathsig KILL`, which sets `PR_SET_PDEATHSIG` and
 * then `exec`s it, so that it keeps the pid the test sees and is sent
 * SIGKILL the moment its parent (this test process) dies.
 *
 * Two limits of `PR_SET_PDEATHSIG`, both met here: the "parent" is the
 * thread that forked (Node spawns from the main thread), and a change of
 * user ID clears it (so `user` switches in the same `setpriv`, which sets
 * the signal after the switch, rather than in a second program).
 *
 * One level up, the test process itself must not outlive the test run: a
 * runner killed with SIGKILL leaves its test files' processes running under
 * init, and one that hangs (a leaked timer, a blocked event loop) would keep
 * its servers forever. So the first tied process also starts a watch (a
 * shell loop, tied the same way) that kills this process once its parent,
 * the runner, is gone.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'

/** Options of {@link spawnTied}. */
export interface TiedOptions {
  /** Its standard streams; stdin is ignored unless given. @defaultValue `['ignore', 'pipe', 'pipe']` */
  readonly stdio?: StdioOptions
  /** Its working directory. @defaultValue the test's */
  readonly cwd?: string
  /** Its environment. @defaultValue the test's */
  readonly env?: NodeJS.ProcessEnv
  /**
   * Runs it as this user (real and effective IDs, with the user's groups),
   * for a server that refuses root, as PostgreSQL's `initdb` does.
   * @defaultValue the test's own user
   */
  readonly user?: string
}

let setprivChecked = false
let watchingParent = false

/**
 * Polls (every 0.5 s, with shell builtins but `sleep`) the parent of the
 * process `$1`; once it is no longer `$2` (the parent died and the process
 * went to init), kills the process. Arguments: the pid, its parent's pid.
 */
const PARENT_WATCH = `
while read -r stat < "/proc/$1/stat"; do
  set -- "$1" "$2" \${stat##*) }
  [ "$4" = "$2" ] || exec kill -KILL "$1"
  sleep 0.5
done 2>/dev/null
`

/**
 * Starts `command` so that it is killed (SIGKILL) when this process dies,
 * however it dies. Its pid is the command's own (signals the test sends,
 * such as SIGSTOP, reach it directly).
 * @param command - an executable on `PATH`, or an absolute path
 * @param args - its arguments
 * @param options - see {@link TiedOptions}
 * @returns the child process
 * @throws Error when util-linux `setpriv` (with `--pdeathsig`) is not installed, naming the package
 */
/**
 * Kills a private server abruptly (SIGKILL), as a crash would, and resolves
 * once it has exited; nothing to do when it has exited already.
 */
export async function killAndWait(proc: ChildProcess | undefined): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
  const exited = once(proc, 'exit')
  proc.kill('SIGKILL')
  await exited
}

export function spawnTied(command: string, args: readonly string[], options: TiedOptions = {}): ChildProcess {
  requireSetpriv()
  endWithParent()
  const user = options.user === undefined ? [] : ['--reuid', options.user, '--regid', options.user, '--init-groups']
  return spawn('setpriv', [...user, '--pdeathsig', 'KILL', '--', command, ...args], {
    stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  })
}

/**
 * The state letter of the process `pid` (`R`, `S`, `T` stopped, `Z` zombie, …), from /proc.
 * @param pid - a process ID
 * @returns the letter, or undefined when there is no such process
 */
export async function processState(pid: number): Promise<string | undefined> {
  return (await statOf(pid))?.[0]
}

/**
 * The processes of the process group `pgid` that still run (zombies aside).
 * @param pgid - a process group ID (its leader's pid)
 * @returns their pids
 */
export async function groupMembers(pgid: number): Promise<number[]> {
  const members: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const [state, , group] = await statOf(Number(entry)) ?? []
    if (group === String(pgid) && state !== 'Z' && state !== 'X') members.push(Number(entry))
  }
  return members
}

/**
 * Whether the process `pid` has ended: it does not exist, or it is a zombie
 * (dead, not reaped yet; a container whose init does not reap keeps those
 * around, and they hold no port and no memory).
 * @param pid - a process ID
 * @returns true once it is gone
 */
export async function hasEnded(pid: number): Promise<boolean> {
  const state = await processState(pid)
  return state === undefined || state === 'Z' || state === 'X'
}

/** Starts the watch that ends this process when its parent (the test runner) ends; once per process. */
function endWithParent(): void {
  if (watchingParent) return
  watchingParent = true
  const watch = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'sh', '-c', PARENT_WATCH, 'parent-watch', String(process.pid), String(process.ppid)], { stdio: 'ignore' })
  // It lives exactly as long as this process: it must not keep it alive.
  watch.unref()
}

/** The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, …; undefined when there is no such process. */
async function statOf(pid: number): Promise<string[] | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  // The command name is parenthesised and may hold spaces and parentheses.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')
}

function requireSetpriv(): void {
  if (setprivChecked) return
  let help = ''
  try {
    help = execFileSync('setpriv', ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    // Not installed: the message below says what to install.
  }
  if (!help.includes('--pdeathsig')) {
    throw new Error('the test helpers start their servers through `setpriv --pdeathsig KILL` (util-linux 2.33 or later), so that a killed test run cannot leave them running: install util-linux (Debian: apt-get install util-linux)')
  }
  setprivChecked = true
}

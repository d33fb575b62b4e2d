/**
 * The package as a user gets it: a copy of the repository as a fresh clone
 * has it (no `node_modules`, no `dist`), packed with `npm pack` (which runs
 * its lifecycle scripts), then installed from the tarball into a project of
 * its own. Child processes run without the test run's coverage and npm
 * variables, so that they behave as they do for a user.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** What a fresh clone does not have: build output, installs, coverage and run logs (see .gitignore). */
const NOT_IN_A_CLONE = new Set(['.git', 'node_modules', 'dist', 'coverage', path.join('bench', 'results')])

const PACK_TIMEOUT_MS = 120_000
const INSTALL_TIMEOUT_MS = 60_000

/** What `npm pack` made. */
export interface PackedPackage {
  /** Absolute path of the `.tgz`. */
  readonly tarball: string
  /** Every file in it, relative to its `package/` folder, sorted. */
  readonly files: readonly string[]
}

/** What a child process did. */
export interface RunResult {
  /** The exit code; `null` when it was killed (by the timeout, for one). */
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The environment for child processes: without `NODE_V8_COVERAGE` (under c8,
 * covering tsc and npm themselves would multiply their run time), without
 * the `npm_*` variables that `npm test` sets (`npm_config_local_prefix`
 * would point a child npm at this repository instead of its own folder),
 * and without `NODE_TEST_CONTEXT`, which the test runner sets for the files
 * it runs (a `node --test` started with it reports to a parent runner
 * instead of running as one).
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'NODE_V8_COVERAGE' || key === 'INIT_CWD' || key === 'NODE_TEST_CONTEXT' || key.toLowerCase().startsWith('npm_')) continue
    env[key] = value
  }
  return env
}

/**
 * Runs a command to completion; a non-zero exit resolves too, so that tests can assert it.
 * @param command - an executable on `PATH`, or an absolute path
 * @param args - its arguments
 * @param cwd - its working directory
 * @param timeoutMs - it is killed after this long (then `exitCode` is `null`)
 * @returns its exit code and output
 * @throws Error when it cannot be started at all
 */
export function run(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) resolve({ exitCode: 0, stdout, stderr })
      else if (typeof error.code === 'number') resolve({ exitCode: error.code, stdout, stderr })
      else if (error.signal !== undefined && error.signal !== null) resolve({ exitCode: null, stdout, stderr })
      else reject(error)
    })
  })
}

/**
 * Copies the repository into `into` as a fresh clone has it, and links the
 * repository's `node_modules` there so that its lifecycle scripts find `tsc`
 * without a network install.
 * @param into - an empty or missing folder
 * @returns `into`
 */
export async function copyCleanClone(into: string): Promise<string> {
  await cp(ROOT, into, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(ROOT, source)
      return !NOT_IN_A_CLONE.has(relative) && !relative.endsWith('.log')
    },
  })
  await symlink(path.join(ROOT, 'node_modules'), path.join(into, 'node_modules'), 'dir')
  return into
}

/**
 * Runs `npm pack` in `dir`, with its lifecycle scripts, as a publish or a git install would.
 * @param dir - the package folder
 * @param destination - where the tarball goes; created if missing
 * @returns the tarball and its file list
 * @throws Error with npm's output when the pack fails
 */
export async function pack(dir: string, destination: string): Promise<PackedPackage> {
  await mkdir(destination, { recursive: true })
  const report = await packReport(dir, ['--pack-destination', destination])
  return {
    tarball: path.join(destination, report.filename),
    files: report.files.map((file) => file.path).sort(),
  }
}

/**
 * The files `npm pack` would put in the tarball, from the folder as it is
 * (`--dry-run`, no lifecycle scripts): what package.json `files` selects,
 * and what npm always adds (package.json, README, LICENSE).
 * @param dir - the package folder
 * @returns every file's path relative to the package folder, sorted
 * @throws Error with npm's output when npm fails
 */
export async function packedFiles(dir: string): Promise<string[]> {
  const report = await packReport(dir, ['--dry-run', '--ignore-scripts'])
  return report.files.map((file) => file.path).sort()
}

/** Runs `npm pack --json` with `args` in `dir` and returns its report. */
async function packReport(dir: string, args: readonly string[]): Promise<{ filename: string; files: { path: string }[] }> {
  const result = await run('npm', ['pack', '--json', ...args], dir, PACK_TIMEOUT_MS)
  // With --json, npm writes the report to stdout and the scripts' output to stderr.
  if (result.exitCode !== 0) throw new Error(`npm pack failed (exit ${result.exitCode}):\n${result.stderr}\n${result.stdout}`)
  const [report] = JSON.parse(result.stdout) as [{ filename: string; files: { path: string }[] }]
  return report
}

/**
 * Creates a project in `dir` and installs the tarball into it, offline: the
 * package has no dependencies, so nothing needs the registry. Scripts are
 * not ignored, as a user's install does not ignore them: npm 11 runs none
 * of a dependency's without `allowScripts`, and warns about them.
 * @param tarball - a `.tgz` from {@link pack}
 * @param dir - the project folder; created if missing
 * @returns what npm printed
 * @throws Error with npm's output when the install fails
 */
export async function installTarball(tarball: string, dir: string): Promise<RunResult> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'patchwire-consumer', private: true }))
  const result = await run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], dir, INSTALL_TIMEOUT_MS)
  if (result.exitCode !== 0) throw new Error(`npm install ${tarball} failed (exit ${result.exitCode}):\n${result.stderr}\n${result.stdout}`)
  return result
}

/**
 * The repository's own TypeScript compiler, run as a user runs it on their
 * project, with its errors parsed one per diagnostic.
 */
import path from 'node:path'
import { ROOT, run } from './package.ts'

/** `node_modules/.bin/tsc` of this repository. */
export const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc')

// A program with Vue's declarations (patchwire/vue) and the library check on
// takes over a minute of wall time on a loaded 2-core machine.
const TSC_TIMEOUT_MS = 180_000

/** One compiler error. */
export interface Diagnostic {
  /** The file's name relative to the folder tsc ran in, with `/` separators. */
  readonly file: string
  readonly line: number
  /** `TS2307`, … */
  readonly code: string
  readonly message: string
}

/** What one tsc run gave. */
export interface TscResult {
  readonly exitCode: number | null
  readonly diagnostics: readonly Diagnostic[]
  /** Everything tsc printed, for assertion messages. */
  readonly output: string
}

/**
 * Runs `tsc --noEmit --pretty false` with `args` in `cwd`.
 * @param args - compiler options and files, as on the command line
 * @param cwd - the project folder
 * @returns the exit code and the errors
 */
export async function tsc(args: readonly string[], cwd: string): Promise<TscResult> {
  const result = await run(process.execPath, [TSC, '--noEmit', '--pretty', 'false', ...args], cwd, TSC_TIMEOUT_MS)
  const output = result.stdout + result.stderr
  const diagnostics: Diagnostic[] = []
  for (const match of output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)) {
    const [, file = '', line = '', code = '', message = ''] = match
    diagnostics.push({ file: file.split(path.sep).join('/'), line: Number(line), code, message })
  }
  return { exitCode: result.exitCode, diagnostics, output }
}

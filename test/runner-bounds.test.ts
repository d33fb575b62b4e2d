/**
 * A test file that goes wrong cannot hang `npm test`. Each case runs a child
 * `node --test` with the flags of package.json's `test` script on a fixture
 * written to a temporary folder:
 * - a failing assertion with a message fails its file at once, while one
 *   without a message makes Node 20 spin (see test/assertions.test.ts);
 * - a file whose tests are done but that leaks a handle fails within
 *   seconds, naming it (test/helpers/leak-guard.ts), after its own `after`
 *   hooks ran;
 * - a test that never settles, and a file whose event loop is blocked for
 *   good, are cancelled at `--test-timeout`, and the run goes on and ends.
 * The runs are killed (as a process group) if they do not end by
 * themselves; the cases assert that they did.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import { childEnv, ROOT } from './helpers/package.ts'
import { NPM_TEST_FLAGS, startRunner } from './helpers/runner.ts'
import { until } from './helpers/server.ts'
import { groupMembers } from './helpers/tied-process.ts'

/** How long a run that should end by itself may take on a loaded machine before it counts as hung. */
const HUNG_MS = 90_000
/** The `--test-timeout` of the cases that rely on it: short, so that they end soon. */
const SHORT_TIMEOUT_MS = 5000
/** The most `npm test` may wait for a file that hangs. */
const MOST_TIMEOUT_MS = 10 * 60_000

const FLAGS_WITH_SHORT_TIMEOUT = NPM_TEST_FLAGS.map((flag) => flag.startsWith('--test-timeout=') ? `--test-timeout=${SHORT_TIMEOUT_MS}` : flag)

/** A temporary folder for fixtures, removed after the test. */
async function fixtureDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'patchwire-runner-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A long TypeScript test file, as the repository's are: 600 passing tests,
 * and in the middle one that reaches `assertion` (with `value` = 1) after
 * writing the file named by `PATCHWIRE_MARKER`, if set. Every call has
 * TypeScript syntax in it, which Node's parser cannot read: that is what
 * makes its search for the failing expression go on forever.
 */
function longTestFile(assertion: string): string {
  const passing = (i: number): string => `  it('case ${i}', () => { const value: number = ${i}; assert.equal(value as number, ${i}, 'the same number') })`
  return [
    "import assert from 'node:assert/strict'",
    "import { writeFileSync } from 'node:fs'",
    "import { describe, it } from 'node:test'",
    '',
    "describe('a long file', () => {",
    ...Array.from({ length: 300 }, (_, i) => passing(i)),
    '  it(\'fails\', () => {',
    '    const value: number = 1',
    "    const marker: string | undefined = process.env['PATCHWIRE_MARKER']",
    "    if (marker !== undefined) writeFileSync(marker as string, 'reached')",
    `    ${assertion}`,
    '  })',
    ...Array.from({ length: 300 }, (_, i) => passing(300 + i)),
    '})',
    '',
  ].join('\n')
}

const WITH_MESSAGE = "assert.ok((value as number) === 2, 'value is 2')"
const WITHOUT_MESSAGE = 'assert.ok((value as number) === 2)'

describe('bounds on a test run', { timeout: 5 * HUNG_MS }, () => {
  it('npm test runs every file with the leak guard and a --test-timeout of at most 10 minutes', () => {
    assert.ok(NPM_TEST_FLAGS.includes('--import=./test/helpers/leak-guard.ts'), `the leak guard in ${NPM_TEST_FLAGS.join(' ')}`)
    const timeout = Number(NPM_TEST_FLAGS.find((flag) => flag.startsWith('--test-timeout='))?.split('=')[1])
    assert.ok(timeout > 0 && timeout <= MOST_TIMEOUT_MS, `a --test-timeout from 1 to ${MOST_TIMEOUT_MS} ms in ${NPM_TEST_FLAGS.join(' ')}`)
  })

  it('a failing assertion with a message fails its file at once', { timeout: HUNG_MS + 10_000 }, async (t) => {
    const file = path.join(await fixtureDir(t), 'with-message.test.ts')
    await writeFile(file, longTestFile(WITH_MESSAGE))
    const run = startRunner(t, NPM_TEST_FLAGS, [file])
    const { code } = await run.ended(HUNG_MS)
    assert.equal(code, 1, `the run fails:\n${run.output()}`)
    assert.match(run.output(), /# pass 600\n# fail 1\n# cancelled 0/, 'the other 600 tests pass')
    assert.match(run.output(), /error: 'value is 2'/, 'the failure carries the message')
  })

  it('a failing assertion without a message spins in Node 20 under tsx: why test/assertions.test.ts exists', {
    timeout: HUNG_MS + 10_000,
    skip: process.versions.node.startsWith('20.') ? false : 'the spin is known on Node 20',
  }, async (t) => {
    const dir = await fixtureDir(t)
    const file = path.join(dir, 'without-message.test.ts')
    const marker = path.join(dir, 'reached')
    await writeFile(file, longTestFile(WITHOUT_MESSAGE))
    // Run as a plain script: no runner timeout to cut it short.
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, env: { ...childEnv(), PATCHWIRE_MARKER: marker }, stdio: 'ignore' })
    t.after(() => { child.kill('SIGKILL') })
    await until(() => existsSync(marker) || child.exitCode !== null, HUNG_MS, 'the fixture to reach its assertion')
    assert.ok(existsSync(marker), `the fixture reached its assertion before it exited (${String(child.exitCode)})`)
    // A failing assertion takes microseconds; two seconds later, the process
    // still runs (Node re-parses the file in a loop; here it still ran after 60 s).
    await new Promise((resolve) => setTimeout(resolve, 2000))
    assert.equal(child.exitCode, null, 'the process is still busy with the failed assertion')
  })

  it('a file whose tests are done but that leaks a handle fails within seconds, naming it, after its own after hook ran', { timeout: HUNG_MS + 10_000 }, async (t) => {
    const dir = await fixtureDir(t)
    const file = path.join(dir, 'leaks.test.ts')
    const marker = path.join(dir, 'after-hook-done')
    await writeFile(file, [
      "import assert from 'node:assert/strict'",
      "import { writeFileSync } from 'node:fs'",
      "import { after, it } from 'node:test'",
      "it('passes and leaves a timer', () => {",
      '  setInterval(() => undefined, 1000)',
      "  assert.equal(1 + 1, 2, 'two')",
      '})',
      '// A clean-up that takes a while: the guard lets it finish.',
      `after(async () => { await new Promise((resolve) => setTimeout(resolve, 1000)); writeFileSync(${JSON.stringify(marker)}, 'done') })`,
    ].join('\n'))
    const run = startRunner(t, NPM_TEST_FLAGS, [file])
    // Well before --test-timeout: the guard ends it, not the timeout.
    const { code } = await run.ended(HUNG_MS)
    assert.equal(code, 1, `the run fails:\n${run.output()}`)
    assert.match(run.output(), /ok 1 - passes and leaves a timer/, 'its test passed')
    assert.match(run.output(), /leak-guard: .* held open by: .*Timeout/, 'the failure names the leaked timer')
    assert.doesNotMatch(run.output(), /timed out/, 'the guard ended it, not the timeout')
    assert.ok(existsSync(marker), 'its after hook ran to its end')
  })

  it('a file that ends cleanly passes with every result, however many', { timeout: HUNG_MS + 10_000 }, async (t) => {
    const file = path.join(await fixtureDir(t), 'clean.test.ts')
    await writeFile(file, longTestFile("assert.ok((value as number) === 1, 'value is 1')"))
    const run = startRunner(t, NPM_TEST_FLAGS, [file])
    const { code } = await run.ended(HUNG_MS)
    assert.equal(code, 0, `the run passes:\n${run.output()}`)
    // --test-force-exit could drop the last results of a file on Node 20.
    assert.match(run.output(), /# tests 601\n# suites 1\n# pass 601\n/, 'all 601 results reach the report')
  })

  it('a test that never settles and a file that blocks its event loop are cancelled at --test-timeout, and the run goes on to its end', { timeout: HUNG_MS + 10_000 }, async (t) => {
    const dir = await fixtureDir(t)
    const never = path.join(dir, 'never.test.ts')
    const blocks = path.join(dir, 'blocks.test.ts')
    const passes = path.join(dir, 'passes.test.ts')
    await writeFile(never, [
      "import { it } from 'node:test'",
      "it('never settles', () => new Promise(() => { setInterval(() => undefined, 1000) }))",
    ].join('\n'))
    await writeFile(blocks, [
      "import { it } from 'node:test'",
      "it('blocks the event loop', () => { for (;;) { /* for good */ } })",
    ].join('\n'))
    await writeFile(passes, [
      "import assert from 'node:assert/strict'",
      "import { it } from 'node:test'",
      "it('passes', () => { assert.equal(1 + 1, 2, 'two') })",
    ].join('\n'))
    const run = startRunner(t, FLAGS_WITH_SHORT_TIMEOUT, [never, blocks, passes])
    const { code } = await run.ended(HUNG_MS)
    assert.equal(code, 1, `the run fails:\n${run.output()}`)
    assert.match(run.output(), /# pass 1\n# fail 0\n# cancelled 2/, 'the two stuck files are cancelled, the third passes')
    assert.equal((run.output().match(new RegExp(`test timed out after ${SHORT_TIMEOUT_MS}ms`, 'g')) ?? []).length, 2, 'both for the timeout')
    // The runner killed the blocked file's process: nothing of the run is left.
    await until(async () => (await groupMembers(run.process.pid as number)).length === 0, 5000, 'every process of the run to end')
  })
})

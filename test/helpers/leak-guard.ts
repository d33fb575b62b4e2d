/**
 * Loaded into every test file's process by `npm test` (`--import`): a file
 * whose tests are all done but whose process stays alive (a leaked timer,
 * socket, server or child process) fails `LEAK_GRACE_MS` later, naming
 * what holds it, instead of holding the whole run until `--test-timeout`.
 * A leak is a defect of the test; this makes it show.
 *
 * Not `--test-force-exit`: on Node 20 it exits as soon as the report
 * stream closes, before the last results of the file have reached the
 * runner, which then reports fewer tests than ran without a word (seen
 * here: 219 of 234; nodejs/node#64833).
 */
import { after } from 'node:test'

/**
 * How long a file's process may take to end once its tests are done. The
 * file's own top-level `after` hooks run within it (this hook, registered
 * first, runs before them); closing sockets and child processes takes
 * milliseconds.
 */
const LEAK_GRACE_MS = 10_000

// Only in a test file's own process under the runner (which sets
// NODE_TEST_CONTEXT for it): not in the runner, not under plain `node`.
if (process.env['NODE_TEST_CONTEXT']?.startsWith('child') === true) {
  after(() => {
    const timer = setTimeout(() => {
      // Ref'ed handles only (this timer is not one), the standard streams among them.
      const held = process.getActiveResourcesInfo().join(', ')
      process.stderr.write(`leak-guard: the tests of this file ended ${LEAK_GRACE_MS} ms ago, but its process is still held open by: ${held} (its stdio pipes included); the file fails. Close what a test opens (t.after), or unref it.\n`)
      process.exit(1)
    }, LEAK_GRACE_MS)
    timer.unref()
  })
}

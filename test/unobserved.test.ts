/**
 * reportUnobserved: a rejection nobody handles goes to the report callback
 * instead of becoming an unhandled rejection; a handled one does not.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { reportUnobserved } from '../src/broker/unobserved.ts'

const boom = new Error('boom')

/** Resolves after two macrotasks: past the one the helper waits. */
function later(): Promise<void> {
  return new Promise((resolve) => setTimeout(() => setTimeout(resolve, 1), 1))
}

describe('reportUnobserved', () => {
  it('resolves with the value, reporting nothing', async () => {
    const reports: unknown[] = []
    assert.equal(await reportUnobserved(Promise.resolve('id-1'), (reason) => reports.push(reason)), 'id-1', 'resolves with the wrapped value')
    assert.deepEqual(reports, [], 'nothing reported for a fulfilled promise')
  })

  it('is a Promise', () => {
    const wrapped = reportUnobserved(Promise.resolve(1), () => undefined)
    assert.ok(wrapped instanceof Promise, 'reportUnobserved returns a Promise')
  })

  for (const [how, observe] of [
    ['await', async (p: Promise<unknown>) => { try { await p } catch (error) { return error } return undefined }],
    ['catch', (p: Promise<unknown>) => p.catch((error: unknown) => error)],
    ['then(_, onRejected)', (p: Promise<unknown>) => p.then(undefined, (error: unknown) => error)],
    ['Promise.allSettled', async (p: Promise<unknown>) => ((await Promise.allSettled([p]))[0] as PromiseRejectedResult).reason],
  ] as const) {
    it(`rejects an observed promise (${how}) and does not report it`, async () => {
      const reports: unknown[] = []
      const seen = await observe(reportUnobserved(Promise.reject(boom), (reason) => reports.push(reason)))
      assert.equal(seen, boom, `the ${how} observer sees the rejection reason`)
      await later()
      assert.deepEqual(reports, [], `nothing reported when observed by ${how}`)
    })
  }

  it('counts a handler attached later in the same turn, after the rejection settled the inner promise', async () => {
    const reports: unknown[] = []
    const wrapped = reportUnobserved(Promise.reject(boom), (reason) => reports.push(reason))
    await Promise.resolve()
    await Promise.resolve()
    await assert.rejects(wrapped, boom, 'the late handler sees the rejection reason')
    await later()
    assert.deepEqual(reports, [], 'nothing reported when a handler came later in the same turn')
  })

  it('reports a rejection nobody observed, once, without an unhandled rejection', async () => {
    const reports: unknown[] = []
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const wrapped = reportUnobserved(Promise.reject(boom), (reason) => reports.push(reason))
      await later()
      assert.deepEqual(reports, [boom], 'the unobserved rejection reported once')
      await later()
      assert.deepEqual(unhandled, [], 'no unhandledRejection')
      // A handler attached afterwards still sees the failure.
      await assert.rejects(wrapped, boom, 'a handler attached afterwards still sees the rejection')
      assert.deepEqual(reports, [boom], 'still reported once after the late handler')
    } finally {
      process.removeListener('unhandledRejection', onUnhandled)
    }
  })
})

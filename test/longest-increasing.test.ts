/**
 * The longest increasing run diff uses to keep most items of a keyed array
 * in place and move the fewest: checked against a slow, obviously right
 * search on generated sequences.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { longestIncreasing } from '../src/client/longest-increasing.ts'
import { seededRandom } from './helpers/random.ts'

/** The length of a longest strictly increasing run of the non-negative entries, by dynamic programming (O(n²)). */
function slowLength(sequence: readonly number[]): number {
  const best = sequence.map(() => 0)
  let longest = 0
  for (let j = 0; j < sequence.length; j++) {
    const v = sequence[j] as number
    if (v < 0) continue
    best[j] = 1
    for (let i = 0; i < j; i++) {
      if ((sequence[i] as number) >= 0 && (sequence[i] as number) < v) best[j] = Math.max(best[j] as number, (best[i] as number) + 1)
    }
    longest = Math.max(longest, best[j] as number)
  }
  return longest
}

/** The marked entries, checked to be a strictly increasing run of non-negative entries. */
function marked(sequence: readonly number[], marks: Uint8Array): number[] {
  const run = sequence.filter((_, j) => marks[j] === 1)
  assert.ok(run.every((v, i) => v >= 0 && (i === 0 || v > (run[i - 1] as number))), `${JSON.stringify(run)} is a strictly increasing run of ${JSON.stringify(sequence)}`)
  return run
}

describe('longestIncreasing', () => {
  it('marks a longest run', () => {
    const table: Array<[number[], number[]]> = [
      [[], []],
      [[0, 1, 2], [0, 1, 2]],
      [[-1, 0, -1, 1], [0, 1]],
      [[2, 1, 0], [0]],
      [[1, 2, 0, 3], [1, 2, 3]],
      [[3, 0, 1, 2], [0, 1, 2]],
      [[-1, -1], []],
    ]
    for (const [sequence, run] of table) {
      const marks = longestIncreasing(sequence)
      assert.equal(marks.length, sequence.length, 'one mark per entry')
      assert.deepEqual(marked(sequence, marks), run, JSON.stringify(sequence))
    }
  })

  it('finds a run as long as the slow search on generated sequences', () => {
    const random = seededRandom(6)
    for (let round = 0; round < 300; round++) {
      const n = Math.floor(random() * 40)
      // A permutation of positions, some items new (-1), a few swapped: as a keyed diff sees them.
      const sequence = Array.from({ length: n }, (_, i) => (random() < 0.2 ? -1 : i))
      for (let swaps = n === 0 ? 0 : Math.floor(random() * 5); swaps > 0; swaps--) {
        const a = Math.floor(random() * n)
        const b = Math.floor(random() * n)
        ;[sequence[a], sequence[b]] = [sequence[b] as number, sequence[a] as number]
      }
      assert.equal(marked(sequence, longestIncreasing(sequence)).length, slowLength(sequence), `round ${round}: ${JSON.stringify(sequence)}`)
    }
  })
})

/**
 * Marks (1) the entries of a longest strictly increasing subsequence of the
 * non-negative entries of `sequence` (patience sorting, O(n log n)): diff
 * keeps those items of a keyed array where they are, and moves the others.
 * @param sequence - for each item of the new array, its position in the old
 * one, or -1 for a new item (never part of the run)
 * @returns one mark per entry: 1 in the run, 0 outside it
 * @internal
 */
export function longestIncreasing(sequence: number[]): Uint8Array {
  const marks = new Uint8Array(sequence.length)
  // Mostly nothing moved: then the run is all of them.
  let last = -1
  let k = 0
  for (; k < sequence.length; k++) {
    const v = sequence[k] as number
    if (v < 0) continue
    if (v < last) break
    last = v
  }
  if (k === sequence.length) return marks.map((_, i) => ((sequence[i] as number) >= 0 ? 1 : 0))
  // tails[l]: the position of the smallest last entry of a run of length l + 1.
  const tails: number[] = []
  const previous = new Int32Array(sequence.length)
  for (let j = 0; j < sequence.length; j++) {
    const v = sequence[j] as number
    if (v < 0) continue
    let low = 0
    let high = tails.length
    while (low < high) {
      const mid = (low + high) >> 1
      if ((sequence[tails[mid] as number] as number) < v) low = mid + 1
      else high = mid
    }
    previous[j] = low > 0 ? (tails[low - 1] as number) : -1
    tails[low] = j
  }
  for (let j = tails.length > 0 ? (tails[tails.length - 1] as number) : -1; j >= 0; j = previous[j] as number) marks[j] = 1
  return marks
}

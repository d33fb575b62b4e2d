/**
 * Publishing at a fixed rate, as the rate-sweep and reconnect-storm benches
 * need it, in the server process (in-process broker) or in the Redis
 * publisher process. Publish k is due at `start + k / rate`; a timer wakes
 * for the next due publish and makes every publish then due, in one
 * callback, so that a process that falls behind catches up in bursts (which
 * is what a busy publisher does) instead of drifting. Latency is measured
 * from the due time, never from the late call, so that falling behind shows
 * (no coordinated omission).
 */
import type { RateReport } from './protocol.js'

/** One rate phase at a time. */
export class RatePublisher {
  #timer: NodeJS.Timeout | undefined
  #finish: (() => void) | undefined

  /** Whether a phase runs. */
  get running(): boolean {
    return this.#finish !== undefined
  }

  /**
   * Starts a phase; a phase already running is stopped first (and reported).
   * @param firstSeq - the seq of the first publish
   * @param rate - publishes per second
   * @param durationMs - how long; 0 until {@link stop}
   * @param publish - makes one publish
   * @param done - gets the phase's report once it ends
   */
  start(firstSeq: number, rate: number, durationMs: number, publish: (seq: number) => void, done: (report: RateReport) => void): void {
    this.stop()
    const periodNs = 1e9 / rate
    const startT = process.hrtime.bigint()
    const cpu = process.cpuUsage()
    const total = durationMs === 0 ? Infinity : Math.max(1, Math.round((durationMs / 1000) * rate))
    const late: number[] = []
    let count = 0
    let lastCpu = cpu
    const finish = (): void => {
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#finish = undefined
      const sorted = late.sort((a, b) => a - b)
      const used = { user: lastCpu.user - cpu.user, system: lastCpu.system - cpu.system }
      done({
        type: 'rate',
        firstSeq,
        count,
        startT,
        periodNs,
        lateMaxMs: sorted[sorted.length - 1] ?? 0,
        lateP99Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0,
        cpuUs: used.user + used.system,
      })
    }
    const tick = (): void => {
      const now = process.hrtime.bigint()
      const elapsed = Number(now - startT)
      while (count < total && count * periodNs <= elapsed) {
        late.push((elapsed - count * periodNs) / 1e6)
        publish(firstSeq + count)
        count++
      }
      lastCpu = process.cpuUsage()
      if (count >= total) {
        finish()
        return
      }
      const wait = (count * periodNs - Number(process.hrtime.bigint() - startT)) / 1e6
      this.#timer = setTimeout(tick, Math.max(0, Math.floor(wait)))
    }
    this.#finish = finish
    tick()
  }

  /** Ends the running phase now, which reports it; does nothing when none runs. */
  stop(): void {
    this.#finish?.()
  }
}

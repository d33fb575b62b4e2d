let tick = 0
let tickScheduled = false

function advanceTick(): void {
  tick++
  tickScheduled = false
}

/**
 * A number that changes once per event-loop turn in which it was asked for:
 * what "written in the same turn" means for a stream's backlog accounting
 * (see `Stream.send`), and for a Fetch request, whether its client could
 * have left yet. One `setImmediate` per turn that asks, whatever the number
 * of streams.
 * @internal
 */
export function currentTick(): number {
  if (!tickScheduled) {
    tickScheduled = true
    setImmediate(advanceTick)
  }
  return tick
}

import type { StreamEvent } from './shared-stream.js'

/**
 * The `debug` option of `subscribe`: one console line per frame, state
 * change and reconnect of a subscription, for a developer who wants to see
 * what arrives without opening the network panel (which shows an event
 * stream's frames only in some browsers).
 */

/**
 * Wraps a subscription's receiver so that it logs each event first.
 * @param topic - the subscription's topic, at the start of each line
 * @param receive - the subscription's own receiver
 * @param log - where the lines go
 * @returns the logging receiver
 * @internal
 */
export function debugReceiver(topic: string, receive: (event: StreamEvent) => void, log: (...line: unknown[]) => void = console.log): (event: StreamEvent) => void {
  let opened = false
  return (event) => {
    log(`[patchwire] ${topic}: ${describe(event, opened)}`)
    if (event.type === 'state' && event.state === 'open') opened = true
    receive(event)
  }
}

function describe(event: StreamEvent, opened: boolean): string {
  const from = event.main ? '' : ' (catch-up stream)'
  switch (event.type) {
    case 'patch':
      return `patch ${event.id}${from} ${JSON.stringify(event.ops)}`
    case 'snapshot':
      return `snapshot${from} ${event.data.length > 200 ? `${event.data.slice(0, 200)}…` : event.data}`
    case 'reset':
      return `reset${from} (${event.reason})`
    case 'ready':
      return `ready at ${event.id}${from}`
    case 'revoked':
      return `revoked${from}`
    case 'state': {
      const what = event.state === 'connecting' && opened ? 'reconnecting' : event.state
      return `state ${what}${event.message === undefined ? '' : `: ${event.message}`}`
    }
    case 'error':
      return `error ${event.code}: ${event.message}`
  }
}

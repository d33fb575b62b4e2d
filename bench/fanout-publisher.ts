/**
 * The publisher process of the benches that run K servers behind Redis
 * (`npm run bench -- --processes K`, the reconnect storm's `--processes K`):
 * publishes each broadcast, or a rate phase, through the Redis broker, from
 * outside every server, as a real deployment would. Not meant to be run by
 * hand; the benches spawn it as
 *
 *   node --import tsx bench/fanout-publisher.ts --redis-url URL --redis-prefix P
 *
 * It reports `process.hrtime.bigint()` (CLOCK_MONOTONIC, shared with the
 * servers and clients) read just before each `publish` call, the start of
 * that broadcast's publish → last-delivery latency.
 */
import { parseArgs } from 'node:util'
import { createClient } from 'redis'
import { createRedisBroker } from '../src/adapters/redis/index.ts'
import { position, publish } from '../src/index.js'
import { benchOps, TOPIC } from './protocol.js'
import type { PublisherCommand, PublisherReport } from './protocol.js'
import { reportToOrchestrator } from './peer.js'
import { RatePublisher } from './rate-publisher.js'

const { values: args } = parseArgs({ options: { 'redis-url': { type: 'string' }, 'redis-prefix': { type: 'string' } } })

const send = reportToOrchestrator<PublisherReport>()

const url = args['redis-url']
if (url === undefined) throw new Error('fanout-publisher needs --redis-url')
const publisher = createClient({ url })
const subscriber = publisher.duplicate()
await Promise.all([publisher.connect(), subscriber.connect()])
const broker = createRedisBroker({ publisher, subscriber, prefix: args['redis-prefix'] ?? 'bench:' })

const rate = new RatePublisher()
const failed = (seq: number) => (error: unknown): void => send({ type: 'error', message: `publish ${seq} failed: ${String(error)}` })

process.on('message', (command: PublisherCommand) => {
  switch (command.type) {
    case 'broadcast': {
      const t0 = process.hrtime.bigint()
      publish(broker, TOPIC, benchOps(command.seq)).then(() => send({ type: 'published', seq: command.seq, t0 }), failed(command.seq))
      break
    }
    case 'rate':
      rate.start(command.firstSeq, command.rate, command.durationMs, (seq) => void publish(broker, TOPIC, benchOps(seq)).catch(failed(seq)), send)
      break
    case 'stop-rate':
      rate.stop()
      break
    case 'position':
      position(broker, TOPIC).then((id) => send({ type: 'position', id }), failed(0))
      break
  }
})
send({ type: 'ready' })

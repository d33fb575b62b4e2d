/**
 * The publisher process of the fan-out bench's `--processes K` mode:
 * publishes each broadcast through the Redis broker, from outside every
 * server, as a real deployment would. Not meant to be run by hand;
 * `npm run bench -- --processes K` spawns it as
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
import { publish } from '../src/index.js'
import { benchOps, TOPIC } from './protocol.js'
import type { PublisherCommand, PublisherReport } from './protocol.js'
import { reportToOrchestrator } from './peer.js'

const { values: args } = parseArgs({ options: { 'redis-url': { type: 'string' }, 'redis-prefix': { type: 'string' } } })

const send = reportToOrchestrator<PublisherReport>()

const publisher = createClient({ url: args['redis-url'] ?? 'redis://127.0.0.1:6379' })
const subscriber = publisher.duplicate()
await Promise.all([publisher.connect(), subscriber.connect()])
const broker = createRedisBroker({ publisher, subscriber, prefix: args['redis-prefix'] ?? 'bench:' })

process.on('message', (command: PublisherCommand) => {
  const t0 = process.hrtime.bigint()
  publish(broker, TOPIC, benchOps(command.seq)).then(
    () => send({ type: 'published', seq: command.seq, t0 }),
    (error: unknown) => send({ type: 'error', message: `publish ${command.seq} failed: ${String(error)}` }),
  )
})
send({ type: 'ready' })

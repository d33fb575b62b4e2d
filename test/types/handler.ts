/**
 * Type-level cases for the server API: handler options and stats, the
 * handler on every server type, and the `Broker` interface. Compiled by
 * test/types.test.ts, never run.
 */
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import {
  createBroker,
  createHandler,
  defaultBroker,
  position,
  publish,
  PatchwireError,
  type Broker,
  type BrokerListener,
  type BrokerOptions,
  type Handler,
  type HandlerOptions,
  type HandlerStats,
  type PatchwireErrorCode,
  type NodeRequest,
  type ResetReason,
  type NodeResponse,
  type Unsubscribe,
} from '../../src/index.ts'

// Every option, with its type.
const options: HandlerOptions = {
  broker: createBroker(),
  heartbeatMs: 15_000,
  retryMs: 3_000,
  topicPrefix: 'dashboard:',
  authorize: async (req, topic) => req.headers.cookie !== undefined && topic.endsWith(':42'),
  path: '/dashboard/__events',
  maxBufferedBytes: 1 << 20,
  snapshot: async (req, topic) => ({ topic, user: req.headers.cookie }),
  maxTopics: 16,
  maxPending: 1024,
  pendingTimeoutMs: 10_000,
  lingerMs: 30_000,
  maxTopicLength: 256,
  onError: (error) => {
    error.code satisfies PatchwireErrorCode
  },
}
createHandler({ authorize: () => true })
const events: Handler = createHandler(options)

// The handler fits every node server's request listener as is.
http.createServer(events)
https.createServer({}, events)
http2.createServer(events)
http2.createSecureServer({ allowHTTP1: true }, events)
http.createServer((req, res) => events(req, res, () => res.end()))
http2.createSecureServer({}, (req, res) => events(req, res, (error) => res.writeHead(error === undefined ? 404 : 500).end()))
events satisfies (req: NodeRequest, res: NodeResponse) => void

const stats: HandlerStats = events.stats()
stats.connections satisfies number
stats.topics satisfies number
stats.dropped satisfies number
stats.resets['broker-gap'] satisfies number
events.close() satisfies Promise<void>
events.close({ reconnectSpreadMs: 0 }) satisfies Promise<void>

// A broker of one's own implements the interface.
const listeners = new Map<string, BrokerListener>()
const custom: Broker = {
  publish: async (topic, payload) => listeners.get(topic)?.(payload),
  subscribe: (topic, listener, onGap) => {
    listeners.set(topic, listener)
    onGap?.()
    const stop: Unsubscribe = () => listeners.delete(topic)
    return stop
  },
}
createHandler({ broker: custom })
publish(custom, 'room', [['replace', '/n', 1]]) satisfies Promise<string>
publish(defaultBroker, 'room', []) satisfies Promise<string>
position('room') satisfies Promise<string>
position(defaultBroker, 'room') satisfies Promise<string>
// @ts-expect-error: history is a broker option now
createHandler({ history: 10 })
const brokerOptions: BrokerOptions = { history: 1000, historyBytes: 64 << 20, historyMs: 300_000, onError: (error) => error instanceof PatchwireError }
createBroker(brokerOptions)
const reason: ResetReason = 'history-exceeded'
reason satisfies string

// @ts-expect-error unknown option
createHandler({ heartbeat: 1000 })
// @ts-expect-error heartbeatMs is a number of milliseconds
createHandler({ heartbeatMs: '15s' })
// @ts-expect-error maxBufferedBytes is a number of bytes
createHandler({ maxBufferedBytes: '1mb' })
// @ts-expect-error history is a number of frames; `false` is not how to turn it off (use 0)
createHandler({ history: false })
// @ts-expect-error authorize answers a boolean
createHandler({ authorize: () => 'yes' })
// @ts-expect-error path is a string
createHandler({ path: /events/ })
// @ts-expect-error the broker must be a Broker
createHandler({ broker: {} })
// @ts-expect-error stats are numbers
events.stats().connections satisfies string
// @ts-expect-error the broker carries payloads already serialised, not ops
custom.publish('room', [['add', '/a', 1]])
// @ts-expect-error subscribe must return an Unsubscribe
const noStop: Broker = { publish: async () => {}, subscribe: () => undefined }
// @ts-expect-error publish needs ops
publish('room')
// @ts-expect-error an unknown reset reason
const badReason: ResetReason = 'timeout'
// @ts-expect-error an unknown error code
const badCode: PatchwireErrorCode = 'ERR_NOPE'

export { noStop, badReason, badCode }

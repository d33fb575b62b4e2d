/**
 * The Prometheus recipe of docs/operations.md (examples/metrics/prometheus.ts),
 * run as it is against a real handler: what stats() counts reaches a scrape.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Registry } from 'prom-client'
import { registerPatchwireMetrics } from '../examples/metrics/prometheus.ts'
import { createBroker, publish } from '../src/index.ts'
import { startServer, until } from './helpers/server.ts'
import { openRaw, openStream } from './helpers/sse-client.ts'

/** One sample's value from Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('Prometheus recipe', () => {
  it('exposes open streams as gauges and what happened as counters, growing across scrapes', async (t) => {
    const broker = createBroker()
    const server = await startServer(t, { broker, lingerMs: 0 })
    const registry = new Registry()
    registerPatchwireMetrics(server.handler, registry)
    const client = await openStream(t, server.port, 'a')
    await publish(broker, 'a', [['replace', '/n', 1]])
    await client.waitForEvents(2)
    const refused = await openRaw(t, server.port, '/')
    await until(() => refused.response !== undefined, 3000, 'the refusal')
    const first = await registry.metrics()
    assert.equal(sample(first, 'patchwire_connections'), 1, 'first scrape: one open stream')
    assert.equal(sample(first, 'patchwire_topics'), 1, 'first scrape: one topic')
    assert.equal(sample(first, 'patchwire_messages_total'), 1, 'first scrape: one message')
    assert.equal(sample(first, 'patchwire_frames_total'), 1, 'first scrape: one frame')
    assert.equal(sample(first, 'patchwire_refused_total{status="400"}'), 1, 'first scrape: one 400 refusal')
    assert.ok((sample(first, 'patchwire_bytes_total') ?? 0) > 0, `patchwire_bytes_total counts the bytes written, got ${String(sample(first, 'patchwire_bytes_total'))}`)
    await publish(broker, 'a', [['replace', '/n', 2]])
    const back = await openStream(t, server.port, 'a', ['Last-Event-ID: junk'])
    await client.waitForEvents(3)
    const second = await registry.metrics()
    assert.equal(sample(second, 'patchwire_messages_total'), 2, 'second scrape: the message count grew to 2')
    assert.equal(sample(second, 'patchwire_connections'), 2, 'second scrape: two open streams')
    assert.equal(sample(second, 'patchwire_resets_total{reason="malformed-id"}'), 1, 'second scrape: one malformed-id reset')
    back.destroy()
  })

  it('counts streams ended by expiry and by revocation, and refusals over maxStreamsPerIdentity', async (t) => {
    const server = await startServer(t, {
      broker: createBroker(), maxStreamsPerIdentity: 1,
      identify: (req) => (req.url?.includes('user=u') === true ? 'u' : undefined),
      authorize: (_req, topic) => (topic === 'brief' ? { until: Date.now() + 100 } : true),
    })
    const registry = new Registry()
    registerPatchwireMetrics(server.handler, registry)
    await registry.metrics()
    const revoked = await openStream(t, server.port, 'doc', [], '/?user=u')
    const over = await openStream(t, server.port, 'doc', [], '/?user=u')
    assert.equal(over.response?.status, 429, 'the second stream of the identity is refused')
    const brief = await openStream(t, server.port, 'brief')
    await brief.waitForClose()
    assert.equal(server.handler.revoke({ topic: 'doc' }), 1, 'one stream revoked')
    await revoked.waitForClose()
    const text = await registry.metrics()
    assert.equal(sample(text, 'patchwire_expired_total'), 1, 'the expired stream')
    assert.equal(sample(text, 'patchwire_revoked_total'), 1, 'the revoked stream')
    assert.equal(sample(text, 'patchwire_refused_total{status="429"}'), 1, 'the 429')
  })
})

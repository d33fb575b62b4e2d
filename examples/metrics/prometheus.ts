/**
 * Exposes a patchwire handler's `stats()` to Prometheus with prom-client:
 * gauges for what is open now, counters for what happened since start.
 * docs/operations.md, "Metrics", shows this file; test/prometheus.test.ts
 * runs it.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { FetchHandler, Handler, HandlerStats } from 'patchwire'

/** Registers patchwire's metrics on `registry`; they are read from `handler.stats()` at each scrape. */
export function registerPatchwireMetrics(handler: Handler | FetchHandler, registry: Registry): void {
  let stats: HandlerStats = handler.stats()
  let last: HandlerStats = stats
  // Read once per scrape, before the metrics below collect.
  const read = (): void => {
    last = stats
    stats = handler.stats()
  }
  const gauge = (name: string, help: string, value: (s: HandlerStats) => number, first = false): void => {
    new Gauge({
      name, help, registers: [registry],
      collect() {
        if (first) read()
        this.set(value(stats))
      },
    })
  }
  // Counters grow by what stats() grew since the previous scrape.
  const counter = (name: string, help: string, value: (s: HandlerStats) => number): void => {
    new Counter({
      name, help, registers: [registry],
      collect() {
        const delta = value(stats) - value(last)
        if (delta > 0) this.inc(delta)
      },
    })
  }
  const labelled = (name: string, help: string, label: string, values: (s: HandlerStats) => Record<string, number>): void => {
    new Counter({
      name, help, labelNames: [label], registers: [registry],
      collect() {
        const before = values(last)
        for (const [key, value] of Object.entries(values(stats))) {
          const delta = value - (before[key] ?? 0)
          if (delta > 0) this.inc({ [label]: key }, delta)
        }
      },
    })
  }
  gauge('patchwire_connections', 'Open event streams.', (s) => s.connections, true)
  gauge('patchwire_topics', 'Topics with a broker subscription, lingering ones included.', (s) => s.topics)
  gauge('patchwire_pending', 'Requests waiting for authorize, the broker or snapshot.', (s) => s.pending)
  counter('patchwire_messages_total', 'Messages received from the broker.', (s) => s.messages)
  counter('patchwire_frames_total', 'Patch frames written, once per stream.', (s) => s.frames)
  counter('patchwire_bytes_total', 'Bytes written to streams.', (s) => s.bytes)
  counter('patchwire_replays_total', 'Topics resumed exactly from a Last-Event-ID.', (s) => s.replays)
  counter('patchwire_snapshots_total', 'Snapshot frames sent.', (s) => s.snapshots)
  counter('patchwire_dropped_total', 'Streams cut off as slow readers.', (s) => s.dropped)
  counter('patchwire_expired_total', 'Streams ended as their access expired (authorize until).', (s) => s.expired)
  counter('patchwire_revoked_total', 'Streams ended by a revocation.', (s) => s.revoked)
  labelled('patchwire_resets_total', 'Reset frames sent, by reason.', 'reason', (s) => s.resets)
  labelled('patchwire_refused_total', 'Requests answered with an error status, by status.', 'status', (s) => s.refused)
}

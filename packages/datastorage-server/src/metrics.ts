// SPDX-License-Identifier: Apache-2.0
/*
 * The server's metrics, through the OTel Metrics API (seconds for durations, OTel naming):
 *
 *   http.server.request.duration          histogram, s    http.request.method, http.route,
 *                                                          http.response.status_code
 *   kubernaut.datastorage.events.written  counter         kubernaut.datastorage.write.path
 *                                                          (direct | dlq)
 *   kubernaut.datastorage.events.queued   counter         events answered 202 (queued)
 *   kubernaut.datastorage.dlq.dead_lettered counter       entries moved to the dead stream
 *   kubernaut.datastorage.dlq.entries / .events / .size (By) / .oldest_age (s)   gauges
 *   db.client.connection.count            gauge           db.client.connection.state
 *   db.client.connection.max / .pending_requests          gauges
 *
 * On the management port (`@kubernaut/datastorage-contract/management`, shared with the audit
 * OTLP bridge) they are served in the Prometheus text format (@opentelemetry/exporter-prometheus:
 * dots become underscores, counters end in _total); the README lists the Prometheus names.
 */
import { createNoopMeter, type Meter, type MeterProvider } from '@opentelemetry/api';
import type { DlqSnapshot } from './dlq.ts';

/** Connection-pool figures of a database backend. */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

// The semantic conventions' advice for http.server.request.duration.
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** The instruments the server records into. */
export class ServerMetrics {
  readonly #duration;
  readonly #written;
  readonly #queued;
  readonly #deadLettered;

  constructor(
    meter: Meter,
    sources: { dlq?: () => DlqSnapshot | undefined; pool?: () => PoolStats | undefined },
  ) {
    this.#duration = meter.createHistogram('http.server.request.duration', {
      description: 'Duration of HTTP server requests.',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.#written = meter.createCounter('kubernaut.datastorage.events.written', {
      description: 'Audit events committed to the database.',
      unit: '{event}',
    });
    this.#queued = meter.createCounter('kubernaut.datastorage.events.queued', {
      description: 'Audit events accepted into the dead-letter queue (answered 202).',
      unit: '{event}',
    });
    this.#deadLettered = meter.createCounter('kubernaut.datastorage.dlq.dead_lettered', {
      description: 'Dead-letter queue entries moved to the dead stream (never stored).',
      unit: '{entry}',
    });
    const dlq = sources.dlq;
    if (dlq) {
      const gauge = (
        name: string,
        description: string,
        unit: string,
        pick: (s: DlqSnapshot) => number,
      ) =>
        meter.createObservableGauge(name, { description, unit }).addCallback((r) => {
          const s = dlq();
          if (s) r.observe(pick(s));
        });
      gauge(
        'kubernaut.datastorage.dlq.entries',
        'Entries in the dead-letter queue.',
        '{entry}',
        (s) => s.entries,
      );
      gauge(
        'kubernaut.datastorage.dlq.events',
        'Events in the dead-letter queue.',
        '{event}',
        (s) => s.events,
      );
      gauge(
        'kubernaut.datastorage.dlq.size',
        'Bytes of events in the dead-letter queue.',
        'By',
        (s) => s.bytes,
      );
      gauge(
        'kubernaut.datastorage.dlq.oldest_age',
        'Age of the oldest entry of the dead-letter queue (0 when empty).',
        's',
        (s) => s.oldestAgeSeconds,
      );
    }
    const pool = sources.pool;
    if (pool) {
      meter
        .createObservableUpDownCounter('db.client.connection.count', {
          description: 'Connections of the database pool, by state.',
          unit: '{connection}',
        })
        .addCallback((r) => {
          const p = pool();
          if (!p) return;
          r.observe(p.idle, { 'db.client.connection.state': 'idle' });
          r.observe(p.total - p.idle, { 'db.client.connection.state': 'used' });
        });
      meter
        .createObservableUpDownCounter('db.client.connection.max', {
          description: 'Largest number of connections the pool opens.',
          unit: '{connection}',
        })
        .addCallback((r) => {
          const p = pool();
          if (p) r.observe(p.max);
        });
      meter
        .createObservableUpDownCounter('db.client.connection.pending_requests', {
          description: 'Requests waiting for a connection of the pool.',
          unit: '{request}',
        })
        .addCallback((r) => {
          const p = pool();
          if (p) r.observe(p.waiting);
        });
    }
  }

  request(seconds: number, method: string, route: string | undefined, status: number): void {
    this.#duration.record(seconds, {
      'http.request.method': method,
      ...(route === undefined ? {} : { 'http.route': route }),
      'http.response.status_code': status,
    });
  }

  written(events: number, path: 'direct' | 'dlq'): void {
    if (events > 0) this.#written.add(events, { 'kubernaut.datastorage.write.path': path });
  }

  queued(events: number): void {
    this.#queued.add(events);
  }

  deadLettered(entries: number): void {
    this.#deadLettered.add(entries);
  }
}

/** The meter of the server: from `provider`, or one that records nothing. */
export function serverMeter(provider: MeterProvider | undefined): Meter {
  return provider ? provider.getMeter('@kubernaut/datastorage-server') : createNoopMeter();
}

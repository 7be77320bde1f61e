// SPDX-License-Identifier: Apache-2.0
/*
 * The metric list (deploy/metrics.json) against an application's own /metrics: a real
 * LoggerProvider with AuditLogRecordProcessor and KubernautAuditExporter, their MeterProvider read
 * by OTel's Prometheus exporter (the same set-up as the programs' management port), delivering to
 * a fault-injecting DataStorage over loopback. Every `library` metric must be on /metrics as
 * documented (name, seconds and bytes units, labels) — or, for an event counter the scenario did
 * not cause, declared in the source under its documented OTel name — so that a metric renamed,
 * re-unitised or relabelled in the code fails here. The scenario causes the events it can:
 * retries (503), an answer that is not DataStorage's, a contract violation (dead-lettered), a
 * timestamp going backwards within a correlation, a burst larger than the batch queue.
 */
import {
  createPrometheusMetrics,
  type ManagementServer,
  type PrometheusMetrics,
  startManagementServer,
} from '@kubernaut/datastorage-contract/management';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { cleanupTempDirs, FaultServer, scrape, tempDir } from '@kubernaut/test-kit';
import type { MeterProvider } from '@opentelemetry/api';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from './support/deploy.ts';
import { asExpected, statuses } from './support/live.ts';

const library = readMetrics().filter((m) => m.source === 'library');

function record(id: string, correlation: string, options: { valid?: boolean; at?: Date } = {}) {
  return {
    eventName: 'gateway.signal.received',
    ...(options.at ? { timestamp: options.at } : {}),
    body: {
      signal_type: 'alert',
      signal_name: 'HighMemoryUsage',
      namespace: 'payment',
      fingerprint: id,
    },
    attributes: {
      'audit.event.category': 'gateway',
      'audit.event.action': 'received',
      ...(options.valid === false ? {} : { 'audit.event.outcome': 'success' }),
      'audit.correlation.id': correlation,
      'audit.resource.type': 'Signal',
      'audit.resource.id': id,
    },
  };
}

describe('an application’s /metrics against the metric list', () => {
  let ds: FaultServer;
  let metrics: PrometheusMetrics;
  let management: ManagementServer;
  let provider: LoggerProvider;

  beforeAll(async () => {
    ds = await FaultServer.start();
    metrics = createPrometheusMetrics('operate-app');
    management = await startManagementServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      readiness: () => ({ ready: true, detail: 'ready' }),
    });
    const meterProvider = metrics.meterProvider as unknown as MeterProvider;
    const processor = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({
        url: ds.url,
        retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
        meterProvider,
      }),
      spool: { directory: tempDir() },
      maxQueueSize: 16,
      scheduledDelayMillis: 50,
      meterProvider,
      shutdownTimeoutMillis: 2000,
    });
    provider = new LoggerProvider({ processors: [processor] });
  });

  afterAll(async () => {
    await provider?.shutdown();
    await management?.close();
    await metrics?.shutdown();
    await ds?.close();
    cleanupTempDirs();
  });

  it('exposes every library metric as documented, and the events the scenario caused', async () => {
    const logger = provider.getLogger('operate-app');
    // DataStorage unavailable once, then an answer that is not DataStorage's: retried, delivered.
    ds.inject({ type: 'status', status: 503, body: { title: 'Service Unavailable' } });
    ds.inject({ type: 'status', status: 200, rawBody: '<html>ingress</html>' });
    // A burst larger than the batch queue (maxQueueSize 16).
    for (let i = 0; i < 200; i++) logger.emit(record(`burst-${i}`, `burst-${i % 5}`));
    // A contract violation (dead-lettered) and a timestamp going backwards.
    logger.emit(record('invalid', 'invalid', { valid: false }));
    const now = Date.now();
    logger.emit(record('late', 'backwards', { at: new Date(now) }));
    logger.emit(record('early', 'backwards', { at: new Date(now - 5000) }));
    await provider.forceFlush();
    expect(ds.received().length).toBe(202);

    const exposition = await scrape(management.url);
    const found = statuses(library, {
      library: exposition,
      bridge: exposition,
      server: exposition,
    });
    const differences = library
      .filter((m) => !asExpected(m, found.get(m)!.status))
      .map(
        (m) =>
          `${m.prometheus} (appears ${m.appears}): ${found.get(m)!.status} ${found.get(m)!.detail}`,
      );
    expect(differences).toEqual([]);
    // The events caused above are on /metrics, not merely declared.
    const caused = [
      'kubernaut_audit_retries_total',
      'kubernaut_audit_delivery_unexpected_response_total',
      'kubernaut_audit_dead_lettered_total',
      'kubernaut_audit_invalid_total',
      'kubernaut_audit_timestamp_regressed_total',
      'kubernaut_audit_intake_overflowed_total',
    ];
    const notLive = caused.filter(
      (name) => found.get(library.find((m) => m.prometheus === name)!)?.status !== 'live',
    );
    expect(notLive).toEqual([]);
    // Durations in seconds: a delivery over loopback takes well under a second. One
    // observation per accepted request (its oldest event's wait), not one per event.
    const count = exposition.value('kubernaut_audit_delivery_latency_count');
    const sum = exposition.value('kubernaut_audit_delivery_latency_sum');
    const accepted = ds.requests.filter((r) => r.status === 201 || r.status === 202).length;
    expect(accepted).toBeGreaterThan(0);
    expect(count).toBe(accepted);
    expect(sum! / count!).toBeLessThan(5);
  });
});

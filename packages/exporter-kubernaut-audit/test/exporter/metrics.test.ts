// SPDX-License-Identifier: Apache-2.0
/*
 * Exporter metrics through a real MeterProvider and a pull reader: OTel SDK
 * self-observability names and attributes, and the kubernaut.audit.* counters.
 */
import { join } from 'node:path';
import { deliverEvents } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  auditEvent,
  auditEvents,
  cleanupTempDirs,
  FaultServer,
  type TestMetrics,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { metrics as metricsApi } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExporter } from '../../src/exporter/create.ts';

let ds: FaultServer;
let tmpDir: string;
let metrics: TestMetrics;

beforeEach(async () => {
  ds = await FaultServer.start();
  tmpDir = tempDir();
  metrics = testMetrics();
});

afterEach(async () => {
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

describe('exporter metrics', () => {
  it('records exported, inflight, duration, retries and dead letters with component attributes', async () => {
    const e = createExporter(
      {
        url: ds.url,
        meterProvider: metrics.meterProvider,
        retry: { initialDelayMillis: 1, maxDelayMillis: 2 },
      },
      { deadLetterPath: join(tmpDir, 'dl.jsonl'), env: {} },
    );
    ds.inject({ type: 'unavailable' }, 2).inject({ type: 'reject-index', index: 1 });
    const old = auditEvent({
      event_timestamp: new Date(Date.now() - 8 * 24 * 3600 * 1000).toISOString(),
    });
    const r = await deliverEvents(e, [...auditEvents(3), old]);
    expect(r.outcomes).toEqual(['accepted', 'dead_lettered', 'accepted', 'dead_lettered']);

    const component = {
      'otel.component.type': 'kubernaut_audit_exporter',
      'otel.component.name': e.componentName,
    };
    expect(e.componentName).toMatch(/^kubernaut_audit_exporter\/\d+$/);
    const exported = await metrics.points('otel.sdk.exporter.log.exported');
    expect(exported.map((p) => [p.attributes, p.value])).toEqual(
      expect.arrayContaining([
        [component, 2],
        [{ ...component, 'error.type': 'dead_lettered' }, 2],
      ]),
    );
    expect(exported).toHaveLength(2);
    expect(await metrics.sum('otel.sdk.exporter.log.inflight', component)).toBe(0);
    // 2 × 503, 1 × 400, 1 × 201: one duration point per HTTP request.
    expect(await metrics.histogramCount('otel.sdk.exporter.operation.duration', component)).toBe(4);
    expect(
      await metrics.histogramCount('otel.sdk.exporter.operation.duration', {
        'http.response.status_code': 503,
        'error.type': '503',
      }),
    ).toBe(2);
    expect(
      await metrics.histogramCount('otel.sdk.exporter.operation.duration', {
        'http.response.status_code': 201,
      }),
    ).toBe(1);
    const durations = await metrics.points('otel.sdk.exporter.operation.duration');
    expect(durations.every((p) => p.attributes['otel.component.name'] === e.componentName)).toBe(
      true,
    );
    expect(await metrics.sum('kubernaut.audit.retries', { 'kubernaut.audit.reason': '503' })).toBe(
      2,
    );
    expect(
      await metrics.sum('kubernaut.audit.dead_lettered', { 'kubernaut.audit.reason': 'rejected' }),
    ).toBe(1);
    expect(
      await metrics.sum('kubernaut.audit.dead_lettered', { 'kubernaut.audit.reason': 'expired' }),
    ).toBe(1);
    expect(await metrics.sum('kubernaut.audit.duplicates_possible')).toBe(0);
    await e.shutdown();
  });

  it('inflight counts events in flight while a request is pending', async () => {
    ds.inject({ type: 'slow', delayMillis: 200 });
    const e = createExporter(
      { url: ds.url, meterProvider: metrics.meterProvider },
      { deadLetterPath: join(tmpDir, 'dl.jsonl'), env: {} },
    );
    const delivering = deliverEvents(e, auditEvents(5));
    await ds.waitForEvents(5); // stored (slow answer still pending)
    expect(await metrics.sum('otel.sdk.exporter.log.inflight')).toBe(5);
    await delivering;
    expect(await metrics.sum('otel.sdk.exporter.log.inflight')).toBe(0);
    expect(await metrics.sum('otel.sdk.exporter.log.exported')).toBe(5);
    await e.shutdown();
  });

  it('resolves the global MeterProvider at first use, not at construction', async () => {
    const e = createExporter(
      { url: ds.url },
      { deadLetterPath: join(tmpDir, 'dl.jsonl'), env: {} },
    );
    // Registered after construction, as NodeSDK does.
    metricsApi.setGlobalMeterProvider(metrics.meterProvider);
    try {
      await deliverEvents(e, auditEvents(2));
      expect(await metrics.sum('otel.sdk.exporter.log.exported')).toBe(2);
    } finally {
      metricsApi.disable();
      await e.shutdown();
    }
  });
});

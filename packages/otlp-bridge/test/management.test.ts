// SPDX-License-Identifier: Apache-2.0
/*
 * The bridge's management port: the bridge's, the processor's and the exporter's metrics in one
 * Prometheus exposition (a real SDK MeterProvider read by OTel's Prometheus exporter), the spool
 * usage against its bound, liveness, and readiness that follows what the bridge can promise
 * (spool below its high watermark, not closing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrometheusMetrics } from '@kubernaut/datastorage-contract/management';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { spoolUsageOf } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  auditLogRecord,
  FaultServer,
  scrape,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, describe, expect, it } from 'vitest';
import { type OtlpBridge, type OtlpBridgeOptions, startOtlpBridge } from '../src/index.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'otlp-bridge-mgmt-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function start(options: OtlpBridgeOptions): Promise<OtlpBridge & { managementUrl: string }> {
  const bridge = await startOtlpBridge({
    port: 0,
    managementPort: 0,
    shutdownTimeoutMillis: 1_000,
    logger: () => undefined,
    ...options,
  });
  cleanups.push(() => bridge.close());
  expect(bridge.managementUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(bridge.managementUrl).not.toBe(bridge.url);
  return bridge as OtlpBridge & { managementUrl: string };
}

async function send(url: string, count = 1): Promise<void> {
  const app = startSdkApp({
    url,
    encoding: 'protobuf',
    resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
  });
  for (let i = 0; i < count; i++) app.emit(auditLogRecord());
  await app.flush();
  await app.shutdown();
}

describe('bridge management port', () => {
  it("serves the bridge's, the processor's and the exporter's metrics in one exposition", async () => {
    const ds = await FaultServer.start();
    cleanups.push(() => ds.close());
    const prometheus = createPrometheusMetrics('bridge-under-test');
    cleanups.push(() => prometheus.shutdown());
    const maxBytes = 8 * 1024 * 1024;
    const bridge = await start({
      exporter: new KubernautAuditExporter({
        url: ds.url,
        meterProvider: prometheus.meterProvider,
      }),
      spool: { directory: tempDir(), maxBytes },
      prometheus,
    });
    await send(bridge.url, 2);
    await bridge.processor.forceFlush();
    expect(ds.received()).toHaveLength(2);

    const m = await scrape(bridge.managementUrl);
    expect(
      m.value('kubernaut_audit_bridge_requests_total', { http_response_status_code: '200' }),
    ).toBe(1);
    expect(
      m.value('kubernaut_audit_bridge_log_records_total', {
        kubernaut_audit_bridge_outcome: 'accepted',
      }),
    ).toBe(2);
    // The processor's and the exporter's own instruments, in the same provider.
    expect(m.value('otel_sdk_processor_log_processed_total')).toBe(2);
    const exported = m.samples.filter(
      (s) => s.name === 'otel_sdk_exporter_log_exported_total' && s.labels.error_type === undefined,
    );
    expect(exported.map((s) => s.value)).toEqual([2]);
    expect(m.units.get('otel_sdk_exporter_operation_duration')).toBe('s');
    // The spool as admission sees it, against its bound.
    expect(m.units.get('kubernaut_audit_bridge_spool_usage')).toBe('By');
    expect(m.value('kubernaut_audit_bridge_spool_capacity')).toBe(maxBytes);
    // Everything was delivered and acknowledged: the spool holds nothing.
    expect(m.value('kubernaut_audit_bridge_spool_usage')).toBe(0);
    expect(m.value('target_info', { service_name: 'bridge-under-test' })).toBe(1);

    for (const path of ['/healthz', '/livez', '/readyz']) {
      expect((await fetch(`${bridge.managementUrl}${path}`)).status).toBe(200);
    }
  });

  it('without a meter provider, serves a provider of its own that the processor records into', async () => {
    const bridge = await start({
      exporter: new KubernautAuditExporter({ url: 'http://127.0.0.1:9' }),
      spool: { directory: tempDir() },
    });
    const m = await scrape(bridge.managementUrl);
    expect(m.value('otel_sdk_processor_log_queue_capacity')).toBeGreaterThan(0);
    expect(m.value('target_info', { service_name: 'kubernaut-audit-otlp-bridge' })).toBe(1);
  });

  it('is not ready while the spool is over its high watermark; liveness stays', async () => {
    // A first bridge spools records while DataStorage is down and stops with them undelivered.
    const dir = tempDir();
    const first = await start({
      exporter: new KubernautAuditExporter({ url: 'http://127.0.0.1:9' }),
      spool: { directory: dir },
      shutdownTimeoutMillis: 10,
    });
    await send(first.url, 5);
    expect(spoolUsageOf(first.processor)?.bytes).toBeGreaterThan(2048);
    await first.close();
    // The next one on that spool, with a bound its backlog exceeds.
    const bridge = await start({
      exporter: new KubernautAuditExporter({ url: 'http://127.0.0.1:9' }),
      spool: { directory: dir, maxBytes: 2048 },
    });
    const ready = await fetch(`${bridge.managementUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toBe('5');
    expect(((await ready.json()) as { detail: string }).detail).toMatch(
      /spool is over 90 % of its bound/,
    );
    expect((await fetch(`${bridge.managementUrl}/healthz`)).status).toBe(200);
    const m = await scrape(bridge.managementUrl);
    expect(m.value('kubernaut_audit_bridge_spool_usage')).toBeGreaterThan(2048 * 0.9);
  });

  it('is not ready while closing, and the port closes last', async () => {
    const bridge = await start({
      exporter: new KubernautAuditExporter({
        url: 'http://127.0.0.1:9',
        retry: { initialDelayMillis: 50, maxDelayMillis: 100 },
      }),
      spool: { directory: tempDir() },
    });
    await send(bridge.url); // undeliverable: close() keeps trying for shutdownTimeoutMillis
    const closed = bridge.close();
    const during = await fetch(`${bridge.managementUrl}/readyz`);
    expect(during.status).toBe(503);
    expect(((await during.json()) as { detail: string }).detail).toBe('shutting down');
    await closed;
    await expect(fetch(`${bridge.managementUrl}/healthz`)).rejects.toThrow();
  });
});

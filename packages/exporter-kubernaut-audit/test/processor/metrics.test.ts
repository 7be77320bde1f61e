// SPDX-License-Identifier: Apache-2.0
/*
 * Processor metrics through a real MeterProvider and an in-memory (pull) reader: queue size
 * and capacity, queue_full with `spool: false`, timer drift (event loop blocked by a
 * busy-wait), slow exports (slow sink), emit→accepted latency, invalid records.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, FaultServer, tempDir, testMetrics } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliveredIds, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

let ds: FaultServer;
beforeAll(async () => {
  ds = await FaultServer.start();
});
afterAll(async () => {
  await ds.close();
  cleanupTempDirs();
});
afterEach(() => {
  expect(ds.specViolations).toEqual([]);
});

function values(
  points: DataPoint<unknown>[] | undefined,
  filter: (a: Record<string, unknown>) => boolean,
) {
  return (points ?? []).filter((p) => filter(p.attributes)).map((p) => p.value);
}

describe('AuditLogRecordProcessor metrics', () => {
  it('reports queue size and capacity, and records written', async () => {
    const m = testMetrics();
    const processor = processorFor(ds, {
      scheduledDelayMillis: 60_000,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 30; i++) provider.getLogger('t').emit(auditRecord(`q-0:${i}`, 'q-0'));
    let all = await m.collect();
    expect(values(all.get('otel.sdk.processor.log.queue.size'), () => true)).toEqual([30]);
    expect(values(all.get('otel.sdk.processor.log.queue.capacity'), () => true)).toEqual([2048]);
    const attrs = all.get('otel.sdk.processor.log.queue.size')?.[0]?.attributes;
    expect(attrs?.['otel.component.type']).toBe('audit_log_record_processor');
    expect(String(attrs?.['otel.component.name'])).toMatch(/^audit_log_record_processor\/\d+$/);
    await processor.forceFlush();
    all = await m.collect();
    expect(values(all.get('otel.sdk.processor.log.queue.size'), () => true)).toEqual([0]);
    expect(
      values(all.get('otel.sdk.processor.log.processed'), (a) => a['error.type'] === undefined),
    ).toEqual([30]);
    await provider.shutdown();
  });

  it('counts queue_full overflow with spool: false, and still delivers every record', async () => {
    const before = ds.received().length;
    const m = testMetrics();
    const processor = processorFor(ds, {
      spool: false,
      maxQueueSize: 10,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 100; i++) provider.getLogger('t').emit(auditRecord(`qf-0:${i}`, 'qf-0'));
    // OTel semantics: 10 in the queue + one batch of 10 extracted for export; the other 80 overflow.
    expect(await m.sum('otel.sdk.processor.log.processed', { 'error.type': 'queue_full' })).toBe(
      80,
    );
    await processor.forceFlush({ timeoutMillis: 20_000 });
    const ids = deliveredIds(ds).slice(before);
    expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => `qf-0:${i}`)); // all, in emit order
    const memOnly = (await m.collect()).get('kubernaut.audit.spool.memory_only');
    expect(values(memOnly, () => true)).toEqual([1]);
    await provider.shutdown();
  });

  it('measures timer drift when the event loop is blocked', async () => {
    const before = ds.received().length;
    const m = testMetrics();
    const processor = processorFor(ds, {
      scheduledDelayMillis: 50,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    provider.getLogger('t').emit(auditRecord('drift-0:0', 'drift-0'));
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // busy-wait: the 50 ms batch timer cannot fire before this loop ends
    }
    await ds.waitForEvents(before + 1); // the timer-driven export happened, then delivery
    const h = await m.histogram('kubernaut.audit.timer.drift');
    expect(h?.count).toBe(1);
    expect(h?.max).toBeGreaterThanOrEqual(200);
    await provider.shutdown();
  });

  it('counts slow exports against slowExportThresholdMillis and records delivery latency', async () => {
    const before = ds.received().length;
    const m = testMetrics();
    const processor = processorFor(ds, {
      slowExportThresholdMillis: 100,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    ds.inject({ type: 'slow', delayMillis: 300 });
    for (let i = 0; i < 5; i++) provider.getLogger('t').emit(auditRecord(`slow-0:${i}`, 'slow-0'));
    await processor.forceFlush({ timeoutMillis: 20_000 });
    expect(deliveredIds(ds).slice(before).length).toBe(5);
    expect(await m.sum('kubernaut.audit.export.slow', { 'kubernaut.audit.stage': 'deliver' })).toBe(
      1,
    );
    const latency = (await m.histogram('kubernaut.audit.delivery.latency')) as Histogram;
    expect(latency.count).toBe(5);
    expect(latency.min).toBeGreaterThanOrEqual(300); // they waited for the slow answer
    await provider.shutdown();
  });

  it('dead-letters invalid audit records at emit, counted by reason, never delivered', async () => {
    const before = ds.received().length;
    const dir = tempDir();
    const m = testMetrics();
    const processor = processorFor(ds, {
      spool: { directory: dir },
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    const bad = auditRecord('bad-0:0', 'bad-0');
    delete (bad.attributes as Record<string, unknown>)['audit.correlation.id'];
    provider.getLogger('t').emit(bad);
    provider.getLogger('t').emit(auditRecord('good-0:0', 'good-0'));
    await processor.forceFlush();
    expect(deliveredIds(ds).slice(before)).toEqual(['good-0:0']);
    expect(
      await m.sum('kubernaut.audit.invalid', { 'kubernaut.audit.reason': 'missing_field' }),
    ).toBe(1);
    expect(await m.sum('otel.sdk.processor.log.processed', { 'error.type': 'invalid' })).toBe(1);
    const dl = join(dir, 'dead-letter.jsonl');
    expect(existsSync(dl)).toBe(true);
    const lines = readFileSync(dl, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0].reason).toBe('missing_field');
    expect(lines[0].event.record.attributes['audit.resource.id']).toBe('bad-0:0');
    await provider.shutdown();
  });
});

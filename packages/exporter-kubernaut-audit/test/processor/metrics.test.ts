// SPDX-License-Identifier: Apache-2.0
/*
 * Processor metrics through a real MeterProvider and an in-memory (pull) reader (behaviour 14
 * of issue 11, honest metrics): queue size and capacity, overflow that was spooled counted as
 * overflow and not as a queue_full error, durations in seconds (timer drift with the event loop
 * blocked by a busy-wait, slow deliveries, emit→accepted latency), invalid records, observable
 * callbacks removed at shutdown, a user's exporter neither modified nor shut down.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';
import {
  createCapturingLoggerProvider,
  readJsonLines,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import type { BatchObservableCallback, MeterProvider, Observable } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { createExporter } from '../../src/exporter/create.ts';
import { deliveredIds, faultServerForFile, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile({ checkSpec: true });

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

  it('counts overflow that was spooled as overflow, not as a queue_full error, and delivers every record', async () => {
    const before = ds.received().length;
    const m = testMetrics();
    const processor = processorFor(ds, {
      spool: false,
      maxQueueSize: 10,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 100; i++) provider.getLogger('t').emit(auditRecord(`qf-0:${i}`, 'qf-0'));
    // OTel semantics: 10 in the queue + one batch of 10 extracted for export; the other 80
    // overflow the inner queue — and are spooled from the FIFO: not an error, nothing lost.
    expect(await m.sum('kubernaut.audit.intake.overflowed')).toBe(80);
    await processor.forceFlush({ timeoutMillis: 20_000 });
    const ids = deliveredIds(ds).slice(before);
    expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => `qf-0:${i}`)); // all, in emit order
    const processed = await m.points('otel.sdk.processor.log.processed');
    expect(processed.filter((p) => p.attributes['error.type'] !== undefined)).toEqual([]);
    expect(await m.sum('otel.sdk.processor.log.processed')).toBe(100);
    const memOnly = (await m.collect()).get('kubernaut.audit.spool.memory_only');
    expect(values(memOnly, () => true)).toEqual([1]);
    await provider.shutdown();
  });

  it('measures timer drift, in seconds, when the event loop is blocked', async () => {
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
    expect(h?.max).toBeGreaterThanOrEqual(0.2); // seconds
    expect(h?.max).toBeLessThan(30);
    await provider.shutdown();
  });

  it('counts slow exports against slowExportThresholdMillis and records delivery latency', async () => {
    const before = ds.received().length;
    const requestsBefore = ds.requests.length;
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
    // One observation per accepted request (its oldest event's wait), not one per event.
    expect(latency.count).toBe(ds.requests.length - requestsBefore);
    expect(latency.count).toBe(1);
    expect(latency.min).toBeGreaterThanOrEqual(0.3); // seconds: they waited for the slow answer
    expect(latency.max).toBeLessThan(30);
    await provider.shutdown();
  });

  it('a delivery abandoned at shutdown (no answer yet) is not counted as a slow export', async () => {
    const m = testMetrics();
    const processor = processorFor(ds, {
      slowExportThresholdMillis: 100,
      shutdownTimeoutMillis: 400,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    ds.inject({ type: 'slow', delayMillis: 10_000, commit: false });
    provider.getLogger('t').emit(auditRecord('abandoned-0:0', 'abandoned-0'));
    await provider.shutdown(); // the request in flight is aborted after 400 ms: nothing settled
    expect(await m.sum('kubernaut.audit.export.slow', { 'kubernaut.audit.stage': 'deliver' })).toBe(
      0,
    );
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

  it('removes its observable callbacks at shutdown', async () => {
    const m = testMetrics();
    // The real SDK meter, with its batch-callback registrations observed.
    let calls = 0;
    const live = new Set<BatchObservableCallback>();
    const meterProvider: MeterProvider = {
      getMeter: (name, version, options) => {
        const meter = m.meterProvider.getMeter(name, version, options);
        return new Proxy(meter, {
          get(target, prop, receiver) {
            if (prop === 'addBatchObservableCallback') {
              return (cb: BatchObservableCallback, obs: Observable[]) => {
                const counted: BatchObservableCallback = (r) => {
                  calls++;
                  return cb(r);
                };
                live.add(cb);
                wrapped.set(cb, counted);
                target.addBatchObservableCallback(counted, obs);
              };
            }
            if (prop === 'removeBatchObservableCallback') {
              return (cb: BatchObservableCallback, obs: Observable[]) => {
                live.delete(cb);
                target.removeBatchObservableCallback(wrapped.get(cb) ?? cb, obs);
              };
            }
            return Reflect.get(target, prop, receiver);
          },
        });
      },
    };
    const wrapped = new Map<BatchObservableCallback, BatchObservableCallback>();
    const processor = processorFor(ds, { meterProvider });
    const provider = new LoggerProvider({ processors: [processor] });
    provider.getLogger('t').emit(auditRecord('obs-0:0', 'obs-0'));
    expect((await m.points('otel.sdk.processor.log.queue.size')).length).toBe(1);
    expect(live.size).toBe(2); // the processor's and its sender's
    const before = calls;
    expect(before).toBeGreaterThan(0);
    await provider.shutdown();
    expect(live.size).toBe(0);
    await m.collect();
    expect(calls).toBe(before); // never called again
  });

  it("neither modifies nor shuts down a user's exporter", async () => {
    const userDeadLetters = join(tempDir(), 'user-dead-letters.jsonl');
    const exporter = createExporter(
      { url: ds.url, retry: { initialDelayMillis: 5, maxDelayMillis: 50 } },
      { deadLetterPath: userDeadLetters },
    );
    const dir = tempDir();
    const processor = new AuditLogRecordProcessor({ exporter, spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    provider.getLogger('t').emit(auditRecord('user-0:0', 'user-0'));
    await processor.forceFlush();
    await provider.shutdown();
    // Still usable after the processor's shutdown, and still writing its own dead letters.
    const cap = createCapturingLoggerProvider();
    const bad = auditRecord('user-0:1', 'user-0');
    delete (bad.attributes as Record<string, unknown>)['audit.event.outcome'];
    cap.logger.emit(auditRecord('user-0:2', 'user-0'));
    cap.logger.emit(bad);
    const result = await new Promise<ExportResult>((resolve) =>
      exporter.export(cap.records.splice(0), resolve),
    );
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(deliveredIds(ds)).toContain('user-0:2');
    expect(readJsonLines(userDeadLetters)).toHaveLength(1);
    expect(existsSync(join(dir, 'dead-letter.jsonl'))).toBe(false);
    await exporter.shutdown();
    await cap.provider.shutdown();
  });
});

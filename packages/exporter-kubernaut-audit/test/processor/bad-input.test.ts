// SPDX-License-Identifier: Apache-2.0
/*
 * Bad input at scale (behaviour 8 of issue 11): 93,500 invalid records among 11,000 valid ones —
 * every valid one arrives, nothing invalid reaches DataStorage, memory stays bounded (invalid
 * records are mapped at drain, never held), the dead-letter file stays within its bound and
 * every dead letter keeps its seq. Hostile bodies (a 23-level DAG of shared references, a BigInt)
 * are dead-lettered with a sanitised, size-capped copy and their seq.
 */
import { join } from 'node:path';
import {
  cleanupTempDirs,
  FaultServer,
  readJsonLines,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

type DeadLine = {
  reason: string;
  event: { audit_provenance?: { seq?: number }; record?: { body?: unknown } };
};

describe('bad input at scale', () => {
  it('93,500 invalid among 11,000 valid: all valid delivered, no invalid, bounded memory and dead letters', async () => {
    const before = ds.received().length;
    const dir = tempDir();
    const m = testMetrics();
    const maxBytes = 16 * 1024 * 1024;
    const processor = processorFor(ds, {
      spool: { directory: dir },
      deadLetter: { maxBytes },
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('bad');
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    let valid = 0;
    for (let i = 0; i < 104_500; i++) {
      const rec = auditRecord(`bad-${i % 8}:${i}`, `bad-${i % 8}`);
      if (i % 19 < 17) {
        delete (rec.attributes as Record<string, unknown>)['audit.correlation.id'];
      } else valid++;
      logger.emit(rec);
      if (i % 5000 === 0) {
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
        await new Promise((r) => setImmediate(r));
      }
    }
    await processor.forceFlush({ timeoutMillis: 60_000 });
    const ids = deliveredIds(ds).slice(before);
    expect(valid).toBe(11_000);
    expect(ids.length).toBe(valid);
    expect(new Set(ids).size).toBe(valid);
    expect(ds.specViolations).toEqual([]);
    expect(heapPeak - heapBefore).toBeLessThan(256 * 1024 * 1024);
    const lines = readJsonLines(join(dir, 'dead-letter.jsonl')) as unknown as DeadLine[];
    const dropped = await m.sum('kubernaut.audit.dead_letter.dropped');
    expect(lines.length + dropped).toBe(93_500);
    expect(lines.every((l) => typeof l.event.audit_provenance?.seq === 'number')).toBe(true);
    await provider.shutdown();
  }, 120_000);

  it('a DAG body and a BigInt body: dead-lettered, sanitised and capped, with their seq', async () => {
    const dir = tempDir();
    const processor = processorFor(ds, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('hostile');
    let dag: Record<string, unknown> = { fingerprint: 'dag', leaf: 'x'.repeat(64) };
    for (let i = 0; i < 23; i++) dag = { left: dag, right: dag };
    logger.emit({ ...auditRecord('dag-0:0', 'dag-0'), body: dag as never });
    logger.emit({ ...auditRecord('big-0:0', 'big-0'), body: 12345678901234567890n as never });
    logger.emit({ ...auditRecord('ok-0:0', 'ok-0') });
    await processor.forceFlush({ timeoutMillis: 30_000 });
    const lines = readJsonLines(join(dir, 'dead-letter.jsonl')) as unknown as DeadLine[];
    expect(lines.map((l) => l.reason)).toEqual(['event_data_too_deep', 'missing_field']);
    expect(lines.map((l) => l.event.audit_provenance?.seq)).toEqual([1, 2]);
    expect(lines[1]?.event.record?.body).toBe('12345678901234567890n');
    expect(JSON.stringify(lines[0]).length).toBeLessThan(80 * 1024);
    expect(deliveredIds(ds)).toContain('ok-0:0');
    await provider.shutdown();
  });
});

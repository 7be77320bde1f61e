// SPDX-License-Identifier: Apache-2.0
/*
 * OTEP 0267 names (issue 16): with `recordAttributes`, the processor sets
 * `audit.sequence.number` and `audit.record.id` on the OTel record at emit, so a processor
 * registered after it sees them; a caller's own `audit.record.id` is kept in the stamp as
 * `record_id` (hashed) and an upstream `audit.sequence.number` is left alone.
 */
import { computeProvenanceHash, readProvenance } from '@kubernaut/audit-provenance';
import { cleanupTempDirs, FaultServer } from '@kubernaut/test-kit';
import type { LogRecord } from '@opentelemetry/api';
import {
  LoggerProvider,
  type LogRecordProcessor,
  type ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processorFor } from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';

let ds: FaultServer;
beforeAll(async () => {
  ds = await FaultServer.start();
});
afterAll(async () => {
  await ds.close();
  cleanupTempDirs();
});

/** A processor that records the attributes it sees at emit. */
function capture(): { seen: Array<Record<string, unknown>>; processor: LogRecordProcessor } {
  const seen: Array<Record<string, unknown>> = [];
  return {
    seen,
    processor: {
      onEmit: (r: ReadWriteLogRecord) => {
        seen.push({ ...r.attributes });
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    },
  };
}

async function run(records: LogRecord[], recordAttributes: boolean) {
  const before = ds.received().length;
  const audit = processorFor(ds, recordAttributes ? { recordAttributes } : {});
  const cap = capture();
  const provider = new LoggerProvider({ processors: [audit, cap.processor] });
  const logger = provider.getLogger('names');
  for (const r of records) logger.emit(r);
  await audit.forceFlush({ timeoutMillis: 10_000 });
  await provider.shutdown();
  const stored = ds
    .received()
    .slice(before)
    .map((s) => s.event as unknown as Record<string, unknown>);
  return { seen: cap.seen, stored };
}

describe('OTEP 0267 names on the OTel record', () => {
  it('recordAttributes: audit.sequence.number and audit.record.id set at emit, seen by the next processor', async () => {
    const { seen, stored } = await run(
      [auditRecord('n:0', 'names-a'), auditRecord('n:1', 'names-a')],
      true,
    );
    const p = stored.map((e) => readProvenance(e));
    expect(seen.map((a) => a['audit.sequence.number'])).toEqual([1, 2]);
    expect(seen.map((a) => a['audit.record.id'])).toEqual([
      `${p[0]?.producer_id}/1`,
      `${p[0]?.producer_id}/2`,
    ]);
    // Its own id is not stored twice: the stamp has no record_id.
    for (const e of stored) {
      expect(
        (e.event_data as Record<string, Record<string, unknown>>).audit_provenance?.record_id,
      ).toBeUndefined();
    }
  });

  it('without the option the record is not touched', async () => {
    const { seen } = await run([auditRecord('n:2', 'names-b')], false);
    expect(seen[0]?.['audit.sequence.number']).toBeUndefined();
    expect(seen[0]?.['audit.record.id']).toBeUndefined();
  });

  it("a caller's audit.record.id is kept in the stamp (hashed); an upstream sequence number is left alone; a bad one is left out", async () => {
    const own = auditRecord('n:3', 'names-c');
    own.attributes = {
      ...own.attributes,
      'audit.record.id': 'rid-0001',
      'audit.sequence.number': 77,
    };
    const bad = auditRecord('n:4', 'names-c');
    bad.attributes = { ...bad.attributes, 'audit.record.id': 42 };
    const { seen, stored } = await run([own, bad], true);
    expect(seen[0]?.['audit.sequence.number']).toBe(77);
    expect(seen[0]?.['audit.record.id']).toBe('rid-0001');
    const stamp = (e: Record<string, unknown>) =>
      (e.event_data as Record<string, Record<string, unknown>>).audit_provenance as Record<
        string,
        unknown
      >;
    expect(stamp(stored[0] as Record<string, unknown>).record_id).toBe('rid-0001');
    expect(stamp(stored[1] as Record<string, unknown>).record_id).toBeUndefined();
    for (const e of stored) expect(computeProvenanceHash(e)).toBe(readProvenance(e)?.hash);
    // The record id is covered by the hash.
    const altered = structuredClone(stored[0]) as Record<string, unknown>;
    stamp(altered).record_id = 'rid-9999';
    expect(computeProvenanceHash(altered)).not.toBe(readProvenance(stored[0])?.hash);
  });
});

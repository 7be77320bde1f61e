// SPDX-License-Identifier: Apache-2.0
/*
 * What DataStorage cannot store is caught before it is sent (behaviour 12 of issue 11): NUL and
 * unpaired surrogates anywhere (event_data keys and values included), non-finite numbers, an
 * IPv6 zone id, empty actor/resource type and id, and event_data that its provenance stamp
 * pushes over 256 KiB. Per-correlation timestamp regressions are detected and counted; the
 * opt-in `monotonicTimestamps` keeps them strictly increasing and records the original.
 * Each for AuditLogRecordProcessor and ThreadedAuditLogRecordProcessor (there the checks run on
 * the application thread and the counts reach the metrics through the delivery thread).
 */
import { join } from 'node:path';
import { MAX_EVENT_DATA_BYTES } from '@kubernaut/datastorage-contract';
import { captureDiag, readJsonLines, tempDir, testMetrics } from '@kubernaut/test-kit';
import type { LogRecord } from '@opentelemetry/api';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { BOTH_PROCESSORS, deliveredIds, faultServerForFile } from './fixtures/harness.ts';
import { auditBody, auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile({ checkSpec: true });

const withBody = (id: string, extra: Record<string, unknown>): LogRecord => ({
  ...auditRecord(id, 'store-0'),
  body: { ...auditBody(id), ...extra } as LogRecord['body'],
});
const withAttrs = (id: string, attrs: Record<string, unknown>): LogRecord => {
  const r = auditRecord(id, 'store-1');
  return { ...r, attributes: { ...r.attributes, ...attrs } as LogRecord['attributes'] };
};

describe.each(BOTH_PROCESSORS)('what DataStorage cannot store (%s)', (_name, processorFor) => {
  it('is dead-lettered (unstorable strings, non-finite numbers, too large once stamped) or left out (optional fields)', async () => {
    const before = ds.received().length;
    const dir = tempDir();
    const m = testMetrics();
    const processor = processorFor(ds, {
      spool: { directory: dir },
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    // Just under the limit as the application wrote it; over it with the provenance stamp.
    const filler = 'z'.repeat(MAX_EVENT_DATA_BYTES - 200);
    const records: LogRecord[] = [
      withBody('nul-value', { note: 'a\u0000b' }),
      withBody('nul-key', { 'k\u0000': 1 }),
      withBody('surrogate', { deep: { list: ['ok', '\ud800'] } }),
      withBody('nan', { ratio: Number.NaN }),
      withBody('infinity', { ratio: Number.POSITIVE_INFINITY }),
      withBody('stamped-over', { filler }),
      withAttrs('nul-action', { 'audit.event.action': 'rec\u0000eived' }),
      withAttrs('zone-id', { 'client.address': 'fe80::1%eth0' }),
      withAttrs('empty-ids', {
        'audit.actor.id': '',
        'audit.resource.id': '',
        'audit.actor.type': '',
        'audit.resource.type': '',
      }),
    ];
    for (const r of records) logger.emit(r);
    await processor.forceFlush();
    // Delivered: only the two whose problem was an optional field, without it (defaults apply).
    const delivered = ds.received().slice(before);
    expect(
      delivered
        .map((s) => String((s.event.event_data as { fingerprint?: unknown }).fingerprint))
        .sort(),
    ).toEqual(['empty-ids', 'zone-id']);
    const zone = delivered.find(
      (s) => (s.event.event_data as { fingerprint?: unknown }).fingerprint === 'zone-id',
    );
    expect(zone?.event.actor_ip).toBeUndefined();
    const empty = delivered.find(
      (s) => (s.event.event_data as { fingerprint?: unknown }).fingerprint === 'empty-ids',
    );
    expect(empty?.event).toMatchObject({
      actor_type: 'service',
      actor_id: 'gateway-service',
      resource_type: 'gateway',
      resource_id: 'store-1',
    });
    const dead = readJsonLines(join(dir, 'dead-letter.jsonl')) as Array<{
      reason: string;
      detail: string;
    }>;
    expect(dead.map((d) => d.reason)).toEqual([
      'unstorable_string',
      'unstorable_string',
      'unstorable_string',
      'invalid_type',
      'invalid_type',
      'event_data_too_large',
      'unstorable_string',
    ]);
    expect(dead[5]?.detail).toMatch(/with its provenance stamp/);
    expect(await m.sum('kubernaut.audit.invalid', { 'kubernaut.audit.reason': 'invalid_ip' })).toBe(
      1,
    );
    expect(await m.sum('kubernaut.audit.invalid', { 'kubernaut.audit.reason': 'empty' })).toBe(4);
    await provider.shutdown();
  });
});

describe.each(BOTH_PROCESSORS)('per-correlation timestamp order (%s)', (_name, processorFor) => {
  const at = (iso: string): LogRecord['timestamp'] => new Date(iso);

  it('detects, counts and reports a correlation whose timestamps go backwards', async () => {
    const before = ds.received().length;
    const m = testMetrics();
    const log = captureDiag();
    try {
      const processor = processorFor(ds, { meterProvider: m.meterProvider });
      const provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('t');
      const now = Date.now();
      logger.emit({ ...auditRecord('ts-0:0', 'ts-0'), timestamp: at(new Date(now).toISOString()) });
      logger.emit({
        ...auditRecord('ts-0:1', 'ts-0'),
        timestamp: at(new Date(now - 5000).toISOString()),
      });
      logger.emit({
        ...auditRecord('ts-1:0', 'ts-1'),
        timestamp: at(new Date(now - 9000).toISOString()),
      });
      await processor.forceFlush();
      expect(deliveredIds(ds).slice(before)).toHaveLength(3);
      expect(await m.sum('kubernaut.audit.timestamp.regressed')).toBe(1);
      expect(
        log.messages.some((l) => /earlier than their correlation's previous one/.test(l)),
      ).toBe(true);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it('monotonicTimestamps keeps them strictly increasing per correlation and records the original', async () => {
    const before = ds.received().length;
    const processor = processorFor(ds, { monotonicTimestamps: true });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    const t = Date.now();
    logger.emit({ ...auditRecord('mono-0:0', 'mono-0'), timestamp: at(new Date(t).toISOString()) });
    logger.emit({
      ...auditRecord('mono-0:1', 'mono-0'),
      timestamp: at(new Date(t - 5000).toISOString()),
    });
    logger.emit({ ...auditRecord('mono-0:2', 'mono-0'), timestamp: at(new Date(t).toISOString()) });
    await processor.forceFlush();
    const events = ds
      .received()
      .slice(before)
      .map((s) => s.event);
    const stamps = events.map((e) => e.event_timestamp);
    expect(stamps).toEqual([...stamps].sort());
    expect(new Set(stamps).size).toBe(3);
    const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 23)}000Z`;
    expect(stamps[1]).toBe(`${iso(t).slice(0, 23)}001Z`);
    const provOf = (i: number) =>
      (events[i]?.event_data as { audit_provenance: { original_timestamp?: string } })
        .audit_provenance;
    expect(provOf(1).original_timestamp).toBe(iso(t - 5000));
    expect(provOf(0).original_timestamp).toBeUndefined();
    await provider.shutdown();
  });
});

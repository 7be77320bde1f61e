// SPDX-License-Identifier: Apache-2.0
/*
 * The SDK's attribute limits (LoggerProvider logRecordLimits; NodeSDK takes them from
 * OTEL_ATTRIBUTE_COUNT_LIMIT / OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT) cut or drop audit attributes
 * before the processor sees them. Mapped as they were, a dropped `audit.actor.id` became the
 * service's name and a dropped `audit.resource.id` the correlation id: an audit event stating
 * what the application never said, delivered as valid. Now such a record is rejected
 * (dead-lettered with its reason, counted, logged), and the first audit record made under such
 * limits gets a warning saying what to change. For both processors; under NodeSDK from the env.
 */
import { join } from 'node:path';
import { captureDiag, readJsonLines, tempDir, testMetrics } from '@kubernaut/test-kit';
import { type LogRecord, logs } from '@opentelemetry/api';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resetRecordLimitsCheck } from '../../src/setup-checks/record-limits.ts';
import { BOTH_PROCESSORS, deliveredIds, faultServerForFile } from './fixtures/harness.ts';
import { auditAttributes, auditBody, auditRecord, EVENT_TYPE } from './fixtures/support.ts';

const ds = await faultServerForFile();
// The files of the shared test project share this module: no warning given before this file.
beforeEach(() => resetRecordLimitsCheck());
afterEach(() => {
  expect(ds.specViolations).toEqual([]);
  resetRecordLimitsCheck();
});

const fingerprints = (from: number): string[] =>
  ds
    .received()
    .slice(from)
    .map((s) => String((s.event.event_data as { fingerprint?: unknown }).fingerprint));

function deadLetters(dir: string): Array<{ reason: string; detail: string }> {
  return readJsonLines(join(dir, 'dead-letter.jsonl')) as Array<{ reason: string; detail: string }>;
}

describe.each(BOTH_PROCESSORS)('the SDK attribute limits (%s)', (_name, processorFor) => {
  it('a record whose attributes the SDK dropped is rejected, not delivered with defaults', async () => {
    const before = ds.received().length;
    const dir = tempDir();
    const m = testMetrics();
    const log = captureDiag();
    try {
      const processor = processorFor(ds, {
        spool: { directory: dir },
        meterProvider: m.meterProvider,
      });
      // Six audit attributes fit; the seventh and later are dropped by the SDK.
      const provider = new LoggerProvider({
        processors: [processor],
        logRecordLimits: { attributeCountLimit: 6 },
      });
      const logger = provider.getLogger('t');
      logger.emit(auditRecord('fits', 'lim-0'));
      logger.emit({
        ...auditRecord('actor-dropped', 'lim-0'),
        attributes: {
          ...auditAttributes('actor-dropped', 'lim-0'),
          'audit.actor.type': 'user',
          'audit.actor.id': 'alice@example.com',
        } as LogRecord['attributes'],
      });
      await processor.forceFlush();
      // Before: the second was stored with actor_id "gateway-service" (its category's default).
      expect(fingerprints(before)).toEqual(['fits']);
      const dead = deadLetters(dir);
      expect(dead.map((d) => d.reason)).toEqual(['attributes_dropped']);
      expect(dead[0]?.detail).toMatch(/dropped 2 attribute\(s\).*count limit of 6/);
      expect(
        await m.sum('kubernaut.audit.invalid', { 'kubernaut.audit.reason': 'attributes_dropped' }),
      ).toBe(1);
      expect(log.messages.filter((l) => /attributeCountLimit 6/.test(l))).toHaveLength(1);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it('a value as long as the value length limit is rejected; the body is never cut', async () => {
    const before = ds.received().length;
    const dir = tempDir();
    const log = captureDiag();
    try {
      const processor = processorFor(ds, { spool: { directory: dir } });
      const provider = new LoggerProvider({
        processors: [processor],
        logRecordLimits: { attributeValueLengthLimit: 24 },
      });
      const logger = provider.getLogger('t');
      const long = 'r'.repeat(40);
      // Delivered: short attributes, and a long value in the body (the SDK never cuts it).
      logger.emit({
        ...auditRecord('short', 'lim-1'),
        body: { ...auditBody('short'), signal_name: long } as LogRecord['body'],
      });
      // Rejected: an envelope attribute cut to 24 characters.
      logger.emit({
        ...auditRecord('cut-resource', 'lim-1'),
        attributes: {
          ...auditAttributes('cut-resource', 'lim-1'),
          'audit.resource.id': long,
        } as LogRecord['attributes'],
      });
      // Rejected: event_data carried in audit.event.data, a string inside it cut.
      logger.emit({
        eventName: EVENT_TYPE,
        attributes: {
          ...auditAttributes('cut-data', 'lim-1'),
          'audit.event.data': { ...auditBody('cut-data'), signal_name: long },
        } as LogRecord['attributes'],
      });
      // Rejected: event_data as a JSON string in audit.event.data, cut.
      logger.emit({
        eventName: EVENT_TYPE,
        attributes: {
          ...auditAttributes('cut-json', 'lim-1'),
          'audit.event.data': JSON.stringify(auditBody('cut-json')),
        } as LogRecord['attributes'],
      });
      await processor.forceFlush();
      expect(fingerprints(before)).toEqual(['short']);
      const stored = ds.received().slice(before)[0]?.event.event_data as { signal_name?: unknown };
      expect(stored.signal_name).toBe(long);
      const dead = deadLetters(dir);
      expect(dead.map((d) => d.reason)).toEqual([
        'attribute_truncated',
        'attribute_truncated',
        'attribute_truncated',
      ]);
      expect(dead[0]?.detail).toMatch(/audit\.resource\.id holds a value of 24 characters/);
      expect(dead[1]?.detail).toMatch(/audit\.event\.data/);
      expect(log.messages.filter((l) => /attributeValueLengthLimit 24/.test(l))).toHaveLength(1);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });
});

describe('the SDK attribute limits under NodeSDK', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of [
      'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT',
      'OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT',
      'OTEL_TRACES_EXPORTER',
      'OTEL_METRICS_EXPORTER',
      'OTEL_LOGS_EXPORTER',
    ]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  async function emitUnderNodeSdk(id: string): Promise<string> {
    const dir = tempDir();
    const [, processorFor] = BOTH_PROCESSORS[0];
    const processor = processorFor(ds, { spool: { directory: dir } });
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_METRICS_EXPORTER = 'none';
    process.env.OTEL_LOGS_EXPORTER = 'none';
    const sdk = new NodeSDK({ logRecordProcessors: [processor], instrumentations: [] });
    sdk.start();
    try {
      logs.getLogger('nodesdk-limits').emit({
        ...auditRecord(id, 'lim-2'),
        attributes: {
          ...auditAttributes(id, 'lim-2'),
          'audit.actor.type': 'user',
          'audit.actor.id': `${id}@users.example.com`,
        } as LogRecord['attributes'],
      });
      await processor.forceFlush();
    } finally {
      await sdk.shutdown();
      logs.disable(); // the next NodeSDK registers its own global LoggerProvider
    }
    return dir;
  }

  it('OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (set for spans) rejects audit records it cuts; the logs-only variable lifts it', async () => {
    const before = ds.received().length;
    const log = captureDiag();
    try {
      process.env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = '16';
      const dir = await emitUnderNodeSdk('nodesdk-cut');
      expect(fingerprints(before)).toEqual([]);
      expect(deadLetters(dir).map((d) => d.reason)).toEqual(['attribute_truncated']);
      expect(log.messages.some((l) => /attributeValueLengthLimit 16/.test(l))).toBe(true);

      process.env.OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT = '4096';
      await emitUnderNodeSdk('nodesdk-whole');
      expect(fingerprints(before)).toEqual(['nodesdk-whole']);
      expect(deliveredIds(ds)).toContain('nodesdk-whole');
      expect(ds.received().at(-1)?.event.actor_id).toBe('nodesdk-whole@users.example.com');
    } finally {
      log.restore();
    }
  });
});

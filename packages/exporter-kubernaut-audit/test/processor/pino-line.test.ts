// SPDX-License-Identifier: Apache-2.0
/*
 * pino's line decides: real pino + @opentelemetry/instrumentation-pino under NodeSDK, with
 * excludeAuditLines on the destination. The adapter keeps a line out of the ordinary output
 * exactly when the processor takes the record the instrumentation makes of it: with pino's
 * nestedKey the call's audit fields are nested (no audit record: the line stays, and diag says
 * why), child bindings are never nested (delivered), an invalid Date category is written as null
 * (no audit record), and a BigInt in the audit fields, written as its digits, is reported.
 */
import { createRequire } from 'node:module';
import { captureDiag, tempDir } from '@kubernaut/test-kit';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { AuditLogRecordProcessor } from '../../src/index.ts';
import { excludeAuditLines } from '../../src/logging/index.ts';
import { checkAuditLines, resetAuditLineSightings } from '../../src/logging/sightings.ts';
import { isAuditRecord } from '../../src/select/index.ts';
import { deliveredIds, fastExporter, faultServerForFile } from './fixtures/harness.ts';

const ds = await faultServerForFile();

process.env.OTEL_TRACES_EXPORTER = 'none';
process.env.OTEL_METRICS_EXPORTER = 'none';
const audit = new AuditLogRecordProcessor({
  exporter: fastExporter(ds),
  spool: { directory: tempDir() },
});
/** Every record the SDK hands the processors (pino's OTel stream is asynchronous). */
const records: ReadWriteLogRecord[] = [];
let waiter: { n: number; resolve: () => void } | undefined;
const recorder: LogRecordProcessor = {
  onEmit(r: ReadWriteLogRecord) {
    records.push(r);
    if (waiter && records.length >= waiter.n) waiter.resolve();
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};
const sdk = new NodeSDK({
  logRecordProcessors: [audit, recorder],
  instrumentations: [new PinoInstrumentation()],
});
sdk.start();
afterAll(() => sdk.shutdown());
// pino is CommonJS: loaded after start(), the instrumentation patches it.
const pino = createRequire(import.meta.url)('pino') as typeof import('pino').default;

/** Resolves once the SDK has seen `n` records in all. */
function recordsReached(n: number): Promise<void> {
  if (records.length >= n) return Promise.resolve();
  return new Promise((resolve) => {
    waiter = { n, resolve };
  });
}

function lineSink() {
  const lines: string[] = [];
  return { lines, write: (l: string) => lines.push(l) };
}

const fields = (fingerprint: string) => ({
  'audit.event.category': 'gateway',
  'audit.event.type': 'gateway.signal.received',
  'audit.event.action': 'received',
  'audit.event.outcome': 'success',
  'audit.correlation.id': 'pino-line',
  'audit.event.data': {
    signal_type: 'alert',
    signal_name: 'HighMemoryUsage',
    namespace: 'payment',
    fingerprint,
  },
});

beforeEach(() => {
  resetAuditLineSightings();
  records.length = 0;
});

describe("excludeAuditLines decides on pino's line, as the processor does", () => {
  it("nestedKey: the call's audit fields are nested, no audit record: the line stays in the ordinary output, diag says why, no false bridge alarm", async () => {
    const diag = captureDiag();
    try {
      const sink = lineSink();
      const logger = pino({ base: null, nestedKey: 'payload' }, excludeAuditLines(sink));
      logger.info(fields('nested-1'), 'nested audit fields');
      await recordsReached(1);
      expect(isAuditRecord(records[0] as ReadWriteLogRecord)).toBe(false);
      expect(records[0]?.attributes.payload).toMatchObject({ 'audit.event.category': 'gateway' });
      // Not lost from both outputs: the ordinary output has it.
      expect(sink.lines).toHaveLength(1);
      expect(JSON.parse(sink.lines[0] as string)).toMatchObject({
        msg: 'nested audit fields',
        payload: { 'audit.event.category': 'gateway' },
      });
      expect(diag.messages.join('\n')).toContain("pino's nestedKey");
      // The adapter did not count an audit line: the cross-check does not blame the bridge.
      expect(checkAuditLines()).toEqual([]);
    } finally {
      diag.restore();
    }
  });

  it('nestedKey: audit fields bound on a child logger are top-level fields: delivered, kept out', async () => {
    const sink = lineSink();
    const logger = pino({ base: null, nestedKey: 'payload' }, excludeAuditLines(sink));
    logger.child(fields('child-1')).info('bound audit fields');
    logger.info({ route: '/healthz' }, 'ordinary');
    await recordsReached(2);
    expect(isAuditRecord(records[0] as ReadWriteLogRecord)).toBe(true);
    expect(sink.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['ordinary']);
    await audit.forceFlush({ timeoutMillis: 20_000 });
    expect(deliveredIds(ds)).toContain('child-1');
    expect(checkAuditLines()).toEqual([]);
  });

  it('a category that is an invalid Date is written as null: no audit record, the line stays', async () => {
    const sink = lineSink();
    const logger = pino({ base: null }, excludeAuditLines(sink));
    logger.info({ ...fields('nan-1'), 'audit.event.category': new Date(Number.NaN) }, 'bad date');
    await recordsReached(1);
    expect(isAuditRecord(records[0] as ReadWriteLogRecord)).toBe(false);
    expect(sink.lines).toHaveLength(1);
    expect(checkAuditLines()).toEqual([]);
  });

  it('a category that is a BigInt or a Date is written as digits / an ISO string: an audit record (refused by the processor as invalid), kept out', async () => {
    const sink = lineSink();
    const logger = pino({ base: null }, excludeAuditLines(sink));
    logger.info({ ...fields('big-cat'), 'audit.event.category': 5n }, 'bigint category');
    logger.info({ ...fields('date-cat'), 'audit.event.category': new Date(0) }, 'date category');
    await recordsReached(2);
    expect(records.map((r) => r.attributes['audit.event.category'])).toEqual([
      5,
      '1970-01-01T00:00:00.000Z',
    ]);
    expect(records.every((r) => isAuditRecord(r))).toBe(true);
    expect(sink.lines).toEqual([]);
    expect(checkAuditLines()).toEqual([]);
  });

  it('a BigInt in the audit fields, which the line carries as a number, is reported with its path', async () => {
    const diag = captureDiag();
    try {
      const sink = lineSink();
      const logger = pino({ base: null }, excludeAuditLines(sink));
      const f = fields('big-data');
      logger.info(
        {
          ...f,
          'audit.event.data': { ...f['audit.event.data'], amounts: [1, 12345678901234567891n] },
        },
        'bigint data',
      );
      await recordsReached(1);
      expect(isAuditRecord(records[0] as ReadWriteLogRecord)).toBe(true);
      expect(sink.lines).toEqual([]);
      expect(diag.messages.join('\n')).toContain(
        'pino wrote the BigInt at audit.event.data.amounts[1] of an audit record as a JSON number',
      );
    } finally {
      diag.restore();
    }
  });
});

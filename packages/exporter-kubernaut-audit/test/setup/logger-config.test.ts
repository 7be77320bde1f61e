// SPDX-License-Identifier: Apache-2.0
/*
 * The SDK's logger configuration (loggerConfigurator: minimumSeverity, traceBased) drops records
 * in Logger.emit, before any processor: an audit record at INFO under a WARN minimum, or emitted
 * inside an unsampled trace by a trace-based logger, was lost without a word. The processor now
 * asks the logger of each scope it receives audit records from what it would drop, and warns;
 * the README's way out (a logger of its own for audit records, with the default configuration)
 * keeps them. For both processors.
 */
import { captureDiag } from '@kubernaut/test-kit';
import {
  type Context,
  logs,
  ROOT_CONTEXT,
  SeverityNumber,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import {
  createLoggerConfigurator,
  type LoggerConfigurator,
  LoggerProvider,
} from '@opentelemetry/sdk-logs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resetLoggerConfigCheck } from '../../src/setup-checks/logger-config.ts';
import { BOTH_PROCESSORS, faultServerForFile } from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';

const ds = await faultServerForFile();
// The files of the shared test project share this module: start from nothing looked at.
beforeEach(() => resetLoggerConfigCheck());
afterEach(() => {
  logs.disable();
  resetLoggerConfigCheck();
});

const unsampled: Context = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.NONE,
});

const RESTRICTIVE: LoggerConfigurator = createLoggerConfigurator([
  { pattern: '*', config: { minimumSeverity: SeverityNumber.WARN, traceBased: true } },
]);

const fingerprints = (from: number): string[] =>
  ds
    .received()
    .slice(from)
    .map((s) => String((s.event.event_data as { fingerprint?: unknown }).fingerprint))
    .sort();

describe.each(BOTH_PROCESSORS)('the logger configuration (%s)', (_name, processorFor) => {
  it('a logger that drops audit records below a severity or in unsampled traces is reported', async () => {
    const before = ds.received().length;
    const log = captureDiag();
    try {
      const processor = processorFor(ds);
      const provider = new LoggerProvider({
        processors: [processor],
        loggerConfigurator: RESTRICTIVE,
      });
      logs.setGlobalLoggerProvider(provider);
      const logger = logs.getLogger('payments');
      logger.emit(auditRecord('no-severity', 'cfg-0'));
      logger.emit({ ...auditRecord('info', 'cfg-0'), severityNumber: SeverityNumber.INFO });
      logger.emit({ ...auditRecord('unsampled', 'cfg-0'), context: unsampled });
      await processor.forceFlush();
      // What the SDK let through: only the record without a severity, outside a trace.
      expect(fingerprints(before)).toEqual(['no-severity']);
      const warned = log.messages.filter((l) => /logger configuration drops/.test(l));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatch(/logger "payments"/);
      expect(warned[0]).toMatch(/below severity WARN \(13\)/);
      expect(warned[0]).toMatch(/unsampled trace \(traceBased\)/);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it('each processor looks at its own scopes: one that saw many scopes does not silence another', async () => {
    const log = captureDiag();
    try {
      // A processor fed by loggers of 70 scopes (more than the cap of 64 it looks at) ...
      const busy = processorFor(ds);
      const busyProvider = new LoggerProvider({ processors: [busy] });
      for (let i = 0; i < 70; i++) {
        busyProvider.getLogger(`library-${i}`).emit(auditRecord(`busy-${i}`, 'cfg-2'));
      }
      await busy.forceFlush();
      await busyProvider.shutdown();
      // ... then another, behind a logger configuration that drops audit records: reported.
      const processor = processorFor(ds);
      const provider = new LoggerProvider({
        processors: [processor],
        loggerConfigurator: RESTRICTIVE,
      });
      logs.setGlobalLoggerProvider(provider);
      logs.getLogger('payments').emit(auditRecord('no-severity', 'cfg-2'));
      await processor.forceFlush();
      const warned = log.messages.filter((l) => /logger configuration drops/.test(l));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatch(/logger "payments"/);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it("the README's way out: audit records through a logger of their own with the default configuration arrive, and nothing is reported", async () => {
    const before = ds.received().length;
    const log = captureDiag();
    try {
      const processor = processorFor(ds);
      const provider = new LoggerProvider({
        processors: [processor],
        loggerConfigurator: createLoggerConfigurator([
          { pattern: 'audit', config: {} },
          { pattern: '*', config: { minimumSeverity: SeverityNumber.WARN, traceBased: true } },
        ]),
      });
      logs.setGlobalLoggerProvider(provider);
      const audit = logs.getLogger('audit');
      audit.emit({ ...auditRecord('own-info', 'cfg-1'), severityNumber: SeverityNumber.INFO });
      audit.emit({ ...auditRecord('own-unsampled', 'cfg-1'), context: unsampled });
      await processor.forceFlush();
      expect(fingerprints(before)).toEqual(['own-info', 'own-unsampled']);
      expect(log.messages.filter((l) => /logger configuration drops/.test(l))).toEqual([]);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it('a global provider that does not feed the processor is not judged', async () => {
    const log = captureDiag();
    try {
      const processor = processorFor(ds);
      const provider = new LoggerProvider({ processors: [processor] });
      const other = new LoggerProvider({ loggerConfigurator: RESTRICTIVE });
      logs.setGlobalLoggerProvider(other);
      provider.getLogger('payments').emit(auditRecord('private', 'cfg-2'));
      await processor.forceFlush();
      expect(log.messages.filter((l) => /logger configuration drops/.test(l))).toEqual([]);
      await provider.shutdown();
      await other.shutdown();
    } finally {
      log.restore();
    }
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * pino: real pino + @opentelemetry/instrumentation-pino (log sending) under NodeSDK. Audit
 * lines carrying `audit.event.type` + `audit.event.data` attributes are delivered; ordinary
 * lines are not. (examples/pino is run end to end by its own test.)
 */
import { createRequire } from 'node:module';
import { AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';
import { tempDir } from '@kubernaut/test-kit';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { describe, expect, it } from 'vitest';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  orderViolations,
} from './fixtures/harness.ts';

const ds = await faultServerForFile();

/** A processor that resolves once it has seen `n` records (pino's OTel stream is asynchronous). */
function countingProcessor(n: number): { processor: LogRecordProcessor; reached: Promise<void> } {
  let seen = 0;
  let resolve!: () => void;
  const reached = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    reached,
    processor: {
      onEmit(_r: ReadWriteLogRecord) {
        if (++seen === n) resolve();
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    },
  };
}

describe('pino through @opentelemetry/instrumentation-pino', () => {
  it('delivers audit lines and ignores ordinary lines', async () => {
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_METRICS_EXPORTER = 'none';
    const audit = new AuditLogRecordProcessor({
      exporter: fastExporter(ds),
      spool: { directory: tempDir() },
    });
    const counter = countingProcessor(30);
    const sdk = new NodeSDK({
      logRecordProcessors: [audit, counter.processor],
      instrumentations: [new PinoInstrumentation()],
    });
    sdk.start();
    // pino is CommonJS: loading it after start() lets the instrumentation patch it.
    const pino = createRequire(import.meta.url)('pino') as typeof import('pino').default;
    const logger = pino({}, pino.destination({ dest: '/dev/null', sync: true }));
    for (let i = 0; i < 20; i++) {
      logger.info(
        {
          'audit.event.category': 'gateway',
          'audit.event.type': 'gateway.signal.received',
          'audit.event.action': 'received',
          'audit.event.outcome': 'success',
          'audit.correlation.id': 'pino-0',
          'audit.event.data': {
            signal_type: 'alert',
            signal_name: 'HighMemoryUsage',
            namespace: 'payment',
            fingerprint: `pino-0:${i}`,
          },
        },
        'signal received',
      );
      if (i % 2 === 0) logger.info({ route: '/healthz' }, 'ordinary line');
    }
    await counter.reached; // all 30 lines reached the OTel SDK
    await audit.forceFlush({ timeoutMillis: 20_000 });
    expect(deliveredIds(ds)).toEqual(Array.from({ length: 20 }, (_, i) => `pino-0:${i}`));
    expect(ds.specViolations).toEqual([]);
    expect(orderViolations(ds)).toEqual([]);
    await sdk.shutdown();
  });
});

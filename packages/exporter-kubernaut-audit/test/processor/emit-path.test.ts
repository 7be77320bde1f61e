// SPDX-License-Identifier: Apache-2.0
/*
 * What emit() itself does in 'batch' mode (intake/ invariant): no disk write in the steady state
 * (the drains reserve provenance seqs ahead of the emits), and an emit time that a caller's
 * observedTimestamp cannot move (the write-through rule of a blocked event loop counts from it).
 */
import { spoolUsageOf } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { tempDir } from '@kubernaut/test-kit';
import type { LogRecord } from '@opentelemetry/api';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { expect, it } from 'vitest';
import { createProcessor } from '../../src/processor/create.ts';
import { nodeFs, type SpoolFs } from '../../src/spool/fs.ts';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  processorFor,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile();

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Spool bytes of `processor` (frames on the spool and reservations). */
function spooled(processor: object): number {
  return spoolUsageOf(processor)?.bytes ?? -1;
}

it("'batch': emits write nothing to disk once running, with more than a batch emitted between drains", async () => {
  let inEmit = false;
  let writesInEmit = 0;
  const fs: SpoolFs = {
    ...nodeFs,
    writeSync: (fd, buf, offset, length, position) => {
      if (inEmit) writesInEmit++;
      return nodeFs.writeSync(fd, buf, offset, length, position);
    },
  };
  const processor = createProcessor(
    { exporter: fastExporter(ds), spool: { directory: tempDir() } },
    { fs },
  );
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('t');
  const before = ds.received().length;
  const CHUNK = 600; // over maxExportBatchSize (512): a drain comes after more than a batch
  for (let c = 0; c < 20; c++) {
    inEmit = true;
    for (let i = 0; i < CHUNK; i++) logger.emit(auditRecord(`ep:${c * CHUNK + i}`, 'ep'));
    inEmit = false;
    await turn(); // the inner processor's export runs: one drain
  }
  // The first emit reserves the first block of seqs; the drains reserve every later one.
  expect(writesInEmit).toBeLessThanOrEqual(1);
  await processor.forceFlush({ timeoutMillis: 30_000 });
  expect(new Set(deliveredIds(ds).slice(before)).size).toBe(20 * CHUNK);
  await provider.shutdown();
});

it('an observedTimestamp an hour in the past does not make emit() write through', async () => {
  const processor = processorFor(ds, { scheduledDelayMillis: 200 });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('t');
  const past = Date.now() - 3_600_000;
  logger.emit({ ...auditRecord('past:0', 'past'), observedTimestamp: past } as LogRecord);
  for (let i = 1; i < 5; i++) logger.emit(auditRecord(`past:${i}`, 'past'));
  expect(spooled(processor)).toBe(0); // pending: the batch timer has not run, nothing is old
  await processor.forceFlush({ timeoutMillis: 30_000 });
  expect(spooled(processor)).toBe(0);
  await provider.shutdown();
});

it('an observedTimestamp an hour ahead does not defer the write-through of a blocked loop', async () => {
  const processor = processorFor(ds, { scheduledDelayMillis: 100 });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('t');
  const future = Date.now() + 3_600_000;
  const emit = (id: string) =>
    logger.emit({ ...auditRecord(id, 'future'), observedTimestamp: future } as LogRecord);
  emit('future:0');
  expect(spooled(processor)).toBe(0);
  // Synchronous work (the event loop does not run) for longer than scheduledDelayMillis:
  const until = performance.now() + 150;
  while (performance.now() < until) {
    // blocked
  }
  emit('future:1'); // the oldest pending record is older than scheduledDelayMillis: written now
  expect(spooled(processor)).toBeGreaterThan(0);
  await processor.forceFlush({ timeoutMillis: 30_000 });
  await provider.shutdown();
});

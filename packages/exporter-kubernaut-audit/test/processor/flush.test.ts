// SPDX-License-Identifier: Apache-2.0
/*
 * forceFlush leaves nothing behind (behaviour 7 of issue 11): a flush that times out removes
 * itself (a flush-per-request pattern during an outage leaves no waiter behind); settledness is
 * an in-memory watermark (no disk read decides it: reads failing with EIO change nothing); an I/O
 * error never makes a flush resolve early (records the spool could not write are held, and the
 * flush waits for their delivery).
 */
import { tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { createProcessor } from '../../src/processor/create.ts';
import { faultyFs } from '../spool/faulty-fs.ts';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  processorFor,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile();

/** Flushes still waiting inside the processor. */
function waiting(processor: object): number {
  return (processor as unknown as { _p: { settlement: { waiting: number } } })._p.settlement
    .waiting;
}

describe('forceFlush', () => {
  it('a flush that times out removes itself: 200 flush-per-request calls during an outage leave no waiter', async () => {
    const before = ds.received().length;
    const processor = processorFor(ds, { spool: { directory: tempDir() } });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    await ds.stop();
    const outcomes: string[] = [];
    for (let i = 0; i < 200; i++) {
      logger.emit(auditRecord(`ffr-${i % 4}:${i}`, `ffr-${i % 4}`));
      await processor.forceFlush({ timeoutMillis: 5 }).then(
        () => outcomes.push('resolved'),
        (e: Error) => outcomes.push(e.name),
      );
    }
    expect(outcomes.filter((o) => o !== 'TimeoutError')).toEqual([]);
    expect(waiting(processor)).toBe(0);
    await ds.listen();
    await processor.forceFlush({ timeoutMillis: 30_000 });
    expect(new Set(deliveredIds(ds).slice(before)).size).toBe(200);
    await provider.shutdown();
  });

  it('settledness is an in-memory watermark: reads failing with EIO do not hold a flush back', async () => {
    const before = ds.received().length;
    const fs = faultyFs();
    fs.fail({ ops: ['readSync', 'readFileSync'], code: 'EIO', path: /\.(kaf|log)$/ });
    const processor = createProcessor(
      { exporter: fastExporter(ds), spool: { directory: tempDir() } },
      { fs },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 50; i++) provider.getLogger('t').emit(auditRecord(`wm-0:${i}`, 'wm-0'));
    await processor.forceFlush({ timeoutMillis: 30_000 });
    expect(deliveredIds(ds).slice(before)).toHaveLength(50);
    expect(fs.failures.get('readSync') ?? 0).toBe(0); // nothing needed reading back
    await provider.shutdown();
  });

  it('an I/O error never resolves a flush early: records the spool cannot write wait for delivery', async () => {
    const before = ds.received().length;
    const fs = faultyFs();
    const processor = createProcessor(
      { exporter: fastExporter(ds), spool: { directory: tempDir() }, scheduledDelayMillis: 10 },
      { fs },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    await ds.stop();
    fs.fail({ ops: ['writeSync'], code: 'EIO', path: /\.kaf$/ });
    for (let i = 0; i < 20; i++) provider.getLogger('t').emit(auditRecord(`eio-0:${i}`, 'eio-0'));
    await expect(processor.forceFlush({ timeoutMillis: 300 })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    await ds.listen();
    await processor.forceFlush({ timeoutMillis: 30_000 });
    expect(deliveredIds(ds).slice(before).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `eio-0:${i}`).sort(),
    );
    fs.heal();
    await provider.shutdown();
  });
});

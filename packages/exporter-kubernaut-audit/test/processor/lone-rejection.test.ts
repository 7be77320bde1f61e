// SPDX-License-Identifier: Apache-2.0
/*
 * One event that DataStorage rejects every time (its own problem+json, naming the event or
 * not) must not stop its lane. Alone, it cannot be told from DataStorage rejecting everything
 * (nothing accepted anywhere): it waits, and the storm is reported. Once later records of the
 * same lane arrive, they go with it: they are accepted, which is the evidence that dead-letters
 * it. (Before the fix the lane resent the event alone for ever and never sent the records
 * behind it: a service with one correlation stopped delivering at its first such event.)
 */
import { captureDiag, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import {
  BOTH_PROCESSORS,
  deadLetters,
  deliveredIds,
  fastExporter,
  faultServerForFile,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile({ checkSpec: true });

describe('a lone event DataStorage rejects every time', () => {
  for (const [name, make] of BOTH_PROCESSORS) {
    it.each([
      ['naming it', 'index'],
      ['without an index', 'schema'],
    ] as const)(`${name}: rejected %s, it waits alone, then goes with the records behind it in its lane, is dead-lettered, and they are delivered`, async (_how, mode) => {
      const diag = captureDiag();
      const cid = `lone-${name}-${mode}`;
      const bad = `${cid}:0`;
      ds.poison((e) => (e.event_data as { fingerprint?: unknown }).fingerprint === bad, mode);
      const dir = tempDir();
      const processor = make(ds, {
        exporter: fastExporter(ds, { timeoutMillis: 1000 }),
        spool: { directory: dir },
      });
      const provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('lone');
      try {
        logger.emit(auditRecord(bad, cid));
        // Alone: no evidence that the event and not DataStorage is the problem.
        await expect(processor.forceFlush({ timeoutMillis: 300 })).rejects.toMatchObject({
          name: 'TimeoutError',
        });
        expect(deadLetters(dir)).toEqual([]);
        await diag.waitFor(/rejects every request/);
        // Records behind it in the same lane (the same correlation).
        for (let i = 1; i <= 3; i++) logger.emit(auditRecord(`${cid}:${i}`, cid));
        await processor.forceFlush({ timeoutMillis: 10_000 });
        const ids = deliveredIds(ds).filter((id) => id.startsWith(`${cid}:`));
        expect(ids).toEqual([`${cid}:1`, `${cid}:2`, `${cid}:3`]);
        const letters = deadLetters(dir);
        expect(letters).toMatchObject([{ reason: 'rejected', status: 400 }]);
        expect(
          (letters[0]?.event as { event_data?: { fingerprint?: unknown } }).event_data?.fingerprint,
        ).toBe(bad);
      } finally {
        diag.restore();
        await provider.shutdown();
      }
    });
  }
});

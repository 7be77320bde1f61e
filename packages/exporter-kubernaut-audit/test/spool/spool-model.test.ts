// SPDX-License-Identifier: Apache-2.0
/*
 * Model-based property test: random appends, out-of-order acks, reads and restarts on a small
 * FileSpool always agree with a plain in-memory model of the contract (what is live, in order,
 * with which payload), and with MemorySpool.
 */

import { cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { afterEach, expect, it } from 'vitest';
import { FileSpool, MemorySpool } from '../../src/spool/index.ts';
import { segmentFiles } from './helpers.ts';

afterEach(cleanupTempDirs);

type Cmd =
  | { op: 'append'; sizes: number[] }
  | { op: 'ack'; picks: number[] }
  | { op: 'read'; limit: number; after: number }
  | { op: 'reopen' };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      sizes: fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 40 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('ack' as const),
      picks: fc.array(fc.nat(), { maxLength: 60 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      limit: fc.integer({ min: 1, max: 100 }),
      after: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
);

it('property: FileSpool (with restarts) and MemorySpool behave like the model', () => {
  fc.assert(
    fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
      const directory = tempDir();
      const options = {
        directory,
        maxBytes: 400_000,
        segmentBytes: 1,
        fsyncIntervalMillis: 60_000,
      };
      let file = FileSpool.open(options);
      const mem = new MemorySpool({ maxBytes: 400_000 });
      const model = new Map<number, string>(); // live seq -> payload
      let liveBytes = 0;
      let next = 0;
      try {
        for (const c of cmds) {
          if (c.op === 'append') {
            const payloads = c.sizes.map((n) => `${next++}:`.padEnd(n, 'é'));
            const r = file.append(payloads);
            expect(mem.append(payloads)).toMatchObject({
              appended: r.appended,
              dropped: r.dropped,
            });
            const dropped = new Set(r.droppedIndexes ?? []);
            let seq = r.firstSeq ?? 0;
            payloads.forEach((p, i) => {
              if (dropped.has(i)) return;
              model.set(seq++, p);
              liveBytes += 28 + Buffer.byteLength(p);
            });
            expect(liveBytes).toBeLessThanOrEqual(400_000);
          } else if (c.op === 'ack') {
            const live = [...model.keys()];
            const seqs = live.length === 0 ? c.picks : c.picks.map((k) => live[k % live.length]!);
            file.ack(seqs);
            mem.ack(seqs);
            for (const s of seqs) {
              const p = model.get(s);
              if (p !== undefined) {
                liveBytes -= 28 + Buffer.byteLength(p);
                model.delete(s);
              }
            }
          } else if (c.op === 'read') {
            const expected = [...model.entries()].filter(([s]) => s > c.after).slice(0, c.limit);
            const got = file.readUnacked(c.limit, c.after).map((e) => [e.seq, e.payload]);
            expect(got).toEqual(expected);
          } else {
            file.close();
            file = FileSpool.open(options);
          }
          expect(file.stats()).toMatchObject({
            records: model.size,
            bytes: liveBytes,
            corruptedSkipped: 0,
          });
        }
        const all = [...model.entries()];
        expect(file.readUnacked(1e9).map((e) => [e.seq, e.payload])).toEqual(all);
        const memAll = mem.readUnacked(1e9).map((e) => e.payload);
        expect(memAll).toEqual(all.map(([, p]) => p));
        // Disk use: segments holding only acknowledged records are gone.
        if (model.size === 0) expect(segmentFiles(directory)).toHaveLength(1);
      } finally {
        file.close();
        mem.close();
      }
    }),
    { numRuns: 60 },
  );
});

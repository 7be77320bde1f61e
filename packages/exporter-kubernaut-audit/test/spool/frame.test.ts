// SPDX-License-Identifier: Apache-2.0
/* Framing: encode/scan round trip, and damage never throws and never hides an intact frame. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACK_MAGIC,
  encodeAckRanges,
  encodeRecords,
  RECORD_MAGIC,
  recordFrameBytes,
  scanFrames,
} from '../../src/spool/frame.ts';

interface Found {
  seq: number;
  appendedAt: number;
  payload: string;
}

function scanRecords(buf: Buffer): {
  found: Found[];
  damaged: Array<[number, number]>;
  end: number;
} {
  const found: Found[] = [];
  const damaged: Array<[number, number]> = [];
  const end = scanFrames(buf, RECORD_MAGIC, {
    frame: (_at, bodyAt, bodyLength) => {
      found.push({
        seq: buf.readDoubleLE(bodyAt),
        appendedAt: buf.readDoubleLE(bodyAt + 8),
        payload: buf.toString('utf8', bodyAt + 16, bodyAt + bodyLength),
      });
      return true;
    },
    damaged: (at, length) => damaged.push([at, length]),
  });
  return { found, damaged, end };
}

describe('frames', () => {
  it('round-trips records, including multi-byte and empty payloads', () => {
    const recs = [
      { seq: 1, appendedAt: 1700000000123, payload: '' },
      { seq: 2, appendedAt: 1700000000124, payload: 'é€😀 KAUR inside' },
      { seq: 2 ** 40, appendedAt: 0, payload: 'x'.repeat(5000) },
    ];
    const buf = encodeRecords(recs.map((r) => ({ ...r })));
    expect(buf.length).toBe(
      recs.reduce((n, r) => n + recordFrameBytes(Buffer.byteLength(r.payload)), 0),
    );
    const { found, damaged, end } = scanRecords(buf);
    expect(found).toEqual(recs);
    expect(damaged).toEqual([]);
    expect(end).toBe(buf.length);
  });

  it('round-trips ack ranges and keeps the two magics apart', () => {
    const buf = encodeAckRanges([
      [1, 5],
      [9, 9],
    ]);
    const ranges: number[] = [];
    scanFrames(buf, ACK_MAGIC, {
      frame: (_at, bodyAt, bodyLength) => {
        for (let p = bodyAt; p < bodyAt + bodyLength; p += 8) ranges.push(buf.readDoubleLE(p));
        return true;
      },
      damaged: () => {
        throw new Error('unexpected damage');
      },
    });
    expect(ranges).toEqual([1, 5, 9, 9]);
    expect(scanRecords(buf).found).toEqual([]);
  });

  it('property: any damage (flips, cuts, inserted garbage) never throws; untouched frames are all found', () => {
    const record = fc.record({ payload: fc.string({ unit: 'grapheme', maxLength: 300 }) });
    const damage = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        mask: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: fc.uint8Array({ maxLength: 64 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 30 }),
        fc.array(damage, { maxLength: 4 }),
        (recs, damages) => {
          const input = recs.map((r, i) => ({
            seq: i + 1,
            appendedAt: 1000 + i,
            payload: r.payload,
          }));
          const frames = input.map((r) => encodeRecords([{ ...r }]));
          // Apply damage to whole frames only, remembering which frames stayed intact.
          const touched = new Set<number>();
          for (const d of damages) {
            const i = d.at % frames.length;
            const f = frames[i]!;
            touched.add(i);
            if (d.kind === 'flip') {
              const g = Buffer.from(f);
              g[d.at % g.length]! ^= d.mask;
              frames[i] = g;
            } else if (d.kind === 'cut') {
              frames[i] = f.subarray(0, d.at % f.length);
            } else {
              frames[i] = Buffer.concat([f, Buffer.from(d.bytes)]);
            }
          }
          const { found, end } = scanRecords(Buffer.concat(frames));
          const seqs = found.map((f) => f.seq);
          for (let i = 0; i < input.length; i++) {
            if (!touched.has(i)) expect(found).toContainEqual(input[i]);
          }
          // Nothing is invented: every found record is one of the inputs, in order.
          for (const f of found) expect(input).toContainEqual(f);
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
          expect(end).toBeLessThanOrEqual(Buffer.concat(frames).length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { ReadArena } from '../../src/send/read-arena.ts';

/** Fills `b` with `v` and returns it. */
const fill = (b: Buffer, v: number) => b.fill(v);

describe('ReadArena', () => {
  it('hands out regions of one ring and reuses them once released', () => {
    const a = new ReadArena(4096);
    const x = fill(a.alloc(1000), 1);
    const y = fill(a.alloc(1000), 2);
    expect(x.buffer).toBe(y.buffer);
    expect(a.regions).toBe(2);
    a.release(x);
    a.release(y);
    expect(a.regions).toBe(0);
    const z = a.alloc(1000);
    expect(z.buffer).toBe(x.buffer);
    expect(z.byteOffset).toBe(x.byteOffset); // reused from the start
  });

  it('starts every region at a multiple of 8 bytes (index arrays of doubles are decoded into regions)', () => {
    const a = new ReadArena(4096);
    const got = [3, 5, 17, 1, 100, 9].map((n) => a.alloc(n));
    for (const b of got) {
      expect(b.buffer).toBe(got[0]?.buffer);
      expect(b.byteOffset % 8).toBe(0);
    }
    for (const b of got.slice(0, 3)) a.release(b);
    const wrapped = [a.alloc(2000), a.alloc(1900), a.alloc(7)];
    for (const b of wrapped) if (b.buffer === got[0]?.buffer) expect(b.byteOffset % 8).toBe(0);
  });

  it('never hands out bytes of a live region (a full ring falls back to buffers of its own)', () => {
    const a = new ReadArena(4096);
    const live: Array<[Buffer, number]> = [];
    for (let i = 0; i < 12; i++) {
      const b = fill(a.alloc(700), i + 1);
      live.push([b, i + 1]);
    }
    for (const [b, v] of live) expect(b.every((byte) => byte === v)).toBe(true);
    const own = live.filter(([b]) => b.buffer !== live[0]?.[0].buffer);
    expect(own.length).toBeGreaterThan(0); // 12 × 700 > 4096: the rest are their own
  });

  it('wraps around behind the oldest live region, in release order', () => {
    const a = new ReadArena(4096);
    const r = [a.alloc(1000), a.alloc(1000), a.alloc(1000), a.alloc(1000)];
    for (const [i, b] of r.entries()) fill(b, i + 1);
    a.release(r[0] as Buffer); // [0,1000) free again
    const w = a.alloc(900);
    expect(w.buffer).toBe(r[0]?.buffer);
    expect(w.byteOffset).toBe(r[0]?.byteOffset);
    fill(w, 9);
    // the live ones are intact
    for (const [i, b] of r.slice(1).entries()) expect(b.every((x) => x === i + 2)).toBe(true);
    // no room between the wrapped tail (900) and the oldest live region (1000)
    expect(a.alloc(200).buffer).not.toBe(w.buffer);
  });

  it('a region released out of order is reclaimed when the older ones are', () => {
    const a = new ReadArena(4096);
    const p = a.alloc(1000);
    const q = a.alloc(1000);
    a.release(q);
    expect(a.regions).toBe(2);
    a.release(p);
    expect(a.regions).toBe(0);
  });

  it('commit() releases the regions of a read that were not kept; release() takes any part of a region', () => {
    const a = new ReadArena(4096);
    const mark = a.mark();
    const kept = a.alloc(500);
    a.alloc(500); // e.g. a damaged frame: never handed to the lane
    const kept2 = a.alloc(500);
    a.commit(mark, [kept.subarray(10), kept2.subarray(3, 20)]);
    expect(a.regions).toBe(3); // the middle one is released but behind a live one
    a.release(kept.subarray(100, 200));
    expect(a.regions).toBe(1);
    a.release(kept2);
    expect(a.regions).toBe(0);
  });

  it('a region larger than half the ring, or a foreign buffer, is not the ring’s', () => {
    const a = new ReadArena(4096);
    const big = a.alloc(2049);
    expect(a.regions).toBe(0);
    const half = a.alloc(2048);
    expect(a.regions).toBe(1);
    a.release(half);
    expect(a.regions).toBe(0);
    a.release(big); // no effect
    a.release(Buffer.alloc(10));
    expect(a.regions).toBe(0);
    expect(a.alloc(0).length).toBe(0);
  });
});

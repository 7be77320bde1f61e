// SPDX-License-Identifier: Apache-2.0
/* allDistinct() answers exactly what `new Set(ids).size === ids.length` answers, for any ids. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allDistinct } from '../../src/deliver/distinct.ts';

describe('allDistinct', () => {
  it('agrees with a Set on any strings: UUIDs, repeats, shared prefixes, lengths, unicode', () => {
    const id = fc.oneof(
      fc.uuid(),
      fc.string({ maxLength: 3 }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      // Ids built to collide on what the table hashes (a long common prefix).
      fc.nat({ max: 40 }).map((n) => `same-prefix-0000-${n}`),
    );
    fc.assert(
      fc.property(fc.array(id, { maxLength: 600 }), fc.boolean(), (ids, repeat) => {
        const list = repeat && ids.length > 0 ? [...ids, ids[ids.length >> 1] as string] : ids;
        expect(allDistinct(list)).toBe(new Set(list).size === list.length);
      }),
      { numRuns: 500 },
    );
  });

  /** The ids read by allDistinct(ids): n, plus one per string comparison in a bucket. */
  function reads(ids: string[]): number {
    let n = 0;
    const counted = new Proxy(ids, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) n++;
        return Reflect.get(target, key, receiver);
      },
    });
    expect(allDistinct(counted)).toBe(true);
    return n;
  }

  it('ids that differ only at one end cost few comparisons (UUIDv1, UUIDv7, sequential ids)', () => {
    const n = 500;
    const hex = (i: number, w: number) => i.toString(16).padStart(w, '0');
    const sequential = Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${hex(i, 12)}`);
    const v7 = Array.from(
      { length: n },
      (_, i) => `0192b3c4-d5e6-7${hex(i, 3)}-8${hex(i * 7, 3)}-${hex(i * 131, 12)}`,
    );
    const v1 = Array.from(
      { length: n },
      (_, i) => `${hex(i * 977, 8)}-1d2c-11ef-9a3b-0242ac120002`,
    );
    for (const ids of [sequential, v7, v1]) expect(reads(ids)).toBeLessThan(3 * n);
  });

  it('ids built to collide are still judged exactly (n² comparisons at most)', () => {
    const ids = Array.from(
      { length: 500 },
      (_, i) => `aaaaaaaa${String.fromCharCode(0x4e00 + i)}zzzzzzzz`,
    );
    expect(allDistinct(ids)).toBe(true);
    expect(allDistinct([...ids, ids[250] as string])).toBe(false);
  });
});

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

  it('500 ids that all share their first 12 characters are still judged (n² comparisons at most)', () => {
    const ids = Array.from({ length: 500 }, (_, i) => `aaaaaaaaaaaa${i}`);
    expect(allDistinct(ids)).toBe(true);
    expect(allDistinct([...ids, 'aaaaaaaaaaaa250'])).toBe(false);
  });
});

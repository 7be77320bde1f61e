// SPDX-License-Identifier: Apache-2.0
/* Per-correlation timestamp order (map/order.ts): regressions counted, monotonic mode, memory. */
import { describe, expect, it } from 'vitest';
import { TimestampOrder } from '../../src/map/order.ts';

const T = (s: number) => `2026-11-30T10:00:${String(s).padStart(2, '0')}.000000Z`;

function see(o: TimestampOrder, cid: string, ts: string): string {
  const kept = o.check(cid, ts);
  o.commit(cid, kept);
  return kept;
}

describe('TimestampOrder', () => {
  it('counts a timestamp earlier than the previous one of the same correlation, not of another', () => {
    const o = new TimestampOrder();
    see(o, 'a', T(10));
    see(o, 'b', T(5)); // another correlation: not a regression
    see(o, 'a', T(10)); // equal: not a regression
    expect(o.regressed).toBe(0);
    see(o, 'a', T(9));
    expect(o.regressed).toBe(1);
  });

  it('monotonic: moves a timestamp not later than the previous one to it + 1 µs and hands back the original', () => {
    const o = new TimestampOrder({ monotonic: true });
    see(o, 'a', T(10));
    expect(see(o, 'a', T(9))).toBe('2026-11-30T10:00:10.000001Z');
    expect(o.original).toBe(T(9));
    expect(see(o, 'a', T(11))).toBe(T(11));
    expect(o.original).toBeUndefined();
  });

  it('remembers at least the last maxCorrelations correlations, however many pass', () => {
    const max = 100;
    const o = new TimestampOrder({ maxCorrelations: max });
    for (let round = 0; round < 5; round++) {
      // `max` other correlations between two events of `hot`: it is still remembered.
      see(o, 'hot', T(20 + round));
      for (let i = 0; i < max - 1; i++) see(o, `c${round}-${i}`, T(0));
    }
    see(o, 'hot', T(1));
    expect(o.regressed).toBe(1);
    // Memory is bounded: a correlation unseen for more than two generations is forgotten.
    const p = new TimestampOrder({ maxCorrelations: max });
    see(p, 'cold', T(30));
    for (let i = 0; i < 2 * max + 1; i++) see(p, `x${i}`, T(0));
    see(p, 'cold', T(1));
    expect(p.regressed).toBe(0);
  });
});

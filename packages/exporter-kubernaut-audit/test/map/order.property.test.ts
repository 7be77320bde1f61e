// SPDX-License-Identifier: Apache-2.0
/*
 * TimestampOrder against a plain model of its rule (two generations of at most N correlation
 * ids, a timestamp earlier than the correlation's last is a regression, monotonic moves it to
 * the last + 1 µs): for any sequence of events, with check() sometimes not followed by commit()
 * (a record refused after its check), the same timestamps, originals and regression count.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimestampOrder } from '../../src/map/order.ts';
import { nextMicrosecond } from '../../src/map/timestamp.ts';

/** The rule, written plainly (string values in two maps, a lookup per step). */
class Model {
  regressed = 0;
  private newer = new Map<string, string>();
  private older = new Map<string, string>();
  private readonly max: number;
  private readonly monotonic: boolean;
  constructor(max: number, monotonic: boolean) {
    this.max = max;
    this.monotonic = monotonic;
  }
  check(cid: string, ts: string): { ts: string; original: string | undefined; back: boolean } {
    const last = this.newer.get(cid) ?? this.older.get(cid);
    const back = last !== undefined && ts < last;
    if (this.monotonic && last !== undefined && ts <= last) {
      return { ts: nextMicrosecond(last), original: ts, back };
    }
    return { ts, original: undefined, back };
  }
  commit(cid: string, ts: string, back: boolean): void {
    if (back) this.regressed++;
    if (this.newer.size >= this.max && !this.newer.has(cid)) {
      this.older = this.newer;
      this.newer = new Map();
    }
    this.newer.set(cid, ts);
  }
}

const stamp = (ms: number) => `${new Date(1_700_000_000_000 + ms).toISOString().slice(0, -1)}000Z`;

describe('TimestampOrder', () => {
  it('agrees with the plain model on any events, generations and refusals', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.array(
          fc.record({
            cid: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
            ms: fc.integer({ min: 0, max: 50 }),
            kept: fc.boolean(),
          }),
          { maxLength: 200 },
        ),
        (max, monotonic, events) => {
          const order = new TimestampOrder({ maxCorrelations: max, monotonic });
          const model = new Model(max, monotonic);
          for (const e of events) {
            const ts = stamp(e.ms);
            const want = model.check(e.cid, ts);
            expect(order.check(e.cid, ts)).toBe(want.ts);
            expect(order.original).toBe(want.original);
            if (e.kept) {
              order.commit(e.cid, want.ts);
              model.commit(e.cid, want.ts, want.back);
            }
          }
          expect(order.regressed).toBe(model.regressed);
        },
      ),
      { numRuns: 500 },
    );
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * The packed form of a batch of prepared records (src/thread/pack.ts): unpack(pack(items))
 * gives the items back, in order, across a real structured clone; and records prepared on one
 * side and stamped on the other encode exactly as encodeEvent does in one step.
 */
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PreparedItem } from '../../src/intake/prepare.ts';
import { encodeEvent, prepareEvent, stampPrepared } from '../../src/map/index.ts';
import { pack, unpack } from '../../src/thread/pack.ts';

const violation: ContractViolation = { field: 'event_data', reason: 'invalid_type', message: 'x' };

const item: fc.Arbitrary<PreparedItem> = fc.oneof(
  fc.record({
    ok: fc.constant(true as const),
    seq: fc.nat(),
    emittedAt: fc.double({ min: 0, max: 4e12, noNaN: true }),
    cid: fc.string({ unit: 'grapheme' }),
    prepared: fc.record({
      ok: fc.constant(true as const),
      json: fc.string({ unit: 'grapheme', minLength: 5 }),
      stamped: fc.boolean(),
      ipLength: fc.option(fc.nat({ max: 50 }), { nil: undefined }),
      provAt: fc.nat({ max: 4 }),
      provLength: fc.constant(60),
    }),
    original: fc.option(fc.string(), { nil: undefined }),
    rid: fc.option(fc.string(), { nil: undefined }),
  }),
  fc.record({
    ok: fc.constant(false as const),
    seq: fc.nat(),
    emittedAt: fc.nat(),
    violations: fc.constant([violation]).map((v) => [...v]),
    record: fc.jsonValue(),
  }),
);

/** What unpack can restore: an unstamped item's provAt is not carried (it is not used). */
function normal(it: PreparedItem): PreparedItem {
  if (!it.ok || it.prepared.stamped) return it;
  return { ...it, prepared: { ...it.prepared, provAt: -1 } };
}

describe('pack/unpack', () => {
  it('unpack(structuredClone(pack(items))) is the items, in order', () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 40 }), (items) => {
        const packed = structuredClone(pack(items));
        expect(unpack(packed)).toEqual(items.map(normal));
      }),
      { numRuns: 200 },
    );
  });

  it('prepare here, stamp there: the same bytes and hash as encodeEvent in one step', () => {
    const env = {
      actor_id: 'svc',
      actor_ip: '10.0.0.1',
      actor_type: 'service',
      correlation_id: 'c-1',
      event_action: 'received',
      event_category: 'gateway',
      event_outcome: 'success',
      event_timestamp: '2026-12-02T04:00:00.000000Z',
      event_type: 'gateway.signal.received',
      version: '1.0',
    } as Parameters<typeof encodeEvent>[0];
    const data = { signal_name: 'HighMemoryUsage', nested: { b: 1, a: [1, 'two'] } };
    const prov = {
      producer_id: 'p-1',
      session_id: 's-1',
      seq: 7,
      prev_hash: 'ab'.repeat(32),
    };
    const prepared = prepareEvent(env, data, true);
    if (!prepared.ok) throw new Error('not prepared');
    const [back] = unpack(
      structuredClone(
        pack([
          {
            ok: true,
            seq: 7,
            emittedAt: 1,
            cid: 'c-1',
            prepared,
            original: undefined,
            rid: undefined,
          },
        ]),
      ),
    );
    if (back === undefined || !back.ok) throw new Error('not unpacked');
    expect(stampPrepared(back.prepared, prov)).toEqual(encodeEvent(env, data, prov));
  });
});

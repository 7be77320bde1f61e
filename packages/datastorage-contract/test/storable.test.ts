// SPDX-License-Identifier: Apache-2.0
/*
 * Storability (DESIGN §5): values that pass the spec but PostgreSQL cannot store are contract
 * violations, so that a client rejects them instead of sending what DataStorage accepts and then
 * fails on forever.
 */
import {
  type AuditEventRequest,
  isStorableString,
  type JsonObject,
  jsonShape,
  parseDateTime,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import { IMPOSSIBLE_DATE_TIMES, minimalEvent } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const valid = () => minimalEvent() as unknown as AuditEventRequest;

const reasons = (event: unknown) =>
  validateAuditEventRequest(event).map((v) => `${v.field}:${v.reason}`);

describe('isStorableString', () => {
  it('refuses NUL and unpaired surrogates, accepts everything else', () => {
    expect(isStorableString('plain ascii')).toBe(true);
    expect(isStorableString('emoji \ud83d\ude00 and ümlauts')).toBe(true);
    expect(isStorableString('a\u0000b')).toBe(false);
    expect(isStorableString('lone \ud800 high')).toBe(false);
    expect(isStorableString('lone \udc00 low')).toBe(false);
    expect(isStorableString('reversed \udc00\ud800')).toBe(false);
  });

  it('agrees with a UTF-8 round trip for any string without NUL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const roundTrips = Buffer.from(s, 'utf8').toString('utf8') === s;
        expect(isStorableString(s)).toBe(roundTrips && !s.includes('\u0000'));
      }),
    );
  });
});

describe('validateAuditEventRequest: what PostgreSQL cannot store', () => {
  it('accepts the valid event', () => {
    expect(validateAuditEventRequest(valid())).toEqual([]);
  });

  it('rejects a NUL or a lone surrogate anywhere in event_data, values and keys', () => {
    const payloads: JsonObject[] = [
      { s: 'a\u0000b' },
      { nested: { deeper: ['ok', 'x\ud800'] } },
      { 'key\u0000': 1 },
      { list: [{ '\udfff': true }] },
    ];
    for (const data of payloads) {
      const event = valid();
      event.event_data = { ...event.event_data, ...data };
      expect(reasons(event)).toEqual(['event_data:unstorable_string']);
    }
  });

  it('rejects a NUL or a lone surrogate in any text field', () => {
    for (const field of [
      'event_action',
      'correlation_id',
      'actor_id',
      'resource_id',
      'namespace',
      'error_message',
    ]) {
      expect(reasons({ ...valid(), [field]: 'a\u0000b' })).toEqual([`${field}:unstorable_string`]);
      expect(reasons({ ...valid(), [field]: 'x\ud800' })).toEqual([`${field}:unstorable_string`]);
    }
  });

  it('rejects an IPv6 address with a zone index', () => {
    expect(reasons({ ...valid(), actor_ip: 'fe80::1%eth0' })).toEqual(['actor_ip:invalid_ip']);
    expect(reasons({ ...valid(), actor_ip: 'fe80::1' })).toEqual([]);
  });

  it.each(IMPOSSIBLE_DATE_TIMES)('rejects the impossible date-time %s', (ts) => {
    expect(parseDateTime(ts)).toBeUndefined();
    expect(reasons({ ...valid(), event_timestamp: ts })).toEqual([
      'event_timestamp:invalid_timestamp',
    ]);
    expect(reasons({ ...valid(), parent_event_date: ts })).toEqual([
      'parent_event_date:invalid_timestamp',
    ]);
  });

  it('parseDateTime agrees with Date on real date-times', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1971-01-01'), max: new Date('9000-01-01'), noInvalidDate: true }),
        (d) => {
          expect(parseDateTime(d.toISOString())).toBe(d.getTime());
        },
      ),
    );
  });
});

describe('callers that already know the shape of event_data', () => {
  it('jsonShape without string checks walks the same depth and answers storable', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string({ unit: 'binary', maxLength: 5 }), (v, s) => {
        const value = { v, s, [s]: [v] };
        const full = jsonShape(value, 8);
        const depthOnly = jsonShape(value, 8, false);
        expect(depthOnly.depth).toBe(full.depth);
        expect(depthOnly.storable).toBe(true);
      }),
    );
  });

  it('validateAuditEventRequest takes eventDataShape instead of walking event_data', () => {
    const ev = { ...valid(), event_data: { ...valid().event_data, note: 'a\u0000b' } };
    expect(reasons(ev)).toContain('event_data:unstorable_string');
    const walked = jsonShape(ev.event_data, 10);
    expect(
      validateAuditEventRequest(ev, { eventDataShape: walked }).map((v) => v.reason),
    ).toContain('unstorable_string');
    // A shape the caller vouches for is used as given (here: one that says "too deep").
    expect(
      validateAuditEventRequest(valid(), { eventDataShape: { depth: 11, storable: true } }).map(
        (v) => v.reason,
      ),
    ).toEqual(['event_data_too_deep']);
  });
});

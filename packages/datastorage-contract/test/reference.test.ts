// SPDX-License-Identifier: Apache-2.0
/*
 * The optimised validation paths (timestamp parsing, the JSON shape walk, the envelope checks)
 * give exactly the answers of the straightforward implementations they replaced
 * (test/reference/), on generated inputs that reach every branch.
 */
import {
  jsonByteLength,
  jsonDepth,
  parseDateTime,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonShape } from '../src/storable.ts';
import { parseDateTime as referenceParseDateTime } from './reference/datetime.ts';
import { jsonShape as referenceJsonShape } from './reference/storable.ts';
import {
  jsonDepth as referenceJsonDepth,
  validateAuditEventRequest as referenceValidate,
} from './reference/validate.ts';

const NOW = Date.parse('2026-03-15T12:00:00.000Z');

/** Date-time-like text: valid instants in many forms, and near misses of each. */
const dateTimeText = fc.oneof(
  fc
    .date({
      min: new Date('0001-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  fc
    .date({
      min: new Date(NOW - 10 * 86_400_000),
      max: new Date(NOW + 7_200_000),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  // Every field drawn freely (month 13, Feb 30, hour 24, ...), in the toISOString layout.
  fc
    .tuple(
      fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 1896, max: 2104 })),
      fc.oneof(fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 99 })),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 24 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 0, max: 999 }),
    )
    .map(
      ([y, mo, d, h, mi, s, ms]) =>
        `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}` +
        `T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}` +
        `.${String(ms).padStart(3, '0')}Z`,
    ),
  // Other RFC 3339 spellings: offsets, lower case, fractions of any length.
  fc
    .tuple(
      fc.date({
        min: new Date('1900-01-01T00:00:00Z'),
        max: new Date('2100-01-01T00:00:00Z'),
        noInvalidDate: true,
      }),
      fc.constantFrom('Z', 'z', '+00:00', '-05:30', '+23:59', '+24:00', '-00:60'),
      fc.constantFrom('T', 't', ' '),
      fc.stringMatching(/^(\.\d{0,9})?$/),
    )
    .map(([d, zone, t, frac]) => `${d.toISOString().slice(0, 19).replace('T', t)}${frac}${zone}`),
  // 24 characters from the alphabet of the fast path's layout.
  fc.string({ unit: fc.constantFrom(...'0123456789-T:.Zt+ x'), minLength: 24, maxLength: 24 }),
  fc.string(),
);

describe('parseDateTime agrees with the reference implementation', () => {
  it('on generated date-time text', () => {
    fc.assert(
      fc.property(dateTimeText, (t) => {
        expect(parseDateTime(t)).toBe(referenceParseDateTime(t));
      }),
      { numRuns: 5000 },
    );
  });

  it('on the edges of the calendar', () => {
    for (const t of [
      '2024-02-29T00:00:00.000Z',
      '2023-02-29T00:00:00.000Z',
      '2000-02-29T23:59:59.999Z',
      '1900-02-29T00:00:00.000Z',
      '0100-02-29T00:00:00.000Z',
      '0099-12-31T00:00:00.000Z',
      '0000-02-29T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '2024-04-31T00:00:00.000Z',
      '2024-12-31T24:00:00.000Z',
      '2024-12-31T23:60:00.000Z',
      '2024-12-31T23:59:60.000Z',
      '2024-00-10T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-01T00:00:00.000z',
      '2024-01-01t00:00:00.000Z',
      '２０２４-01-01T00:00:00.000Z',
    ]) {
      expect(parseDateTime(t), t).toBe(referenceParseDateTime(t));
    }
  });
});

/** JSON values with unstorable strings and keys here and there, some deep. */
const jsonish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1.5, 'ok', '', 'a\u0000b', 'x\ud800', '😀'),
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 4 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const deep = (levels: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? { k: v, s: 'x\ud800' } : [v, 'a\u0000'];
  return v;
};

describe('jsonShape agrees with the reference implementation', () => {
  it('on generated values, with and without a depth limit', () => {
    fc.assert(
      fc.property(jsonish, fc.integer({ min: 0, max: 6 }), (v, limit) => {
        expect(jsonShape(v)).toEqual(referenceJsonShape(v));
        expect(jsonShape(v, limit)).toEqual(referenceJsonShape(v, limit));
        expect(jsonDepth(v, limit)).toBe(referenceJsonDepth(v, limit));
      }),
      { numRuns: 3000 },
    );
  });

  it('on deep values cut at the limit', () => {
    for (const levels of [1, 9, 10, 11, 12, 50, 5000]) {
      const v = deep(levels, 'leaf\u0000');
      for (const limit of [0, 1, 10, 11, Number.POSITIVE_INFINITY]) {
        expect(jsonShape(v, limit)).toEqual(referenceJsonShape(v, limit));
      }
    }
  });
});

const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: max + 2 }),
    fc.string({ unit: 'binary', maxLength: max + 2 }),
    fc.constantFrom('x'.repeat(max), 'x'.repeat(max + 1), '😀'.repeat(max), 'a\u0000', 'b\udc00'),
  );
/** A field value: absent, null, a string near its limit, or something of the wrong type. */
const field = (max: number) =>
  fc.oneof(
    { weight: 6, arbitrary: text(max) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null, '', 42, true, {}, ['x']) },
  );

const eventArb = fc.record(
  {
    version: fc.oneof(fc.constant('1.0'), field(10)),
    event_type: fc.oneof(fc.constant('gateway.signal.received'), field(100)),
    event_timestamp: fc.oneof(
      dateTimeText,
      fc.constantFrom(undefined, null, '', 17),
      fc
        .integer({ min: -9 * 86_400_000, max: 2 * 3_600_000 })
        .map((d) => new Date(NOW + d).toISOString()),
    ),
    event_category: fc.oneof(fc.constantFrom('gateway', 'workflow', 'nope', ''), field(50)),
    event_action: fc.oneof(fc.constant('received'), field(50)),
    event_outcome: fc.constantFrom('success', 'failure', 'pending', 'other', undefined, null, 3),
    correlation_id: fc.oneof(fc.constant('corr-1'), field(255)),
    event_data: fc.oneof(
      fc.constant({ event_type: 'gateway.signal.received', n: 1 }),
      jsonish,
      fc.constantFrom(undefined, null, deep(11, 1), deep(10, 'leaf'), {
        event_type: 'gateway.signal.received',
        big: 'y'.repeat(300 * 1024),
      }),
    ),
    actor_type: field(50),
    actor_id: field(255),
    actor_ip: fc.oneof(
      fc.constantFrom('10.0.0.1', '::1', 'fe80::1%eth0', '999.1.1.1', 'FE80::1', null),
      field(45),
    ),
    resource_type: field(100),
    resource_id: field(255),
    namespace: field(253),
    cluster_id: field(255),
    severity: field(20),
    error_code: field(50),
    error_message: field(300),
    parent_event_id: fc.oneof(
      fc.uuid().map((u) => u.toUpperCase()),
      fc.uuid(),
      fc.constantFrom('not-a-uuid', null, undefined, '', 5),
    ),
    parent_event_date: fc.oneof(dateTimeText, fc.constantFrom(undefined, null, 3)),
    duration_ms: fc.constantFrom(undefined, null, 0, 5, -1, 1.5, 2_147_483_648, '5'),
    retention_days: fc.constantFrom(undefined, null, 1, 2555, 0, 2556, 3.5, '7'),
    is_sensitive: fc.constantFrom(undefined, null, true, false, 'yes'),
  },
  { requiredKeys: [] },
);

describe('validateAuditEventRequest agrees with the reference implementation', () => {
  it('on generated events: the same violations in the same order', () => {
    fc.assert(
      fc.property(eventArb, (ev) => {
        expect(validateAuditEventRequest(ev, { now: NOW })).toEqual(
          referenceValidate(ev, { now: NOW }),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('with the byte length of event_data given instead of measured', () => {
    fc.assert(
      fc.property(eventArb, (ev) => {
        const data = (ev as { event_data?: unknown }).event_data;
        const given =
          data !== null && typeof data === 'object' && jsonDepth(data, 100) <= 100
            ? jsonByteLength(data)
            : undefined;
        expect(validateAuditEventRequest(ev, { now: NOW, eventDataBytes: given })).toEqual(
          referenceValidate(ev, { now: NOW }),
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('on what is not an object', () => {
    for (const v of [null, undefined, 3, 'x', [], [{}]]) {
      expect(validateAuditEventRequest(v)).toEqual(referenceValidate(v));
    }
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * Pure modules: the chain hash, query parameters, and how the server's two leaves agree on
 * timestamps. (Canonical timestamps and JSON themselves are tested in @kubernaut/audit-provenance.)
 */
import { canonicalize, canonicalTimestamp } from '@kubernaut/audit-provenance';
import { parseDateTime, validateAuditEventRequest } from '@kubernaut/datastorage-contract';
import { IMPOSSIBLE_DATE_TIMES } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEventDocument, computeEventHash, type HashedEventFields } from '../src/hash.ts';
import { parseAuditEventsQuery, parseTimeParam } from '../src/query-params.ts';

const BASE_FIELDS: HashedEventFields = {
  event_id: '3f1c2a9e-7b4d-4e8a-9c21-5d6f0a1b2c3d',
  version: '1.0',
  event_timestamp: '2026-11-22T10:00:00.000000Z',
  event_type: 't',
  event_category: 'gateway',
  event_action: 'a',
  event_outcome: 'success',
  correlation_id: 'c',
  actor_type: 'service',
  actor_id: 'x',
  actor_ip: null,
  resource_type: 'r',
  resource_id: 'c',
  parent_event_id: null,
  namespace: null,
  cluster_id: null,
  severity: null,
  duration_ms: null,
  error_code: null,
  error_message: null,
  retention_days: 2555,
  is_sensitive: false,
};

describe('computeEventHash', () => {
  const fields = BASE_FIELDS;

  it('depends on the previous hash and on every hashed field', () => {
    const h = computeEventHash('', fields, '{"event_type":"t"}');
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(computeEventHash('', fields, '{"event_type":"t"}')).toBe(h);
    expect(computeEventHash('p', fields, '{"event_type":"t"}')).not.toBe(h);
    expect(computeEventHash('', fields, '{"event_type":"u"}')).not.toBe(h);
    for (const k of Object.keys(fields) as Array<keyof HashedEventFields>) {
      const changed = {
        ...fields,
        [k]: typeof fields[k] === 'number' ? 7 : typeof fields[k] === 'boolean' ? true : 'z',
      };
      expect(computeEventHash('', changed, '{"event_type":"t"}'), k).not.toBe(h);
    }
  });
});

describe('canonicalEventDocument', () => {
  it('is valid JSON holding exactly the hashed fields, whatever the strings', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'grapheme' }),
        fc.string({ maxLength: 300 }),
        (a, b, c) => {
          const fields: HashedEventFields = {
            ...BASE_FIELDS,
            actor_id: a,
            error_message: b,
            correlation_id: c,
          };
          const doc = canonicalEventDocument(fields, '{"event_type":"t"}');
          expect(JSON.parse(doc)).toEqual({ ...fields, event_data: { event_type: 't' } });
          expect(doc).toBe(canonicalize({ ...fields, event_data: { event_type: 't' } }));
        },
      ),
    );
  });
});

describe('the contract accepts exactly the timestamps the server can store', () => {
  const texts = fc.oneof(
    fc
      .date({ min: new Date('1971-01-01'), max: new Date('9000-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString()),
    fc
      .tuple(
        fc.integer({ min: 1970, max: 2100 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 61 }),
        fc.integer({ min: 0, max: 61 }),
        fc.constantFrom('', '.5', '.123456789'),
        fc.constantFrom('Z', 'z', '+00:00', '-23:59', '+24:00', '+05:60', '', '+0100'),
        fc.constantFrom('T', 't', ' '),
      )
      .map(([y, mo, d, h, mi, s, f, z, t]) => {
        const p = (n: number) => String(n).padStart(2, '0');
        return `${y}-${p(mo)}-${p(d)}${t}${p(h)}:${p(mi)}:${p(s)}${f}${z}`;
      }),
    fc.string(),
  );

  it('parseDateTime (contract) and canonicalTimestamp (provenance) agree on every text', () => {
    fc.assert(
      fc.property(texts, (text) => {
        const t = parseDateTime(text);
        const c = canonicalTimestamp(text);
        expect(t === undefined, text).toBe(c === undefined);
        if (c !== undefined) expect(Date.parse(c)).toBe(t);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ...IMPOSSIBLE_DATE_TIMES,
    '2026-11-22 10:00:00Z',
  ])('the contract rejects %s, which cannot be stored', (ts) => {
    expect(validateAuditEventRequest({ event_timestamp: ts })).toContainEqual(
      expect.objectContaining({ field: 'event_timestamp', reason: 'invalid_timestamp' }),
    );
  });
});

describe('query parameters', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');

  it.each([
    ['24h', '2026-11-21T12:00:00.000Z'],
    ['7d', '2026-11-15T12:00:00.000Z'],
    ['1h30m', '2026-11-22T10:30:00.000Z'],
    ['90s', '2026-11-22T11:58:30.000Z'],
    ['2026-11-20T01:02:03.123456+01:00', '2026-11-20T01:02:03.123456+01:00'],
    ['2026-11-20T01:02:03', '2026-11-20T01:02:03Z'],
    ['2026-11-20', '2026-11-20T00:00:00Z'],
  ])('parses time %s', (text, expected) => {
    expect(parseTimeParam(text, now)).toBe(expected);
  });

  it.each([
    'yesterday',
    '24',
    'h',
    '-1h',
    '2026-02-30',
    '2026-11-20T25:00:00Z',
  ])('rejects time %s', (text) => {
    expect(parseTimeParam(text, now)).toBeUndefined();
  });

  it('defaults limit and offset and keeps filters', () => {
    const r = parseAuditEventsQuery(new URLSearchParams('event_type=a&limit=1000&offset=5'), now);
    expect(r).toEqual({
      ok: true,
      query: expect.objectContaining({ eventType: 'a', limit: 1000, offset: 5 }),
    });
    const d = parseAuditEventsQuery(new URLSearchParams(''), now);
    expect(d.ok && d.query.limit).toBe(50);
  });
});

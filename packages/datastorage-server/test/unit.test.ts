/* Pure modules: canonical timestamps and JSON, the chain hash, query parameters. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalTimestamp, storageProblem } from '../src/events.ts';
import {
  canonicalEventDocument,
  canonicalJson,
  computeEventHash,
  type HashedEventFields,
} from '../src/hash.ts';
import { parseAuditEventsQuery, parseTimeParam } from '../src/query-params.ts';

describe('canonicalTimestamp', () => {
  it.each([
    ['2026-11-22T10:00:00Z', '2026-11-22T10:00:00.000000Z'],
    ['2026-11-22T10:00:00.1Z', '2026-11-22T10:00:00.100000Z'],
    ['2026-11-22T10:00:00.123456789Z', '2026-11-22T10:00:00.123456Z'],
    ['2026-11-22T01:30:00.5+02:00', '2026-11-21T23:30:00.500000Z'],
    ['2026-12-31T23:30:00-01:00', '2027-01-01T00:30:00.000000Z'],
    ['2026-11-22t10:00:00z', '2026-11-22T10:00:00.000000Z'],
  ])('%s -> %s', (input, expected) => {
    expect(canonicalTimestamp(input)).toBe(expected);
  });

  it.each([
    '2026-02-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-11-22T24:00:00Z',
    '2026-11-22T10:60:00Z',
    '2026-11-22T10:00:60Z',
    '2026-11-22T10:00:00+24:00',
    '2026-11-22 10:00:00Z',
    '2026-11-22T10:00:00',
  ])('rejects %s', (input) => {
    expect(canonicalTimestamp(input)).toBeUndefined();
    expect(storageProblem({ event_timestamp: input })).toMatch(/event_timestamp/);
  });

  it('agrees with Date on the instant, for any instant', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1971-01-01'), max: new Date('9000-01-01'), noInvalidDate: true }),
        (d) => {
          const c = canonicalTimestamp(d.toISOString())!;
          expect(Date.parse(c)).toBe(d.getTime());
        },
      ),
    );
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('is independent of key order and parses back to an equal value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        const parsed = JSON.parse(text);
        expect(parsed).toEqual(JSON.parse(JSON.stringify(v)));
        // Re-canonicalising a re-ordered copy gives the same text.
        const reordered = JSON.parse(
          JSON.stringify(v, (_k, x) =>
            x && typeof x === 'object' && !Array.isArray(x)
              ? Object.fromEntries(Object.entries(x).reverse())
              : x,
          ),
        );
        expect(canonicalJson(reordered)).toBe(text);
      }),
    );
  });

  it('writes exactly what JSON.stringify writes with keys sorted (stored hashes stay valid)', () => {
    // The straightforward definition the chain has always used.
    const reference = (v: unknown): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      const o = v as Record<string, unknown>;
      return `{${Object.keys(o)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${reference(o[k])}`)
        .join(',')}}`;
    };
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary', maxDepth: 6 }), (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 500 },
    );
    expect(canonicalJson([-0, 0.1, 1e21, 5e-324, 'a"b', '\u2028', { é: 1, e: 2 }])).toBe(
      reference([-0, 0.1, 1e21, 5e-324, 'a"b', '\u2028', { é: 1, e: 2 }]),
    );
  });
});

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
          expect(doc).toBe(canonicalJson({ ...fields, event_data: { event_type: 't' } }));
        },
      ),
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

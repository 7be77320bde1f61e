// SPDX-License-Identifier: Apache-2.0
/*
 * Property-based: the serialise-once encoder writes exactly the RFC 8785 form of the request,
 * and the provenance hash it computes over those bytes is the verifier's reference hash
 * (`computeProvenanceHash` of @kubernaut/audit-provenance) of the event as it travels and as
 * DataStorage stores it — for any envelope, any JSON payload (keys such as `__proto__`
 * included), with or without a crash declaration or an original timestamp. And the stamp written
 * straight into a buffer (stampPreparedInto, the drain's) is stampPrepared's, byte for byte.
 */
import { canonicalize, computeProvenanceHash } from '@kubernaut/audit-provenance';
import {
  AUDIT_EVENT_CATEGORY_VALUES,
  AUDIT_EVENT_DATA_PROVENANCE_KEY,
  AUDIT_EVENT_OUTCOME_VALUES,
} from '@kubernaut/audit-semantic-conventions';
import { isStorableString } from '@kubernaut/datastorage-contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Envelope,
  encodeEvent,
  fillDefaults,
  type ProvenanceFields,
  prepareEvent,
  stampPrepared,
  stampPreparedInto,
  stampRoom,
} from '../../src/map/index.ts';

const str = (min: number, max: number) =>
  fc.string({ minLength: min, maxLength: max, unit: 'binary' }).filter(isStorableString);
const hex64 = fc.string({
  unit: fc.constantFrom(...'0123456789abcdef'),
  minLength: 64,
  maxLength: 64,
});
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const envelope = fc
  .record({
    event_type: str(1, 100),
    event_timestamp: fc
      .date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true })
      .chain((d) =>
        fc
          .integer({ min: 0, max: 999 })
          .map((us) => `${d.toISOString().slice(0, 23)}${String(us).padStart(3, '0')}Z`),
      ),
    event_category: fc.constantFrom(...AUDIT_EVENT_CATEGORY_VALUES),
    event_action: str(1, 50),
    event_outcome: fc.constantFrom(...AUDIT_EVENT_OUTCOME_VALUES),
    correlation_id: str(1, 255),
    actor_type: opt(str(1, 50)),
    actor_id: opt(str(1, 255)),
    actor_ip: opt(fc.oneof(fc.ipV4(), fc.ipV6())),
    resource_type: opt(str(1, 100)),
    resource_id: opt(str(1, 255)),
    parent_event_id: opt(fc.uuid().map((u) => u.toLowerCase())),
    namespace: opt(str(1, 253)),
    cluster_id: opt(str(1, 255)),
    severity: opt(str(1, 20)),
    duration_ms: opt(fc.integer({ min: 0, max: 2_147_483_647 })),
    error_code: opt(str(1, 50)),
    error_message: opt(str(1, 200)),
    retention_days: opt(fc.integer({ min: 1, max: 2555 })),
    is_sensitive: opt(fc.boolean()),
  })
  .map((r) => fillDefaults(Object.assign(new Envelope(), r)));

// JSON values DataStorage can store, keys like `__proto__` and `constructor` included.
const payload = fc
  .dictionary(
    fc.oneof(str(0, 12), fc.constantFrom('__proto__', 'constructor', 'event_type', 'a', 'B')),
    fc.jsonValue({ maxDepth: 4 }),
    { maxKeys: 8 },
  )
  .filter((v) => !/\\u0000|\\ud[89a-f]/i.test(JSON.stringify(v)));

const provenance = fc.record({
  producer_id: fc.uuid(),
  session_id: fc.uuid(),
  seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  prev_hash: fc.option(hex64, { nil: null }),
  recovered: opt(
    fc.record({
      session_id: fc.uuid(),
      spooled_through: fc.nat(),
      reserved_through: fc.nat(),
    }),
  ),
  original_timestamp: opt(fc.constant('2026-11-20T11:59:59.999999Z')),
});

describe('property: one encoding, the verifier’s hash', () => {
  it('writes the canonical form, and its hash is computeProvenanceHash of the event', () => {
    fc.assert(
      fc.property(envelope, payload, provenance, (env, data, prov) => {
        const enc = encodeEvent(env, data, prov as ProvenanceFields);
        if (!enc.ok) throw new Error(JSON.stringify(enc.violation));
        const event = JSON.parse(enc.json) as Record<string, unknown>;
        expect(canonicalize(event)).toBe(enc.json);
        expect(enc.bytes).toBe(Buffer.byteLength(enc.json));
        expect(computeProvenanceHash(event)).toBe(enc.hash);
        const stamp = (event.event_data as Record<string, Record<string, unknown>>)[
          AUDIT_EVENT_DATA_PROVENANCE_KEY
        ];
        expect(stamp).toMatchObject({ hash: enc.hash, seq: prov.seq, prev_hash: prov.prev_hash });
        // The payload travels as given (own keys, `__proto__` as data), event_type replaced.
        const { [AUDIT_EVENT_DATA_PROVENANCE_KEY]: _p, ...rest } = event.event_data as Record<
          string,
          unknown
        >;
        const expected = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
        delete expected[AUDIT_EVENT_DATA_PROVENANCE_KEY];
        expected.event_type = env.event_type;
        expect(canonicalize(rest)).toBe(canonicalize(expected));
      }),
      { numRuns: 400 },
    );
  });

  it('without provenance: the request, no stamp; the envelope canonical, event_data its own order', () => {
    fc.assert(
      fc.property(envelope, payload, (env, data) => {
        const enc = encodeEvent(env, data, undefined);
        if (!enc.ok) throw new Error(JSON.stringify(enc.violation));
        expect(enc.hash).toBeUndefined();
        const request = JSON.parse(enc.json) as Record<string, unknown>;
        // The envelope's members canonical around event_data.
        const [before, after] = canonicalize({ ...request, event_data: 0 }).split('"event_data":0');
        expect(enc.json.startsWith(`${before}"event_data":`)).toBe(true);
        expect(enc.json.endsWith(after as string)).toBe(true);
        // event_data: the payload's value, with the record's event_type (a source's own
        // audit_provenance travels as data).
        const expected = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
        expected.event_type = env.event_type;
        expect(canonicalize(request.event_data)).toBe(canonicalize(expected));
      }),
      { numRuns: 200 },
    );
  });

  /** The same value with every non-ASCII character replaced (the common audit event). */
  const asciiText = (v: string) => v.replace(/[\u0080-\uffff]/g, 'x');
  const asciiEnvelope = (v: Envelope): Envelope => {
    const e = Object.assign(new Envelope(), v) as unknown as Record<string, unknown>;
    for (const [k, x] of Object.entries(e)) if (typeof x === 'string') e[k] = asciiText(x);
    return e as unknown as Envelope;
  };
  const asciiData = <T>(v: T): T => JSON.parse(asciiText(JSON.stringify(v))) as T;

  it('stampPreparedInto writes stampPrepared’s bytes, hash and provEnd, at any offset; undefined only for non-ASCII or too little room', () => {
    let written = 0;
    fc.assert(
      fc.property(
        envelope,
        payload,
        opt(provenance),
        fc.boolean(),
        fc.nat(64),
        (env0, data0, prov0, toAscii, at) => {
          const env = toAscii ? asciiEnvelope(env0) : env0;
          const data = toAscii ? asciiData(data0) : data0;
          const prov = prov0 as ProvenanceFields | undefined;
          const prepared = prepareEvent(env, data, prov !== undefined);
          if (!prepared.ok) throw new Error(JSON.stringify(prepared.violation));
          const want = stampPrepared(prepared, prov);
          if (!want.ok) throw new Error(JSON.stringify(want.violation));
          const buf = Buffer.alloc(at + stampRoom(prepared), 0xee);
          const got = stampPreparedInto(prepared, prov, buf, at);
          const isAscii = Buffer.byteLength(prepared.json) === prepared.json.length;
          if (got === undefined) {
            expect(isAscii).toBe(false);
            return;
          }
          expect(buf.subarray(at, at + got.bytes).toString('utf8')).toBe(want.json);
          expect(got.bytes).toBe(want.bytes);
          expect(got.hash).toBe(want.hash);
          expect(got.provEnd).toBe(want.provEnd);
          // Written into a caller's object (the drain's, refilled per record): the same answer.
          const out = { bytes: -1, hash: 'stale', provEnd: -1 };
          const buf2 = Buffer.alloc(at + stampRoom(prepared), 0xee);
          expect(stampPreparedInto(prepared, prov, buf2, at, out)).toBe(out);
          expect(out).toEqual({ bytes: got.bytes, hash: got.hash, provEnd: got.provEnd });
          expect(buf2.equals(buf)).toBe(true);
          written++;
          // Too little room: nothing usable, never a wrong answer.
          const small = Buffer.alloc(at + want.bytes, 0xee);
          expect(stampPreparedInto(prepared, prov, small, at)).toBeUndefined();
        },
      ),
      { numRuns: 400 },
    );
    expect(written).toBeGreaterThan(100); // the ASCII half of the runs, at least
  });
});

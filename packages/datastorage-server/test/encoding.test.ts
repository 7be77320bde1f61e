// SPDX-License-Identifier: Apache-2.0
/*
 * The byte-level encodings of the write path give exactly the bytes of their straightforward
 * definitions: the canonical event document (canonicalize of the hashed fields), the
 * HMAC-SHA256 chain hash (node's createHmac), the COPY rows (each field escaped on its own,
 * the batch as one UTF-8 string) and the canonical event_data the server writes before
 * validating (its byte length is the compact JSON's).
 */
import { createHmac, hash, randomUUID } from 'node:crypto';
import { canonicalize } from '@kubernaut/audit-provenance';
import { jsonByteLength } from '@kubernaut/datastorage-contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PreparedEvent } from '../src/events.ts';
import {
  canonicalEventDocument,
  type HashedEventFields,
  hashDocument,
  isPlainJsonString,
} from '../src/hash.ts';
import { CopyRows, copyField, copyLine } from '../src/storage/copy-text.ts';

/** Strings of every kind: plain, escapes, controls, astral, lone surrogates, long. */
const anyText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('', 'a\\b', 'tab\there', 'line\nbreak', 'cr\r', 'quote"', '\ud800', 'é€😀'),
  fc.string({ minLength: 60, maxLength: 300 }),
  fc.constant('x'.repeat(300)),
);
const nullable = fc.option(anyText, { nil: null });

const fieldsArb: fc.Arbitrary<HashedEventFields> = fc.record({
  event_id: fc.uuid(),
  version: anyText,
  event_timestamp: fc.constant('2026-11-22T10:00:00.123456Z'),
  event_type: anyText,
  event_category: anyText,
  event_action: anyText,
  event_outcome: anyText,
  correlation_id: anyText,
  actor_type: anyText,
  actor_id: anyText,
  actor_ip: fc.option(fc.constantFrom('10.0.0.1', '2001:db8::1'), { nil: null }),
  resource_type: anyText,
  resource_id: anyText,
  parent_event_id: fc.option(fc.uuid(), { nil: null }),
  namespace: nullable,
  cluster_id: nullable,
  severity: nullable,
  duration_ms: fc.option(fc.integer({ min: 0, max: 2_147_483_647 }), { nil: null }),
  error_code: nullable,
  error_message: nullable,
  retention_days: fc.integer({ min: 1, max: 2555 }),
  is_sensitive: fc.boolean(),
});

describe('canonicalEventDocument', () => {
  it('is canonicalize of the hashed fields, byte for byte, whatever they hold', () => {
    fc.assert(
      fc.property(fieldsArb, fc.jsonValue(), (fields, data) => {
        const json = canonicalize(data);
        expect(canonicalEventDocument(fields, json)).toBe(
          canonicalize({ ...fields, event_data: JSON.parse(json) }),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('with plainStrings, the same document for fields that need no escaping', () => {
    const plainText = anyText.filter(isPlainJsonString);
    const plainFields = fieldsArb.chain((f) =>
      fc
        .record({
          version: plainText,
          event_type: plainText,
          correlation_id: plainText,
          actor_id: plainText,
          resource_id: plainText,
          namespace: fc.option(plainText, { nil: null }),
          error_message: fc.option(plainText, { nil: null }),
        })
        .map((p) => ({
          ...f,
          ...p,
          event_category: 'gateway',
          event_action: 'received',
          event_outcome: 'success',
          actor_type: 'service',
          resource_type: 'Signal',
          cluster_id: null,
          severity: 'info',
          error_code: null,
        })),
    );
    fc.assert(
      fc.property(plainFields, fc.jsonValue(), (fields, data) => {
        const json = canonicalize(data);
        expect(canonicalEventDocument(fields, json, true)).toBe(
          canonicalEventDocument(fields, json),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('isPlainJsonString: no quote, backslash, control character or surrogate', () => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are excluded.
    const plain = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;
    fc.assert(
      fc.property(anyText, (s) => {
        expect(isPlainJsonString(s)).toBe(plain.test(s));
        if (isPlainJsonString(s)) expect(JSON.stringify(s)).toBe(`"${s}"`);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('hashDocument', () => {
  const utf8Text = fc.oneof(
    anyText,
    fc.string({ unit: 'binary', minLength: 1000, maxLength: 5000 }),
    fc.constant('é'.repeat(100_000)),
  );

  it('with a key: the bytes of createHmac("sha256", key), for any key and text', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.array(fc.tuple(anyText, utf8Text), { minLength: 1, maxLength: 4 }),
        (keyBytes, texts) => {
          const key = Buffer.from(keyBytes);
          for (const [prev, doc] of texts) {
            expect(hashDocument(prev, doc, key)).toBe(
              createHmac('sha256', key)
                .update(prev + doc, 'utf8')
                .digest('hex'),
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with a key: a text larger than the kept buffer, then small ones again', () => {
    const key = Buffer.from('k'.repeat(32));
    for (const text of ['a', 'ü'.repeat(200_000), 'b', 'x'.repeat(5000)]) {
      expect(hashDocument('p', text, key)).toBe(
        createHmac('sha256', key).update(`p${text}`, 'utf8').digest('hex'),
      );
    }
  });

  it('without a key: SHA-256 of the UTF-8 text', () => {
    fc.assert(
      fc.property(anyText, utf8Text, (prev, doc) => {
        expect(hashDocument(prev, doc)).toBe(hash('sha256', Buffer.from(prev + doc), 'hex'));
      }),
      { numRuns: 300 },
    );
  });
});

/** The COPY line of the general path: every field escaped on its own. */
function referenceLine(
  e: PreparedEvent,
  hash: string,
  prev: string,
  algorithm: string,
  pos: bigint,
): string {
  const cols = [
    e.event_id,
    e.version,
    e.event_timestamp,
    e.event_date,
    e.event_type,
    e.event_category,
    e.event_action,
    e.event_outcome,
    e.actor_type,
    e.actor_id,
    e.actor_ip,
    e.resource_type,
    e.resource_id,
    e.correlation_id,
    e.parent_event_id,
    e.parent_event_date,
    e.namespace,
    e.cluster_id,
    e.event_data,
    e.severity,
    e.duration_ms,
    e.error_code,
    e.error_message,
    e.retention_days,
    e.is_sensitive ? 't' : 'f',
    hash,
    prev,
    algorithm,
    String(pos),
  ];
  return `${cols.map((c) => copyField(c)).join('\t')}\n`;
}

const preparedArb: fc.Arbitrary<PreparedEvent> = fc
  .tuple(fieldsArb, fc.jsonValue(), fc.option(fc.constant('2026-11-01'), { nil: null }))
  .map(([f, data, parentDate]) => ({
    ...f,
    event_date: f.event_timestamp.slice(0, 10),
    parent_event_date: parentDate,
    event_data: canonicalize(data),
  }));

describe('COPY rows', () => {
  it('a line is every field escaped on its own (the fast path included)', () => {
    fc.assert(
      fc.property(
        preparedArb,
        fc.oneof(fc.bigInt({ min: 1n, max: 2n ** 62n }), fc.maxSafeNat()),
        fc.constantFrom('', 'ab'.repeat(32)),
        (e, pos, prev) => {
          const doc = canonicalEventDocument(e, e.event_data);
          const h = hash('sha256', doc, 'hex');
          const expected = referenceLine(e, h, prev, 'sha256-unkeyed', BigInt(pos));
          // Given the document or the hash input (the previous hash, then the document).
          expect(copyLine(e, doc, h, prev, 'sha256-unkeyed', pos)).toBe(expected);
          expect(copyLine(e, prev + doc, h, prev, 'sha256-unkeyed', pos)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('the batch buffer holds the UTF-8 bytes of the lines joined, however it grew', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(anyText, fc.string({ unit: 'binary', maxLength: 3000 })), {
          maxLength: 60,
        }),
        fc.integer({ min: 0, max: 4096 }),
        (lines, expected) => {
          const rows = new CopyRows(expected);
          for (const l of lines) rows.add(l);
          expect(rows.bytes().equals(Buffer.from(lines.join(''), 'utf8'))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a batch of realistic rows', () => {
    const rows = new CopyRows(0);
    let text = '';
    for (let i = 0; i < 500; i++) {
      const e: PreparedEvent = {
        event_id: randomUUID(),
        version: '1.0',
        event_timestamp: '2026-11-22T10:00:00.123000Z',
        event_date: '2026-11-22',
        event_type: 'gateway.signal.received',
        event_category: 'gateway',
        event_action: 'received',
        event_outcome: 'success',
        correlation_id: `c-${i % 7}`,
        actor_type: 'service',
        actor_id: 'gateway',
        actor_ip: null,
        resource_type: 'Signal',
        resource_id: `sig-${i}`,
        parent_event_id: null,
        parent_event_date: null,
        namespace: i % 3 === 0 ? null : 'prod',
        cluster_id: null,
        severity: 'info',
        duration_ms: i,
        error_code: null,
        error_message: i % 50 === 0 ? 'tab\tand ü' : null,
        retention_days: 2555,
        is_sensitive: false,
        event_data: canonicalize({ event_type: 'gateway.signal.received', n: i, s: 'ü\\' }),
      };
      const doc = canonicalEventDocument(e, e.event_data);
      const line = copyLine(e, doc, 'h', 'p', 'sha256-unkeyed', BigInt(i + 1));
      rows.add(line);
      text += line;
    }
    expect(rows.bytes().equals(Buffer.from(text, 'utf8'))).toBe(true);
  });
});

describe('canonical event_data written before validation', () => {
  it('has the byte length of the compact JSON of the parsed value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string({ unit: 'binary' }), (v, s) => {
        // Any JSON text: parse it as the server does, with escapes and astral characters.
        const parsed = JSON.parse(JSON.stringify({ v, s, n: [1e21, 1e-7, -0, 0.1] })) as unknown;
        expect(Buffer.byteLength(canonicalize(parsed), 'utf8')).toBe(jsonByteLength(parsed));
      }),
      { numRuns: 1000 },
    );
  });
});

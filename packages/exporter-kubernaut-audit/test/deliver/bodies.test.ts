// SPDX-License-Identifier: Apache-2.0
/*
 * Request bodies built without decoding (property-based): from JSON texts (the standalone
 * exporter) and from spool frames (the sender), whole or any subset, ASCII or not; and the
 * event_timestamp read from an event's bytes.
 */
import { parseDateTime } from '@kubernaut/datastorage-contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventTimeOf } from '../../src/deliver/event-time.ts';
import { arrayBody } from '../../src/deliver/events-batch.ts';
import { bodyBuffer, bodyBytes } from '../../src/deliver/request-body.ts';
import { frameBatch } from '../../src/send/frame-batch.ts';
import type { Frame } from '../../src/send/spool-port.ts';

/** JSON texts of events: ASCII, accents, emoji, escapes. */
const texts = fc.array(
  fc
    .record({
      a: fc.string({ maxLength: 40 }),
      b: fc.constantFrom('x', 'é', '漢字', '😀', '\\', '"'),
      n: fc.integer(),
    })
    .map((o) => JSON.stringify(o)),
  { minLength: 1, maxLength: 30 },
);

/** A frame holding `json` (its body is the request body). */
function frame(json: string[], firstSeq = 1, lane = 0): Frame {
  const body = Buffer.from(`[${json.join(',')}]`, 'utf8');
  const offset = new Uint32Array(json.length);
  const length = new Uint32Array(json.length);
  let pos = 1;
  json.forEach((j, k) => {
    offset[k] = pos;
    length[k] = Buffer.byteLength(j);
    pos += length[k]! + 1;
  });
  return {
    lane,
    firstSeq,
    count: json.length,
    appendedAt: 0,
    emittedAt: new Float64Array(json.length).fill(7),
    provSeq: Float64Array.from(json, (_, k) => k + 1),
    offset,
    length,
    body,
    frameBytes: body.length + 32,
  };
}

describe('arrayBody (standalone bodies)', () => {
  it('is `[` + the texts joined by `,` + `]` in UTF-8, for the whole list and any subset', () => {
    fc.assert(
      fc.property(texts, fc.array(fc.boolean(), { maxLength: 30 }), (json, pick) => {
        expect(arrayBody(json).toString('utf8')).toBe(`[${json.join(',')}]`);
        const idx = json.map((_, k) => k).filter((k) => pick[k] ?? true);
        expect(arrayBody(json, idx).toString('utf8')).toBe(
          `[${idx.map((k) => json[k]).join(',')}]`,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('never cuts a text whose UTF-8 is longer than its units, wherever it sits', () => {
    for (const last of ['é', '€', '😀', 'aé', 'éa']) {
      const json = ['"abc"', `"${last}"`];
      expect(arrayBody(json).toString('utf8')).toBe(`["abc","${last}"]`);
      expect(arrayBody([`"${last}"`]).toString('utf8')).toBe(`["${last}"]`);
    }
  });
});

describe('frameBatch (bodies from spool frames)', () => {
  it('sends whole frames as views of their own bytes: no copy however many frames a request joins', () => {
    const frames = [
      frame(['{"a":1}', '{"a":2}'], 1),
      frame(['{"b":1}'], 3),
      frame(['{"c":1}', '{"c":2}'], 4),
    ];
    const batch = frameBatch(frames.map((f) => ({ frame: f, events: [...Array(f.count).keys()] })));
    const body = batch.body();
    expect(Buffer.isBuffer(body)).toBe(false);
    const parts = body as readonly Buffer[];
    // Every part that carries events shares memory with its frame.
    const inside = (p: Buffer, f: Frame) =>
      p.buffer === f.body.buffer &&
      p.byteOffset >= f.body.byteOffset &&
      p.byteOffset + p.length <= f.body.byteOffset + f.body.length;
    const views = parts.filter((p) => p.length > 1 && frames.some((f) => inside(p, f)));
    expect(views.length).toBe(3);
    expect(bodyBuffer(body).toString()).toBe('[{"a":1},{"a":2},{"b":1},{"c":1},{"c":2}]');
    // A run inside one frame: its slice between the brackets.
    expect(bodyBuffer(batch.body([1, 2])).toString()).toBe('[{"a":2},{"b":1}]');
    expect(bodyBuffer(batch.body([])).toString()).toBe('[]');
  });

  it('copies a scattered subset (many runs) into one buffer', () => {
    const json = Array.from({ length: 400 }, (_, i) => `{"i":${i}}`);
    const batch = frameBatch([{ frame: frame(json), events: json.map((_, k) => k) }]);
    const even = json.map((_, k) => k).filter((k) => k % 2 === 0);
    const body = batch.body(even);
    expect(Buffer.isBuffer(body)).toBe(true);
    expect((body as Buffer).toString()).toBe(`[${even.map((k) => json[k]).join(',')}]`);
  });

  it('a whole single frame is sent as its own bytes; any subset of several frames is re-sliced exactly', () => {
    fc.assert(
      fc.property(texts, texts, fc.array(fc.boolean(), { maxLength: 60 }), (a, b, pick) => {
        const fa = frame(a, 1);
        const whole = frameBatch([{ frame: fa, events: a.map((_, k) => k) }]);
        expect(whole.body()).toBe(fa.body);
        const fb = frame(b, 1 + a.length);
        const batch = frameBatch([
          { frame: fa, events: a.map((_, k) => k) },
          { frame: fb, events: b.map((_, k) => k) },
        ]);
        const all = [...a, ...b];
        expect(bodyBuffer(batch.body()).toString('utf8')).toBe(`[${all.join(',')}]`);
        expect(batch.seqs).toEqual(all.map((_, k) => k + 1));
        const idx = all.map((_, k) => k).filter((k) => pick[k] ?? true);
        const sub = batch.body(idx);
        expect(bodyBuffer(sub).toString('utf8')).toBe(`[${idx.map((k) => all[k]).join(',')}]`);
        expect(bodyBytes(sub)).toBe(bodyBuffer(sub).length);
        all.forEach((j, k) => {
          expect(batch.eventJson(k)).toBe(j);
        });
        expect(batch.provSeq(a.length)).toBe(1);
        expect(batch.emittedAt(0)).toBe(7);
      }),
      { numRuns: 200 },
    );
  });

  it('reads every event_timestamp of a batch in one pass, equal to reading each event alone', () => {
    const event = fc
      .record({
        t: fc.date({
          min: new Date('2000-01-01'),
          max: new Date('2999-01-01'),
          noInvalidDate: true,
        }),
        nested: fc.constantFrom('none', 'before', 'after', 'twice'),
        missing: fc.boolean(),
      })
      .map(({ t, nested, missing }) => {
        const ts = missing ? '' : `,"event_timestamp":"${t.toISOString()}"`;
        const inner = '{"event_timestamp":"1999-01-01T00:00:00Z"}';
        const data =
          nested === 'none' ? '{}' : nested === 'twice' ? `{"a":${inner},"b":[${inner}]}` : inner;
        return nested === 'after'
          ? `{"v":1${ts},"event_data":${data}}`
          : `{"event_data":${data}${ts},"v":1}`;
      });
    fc.assert(
      fc.property(
        fc.array(event, { minLength: 1, maxLength: 20 }),
        fc.array(fc.boolean(), { maxLength: 20 }),
        (json, pick) => {
          const f = frame(json);
          const events = json.map((_, k) => k).filter((k) => pick[k] ?? true);
          const batch = frameBatch([{ frame: f, events }]);
          events.forEach((e, k) => {
            const off = f.offset[e]!;
            expect(batch.eventTime?.(k)).toBe(eventTimeOf(f.body, off, off + f.length[e]!));
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('marks events a previous process sent', () => {
    const f = frame(['{"a":1}', '{"a":2}']);
    f.sentBefore = Uint8Array.from([0, 1]);
    const b = frameBatch([{ frame: f, events: [0, 1] }]);
    expect([b.possiblyDelivered(0), b.possiblyDelivered(1)]).toEqual([false, true]);
  });
});

describe('eventTimeOf', () => {
  const ts = '2026-11-22T10:00:00.123456Z';
  it('reads the top-level event_timestamp, also when event_data holds one too', () => {
    for (const json of [
      `{"event_timestamp":"${ts}","event_data":{"event_timestamp":"1999-01-01T00:00:00Z"}}`,
      `{"event_data":{"event_timestamp":"1999-01-01T00:00:00Z","x":["event_timestamp"]},"event_timestamp":"${ts}"}`,
      `{"a":"\\"event_timestamp\\":\\"1999-01-01T00:00:00Z\\"","event_timestamp":"${ts}"}`,
      `{"event_data":{"k":{"event_timestamp":"1999-01-01T00:00:00Z"}},"event_timestamp":"${ts}","z":1}`,
    ]) {
      const b = Buffer.from(`[${json}]`);
      expect(eventTimeOf(b, 1, b.length - 1), json).toBe(parseDateTime(ts));
    }
  });

  it('equals parseDateTime for any timestamp, canonical or not, valid or not', () => {
    const digits = (n: number) => fc.stringMatching(new RegExp(`^[0-9]{${n}}$`));
    const canonical = fc
      .tuple(
        fc.date({ min: new Date('1970-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }),
        fc.integer({ min: 0, max: 9 }),
        digits(9),
      )
      .map(
        ([d, k, frac]) => `${d.toISOString().slice(0, 19)}${k > 0 ? `.${frac.slice(0, k)}` : ''}Z`,
      );
    const odd = fc.oneof(
      fc.constantFrom(
        '2026-02-31T00:00:00Z',
        '2026-13-01T00:00:00Z',
        '2026-11-22T24:00:00Z',
        '2026-11-22T10:00:00.Z',
        '2026-11-22T10:00:00+02:00',
        '2026-11-22t10:00:00z',
        '0099-01-01T00:00:00Z',
        '2026-11-22T10:00:00.9999999999999999999Z',
      ),
      fc
        .tuple(canonical, fc.nat(25), fc.constantFrom('x', ' ', '-', '9'))
        .map(([t, at, c]) => t.slice(0, at) + c + t.slice(at + 1)),
    );
    fc.assert(
      fc.property(fc.oneof(canonical, odd), (t) => {
        const b = Buffer.from(`{"event_timestamp":"${t}"}`);
        const expected = parseDateTime(t) ?? Number.NaN;
        expect(eventTimeOf(b, 0, b.length)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('NaN when there is none', () => {
    const b = Buffer.from('{"event_data":{"x":1}}');
    expect(eventTimeOf(b, 0, b.length)).toBeNaN();
  });
});

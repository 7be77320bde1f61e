// SPDX-License-Identifier: Apache-2.0
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../src/canonical-json.ts';

describe('canonicalize (RFC 8785 JCS)', () => {
  it('matches the RFC 8785 §3.2.2 example (numbers, string escaping, literals, key order)', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input: Record<string, string> = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const order = Object.values(JSON.parse(canonicalize(input)) as Record<string, string>);
    // JSON.parse re-orders integer-like keys first; check the text order instead.
    const text = canonicalize(input);
    const positions = [
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ].map((v) => text.indexOf(v));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(order).toHaveLength(7);
  });

  it('writes numbers in ECMAScript form', () => {
    expect(
      canonicalize([
        1e21,
        1e20,
        -0,
        0,
        1e-7,
        1e-6,
        5e-324,
        1.7976931348623157e308,
        0.1 + 0.2,
        -1.5,
      ]),
    ).toBe(
      '[1e+21,100000000000000000000,0,0,1e-7,0.000001,5e-324,1.7976931348623157e+308,0.30000000000000004,-1.5]',
    );
  });

  it('escapes strings minimally', () => {
    expect(canonicalize('\u0000\u0008\t\n\u000b\f\r\u001f "\\/\u007f\u2028é😀')).toBe(
      '"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f \\"\\\\/\u007f\u2028é😀"',
    );
    // A lone surrogate (not I-JSON) is escaped, never a crash.
    expect(canonicalize('\ud800')).toBe('"\\ud800"');
  });

  it('nests, drops undefined members, writes undefined array elements as null', () => {
    expect(canonicalize({ b: [1, { z: 1, a: [] }], a: { y: undefined, x: null } })).toBe(
      '{"a":{"x":null},"b":[1,{"a":[],"z":1}]}',
    );
    expect(canonicalize([undefined])).toBe('[null]');
    expect(canonicalize({})).toBe('{}');
  });

  it('refuses values that are not JSON', () => {
    expect(() => canonicalize(Number.NaN)).toThrow(TypeError);
    expect(() => canonicalize({ a: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => canonicalize({ a: 1n })).toThrow(TypeError);
    expect(() => canonicalize(() => 1)).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalize(cyclic)).toThrow(/cyclic/);
    expect(canonicalize(JSON.parse(`${'['.repeat(900)}${']'.repeat(900)}`))).toHaveLength(1800);
  });

  it('round-trips and does not depend on member order (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalize(v);
        const parsed = JSON.parse(c) as unknown;
        expect(canonicalize(parsed)).toBe(c);
        expect(parsed).toEqual(JSON.parse(JSON.stringify(v)));
        const reversed = JSON.parse(JSON.stringify(v), (_k, val: unknown) =>
          val !== null && typeof val === 'object' && !Array.isArray(val)
            ? Object.fromEntries(Object.entries(val as object).reverse())
            : val,
        ) as unknown;
        expect(canonicalize(reversed)).toBe(c);
      }),
      { numRuns: 300 },
    );
  });
});

describe('canonicalize: the writer behind stored event_data and the server chain', () => {
  it('sorts keys at every level and keeps arrays in order', () => {
    expect(canonicalize({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('is independent of key order and parses back to an equal value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalize(v);
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
        expect(canonicalize(reordered)).toBe(text);
      }),
    );
  });

  it('writes exactly what JSON.stringify writes with keys sorted (stored hashes stay valid)', () => {
    // The straightforward definition the server chain has always used.
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
        expect(canonicalize(v)).toBe(reference(v));
      }),
      { numRuns: 500 },
    );
    expect(canonicalize([-0, 0.1, 1e21, 5e-324, 'a"b', '\u2028', { é: 1, e: 2 }])).toBe(
      reference([-0, 0.1, 1e21, 5e-324, 'a"b', '\u2028', { é: 1, e: 2 }]),
    );
  });
});

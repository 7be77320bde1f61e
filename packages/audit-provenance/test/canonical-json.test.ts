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
    // Escapes in the input are gone once parsed; Unicode normalisation forms stay apart.
    expect(canonicalize(JSON.parse('"\\u00e9\\/\\u2028"'))).toBe('"é/\u2028"');
    expect(canonicalize('e\u0301')).not.toBe(canonicalize('\u00e9'));
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

  it('refuses objects that are not plain JSON objects (never written as {} or as index maps)', () => {
    // JSON.stringify writes a Date as its ISO text, a Map as {}, a boxed string as the string:
    // none of them has one JSON form, so none has a hash. Refused, never silently mis-hashed.
    for (const v of [
      new Date(0),
      new Map([['a', 1]]),
      new Set([1]),
      new String('ab'),
      new Number(1),
      new Boolean(true),
      new Uint8Array([1, 2]),
      Buffer.from('ab'),
      /re/,
      new (class Point {
        x = 1;
      })(),
    ]) {
      expect(() => canonicalize({ v })).toThrow(TypeError);
      expect(() => canonicalize([v])).toThrow(TypeError);
    }
    // Plain objects, with or without a prototype, and from JSON.parse with a `__proto__` key.
    expect(canonicalize(Object.assign(Object.create(null), { b: 1, a: 2 }))).toBe('{"a":2,"b":1}');
    expect(canonicalize(JSON.parse('{"__proto__":{"x":1},"constructor":0}'))).toBe(
      '{"__proto__":{"x":1},"constructor":0}',
    );
  });

  it('matches the number vectors of RFC 8785 Appendix B', () => {
    const vectors: Array<[string, string]> = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, text] of vectors) {
      const n = Buffer.from(bits, 'hex').readDoubleBE(0);
      expect(canonicalize(n)).toBe(text);
      // And the text, parsed back (as a verifier reads it), is the same number.
      expect(canonicalize(JSON.parse(text))).toBe(text);
    }
    for (const bits of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) {
      expect(() => canonicalize(Buffer.from(bits, 'hex').readDoubleBE(0))).toThrow(TypeError);
    }
  });

  it('agrees with an independent RFC 8785 writer on hostile values (property)', () => {
    // Written from the RFC's rules, not from canonicalize: UTF-16 code-unit key order by an
    // explicit comparison, escapes by table, numbers as the shortest round-tripping digits laid
    // out by ECMAScript's Number::toString rules.
    const cmp16 = (a: string, b: string): number => {
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const d = a.charCodeAt(i) - b.charCodeAt(i);
        if (d !== 0) return d;
      }
      return a.length - b.length;
    };
    const esc: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
    const str = (s: string): string => {
      let out = '"';
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        const lone =
          (c >= 0xd800 &&
            c <= 0xdbff &&
            !(s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff)) ||
          (c >= 0xdc00 &&
            c <= 0xdfff &&
            !(s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff));
        if (c === 0x22) out += '\\"';
        else if (c === 0x5c) out += '\\\\';
        else if (esc[c] !== undefined) out += esc[c];
        else if (c < 0x20 || lone) out += `\\u${c.toString(16).padStart(4, '0')}`;
        else out += s[i];
      }
      return `${out}"`;
    };
    /** x as an exact fraction [numerator, denominator] (from its IEEE 754 bits). */
    const exact = (x: number): [bigint, bigint] => {
      const dv = new DataView(new ArrayBuffer(8));
      dv.setFloat64(0, x);
      const bits = dv.getBigUint64(0);
      const biased = Number((bits >> 52n) & 0x7ffn);
      let m = bits & ((1n << 52n) - 1n);
      let e = -1074;
      if (biased !== 0) {
        m |= 1n << 52n;
        e = biased - 1075;
      }
      return e >= 0 ? [m << BigInt(e), 1n] : [m, 1n << BigInt(-e)];
    };
    const num = (x: number): string => {
      if (x === 0) return '0';
      if (x < 0) return `-${num(-x)}`;
      // The fewest digits k that read back as x (toPrecision gives the nearest k-digit decimal).
      let k = 1;
      while (Number(x.toPrecision(k)) !== x) k++;
      const [m = '', e = '0'] = x.toExponential(k - 1).split('e');
      const n = Number(e) + 1;
      // Of the k-digit decimals that read back as x, the closest to x; on a tie the even one
      // (ECMAScript Number::toString; toExponential takes the larger on a tie).
      const q = n - k;
      const [xn, xd] = exact(x);
      const distance = (d: bigint): bigint => {
        const diff = q >= 0 ? d * 10n ** BigInt(q) * xd - xn : d * xd - xn * 10n ** BigInt(-q);
        return diff < 0n ? -diff : diff;
      };
      const nearest = BigInt(m.replace('.', ''));
      let best = nearest;
      for (const d of [nearest - 1n, nearest + 1n]) {
        if (d.toString().length !== k || Number(`${d}e${q}`) !== x) continue;
        const a = distance(d);
        const b = distance(best);
        if (a < b || (a === b && d % 2n === 0n)) best = d;
      }
      const digits = best.toString();
      if (k <= n && n <= 21) return digits + '0'.repeat(n - k);
      if (0 < n && n <= 21) return `${digits.slice(0, n)}.${digits.slice(n)}`;
      if (-6 < n && n <= 0) return `0.${'0'.repeat(-n)}${digits}`;
      const exp = `e${n - 1 < 0 ? '-' : '+'}${Math.abs(n - 1)}`;
      return k === 1 ? `${digits}${exp}` : `${digits[0]}.${digits.slice(1)}${exp}`;
    };
    const jcs = (v: unknown): string => {
      if (v === null) return 'null';
      if (typeof v === 'boolean') return String(v);
      if (typeof v === 'number') return num(v);
      if (typeof v === 'string') return str(v);
      if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
      const o = v as Record<string, unknown>;
      return `{${Object.keys(o)
        .sort(cmp16)
        .map((k) => `${str(k)}:${jcs(o[k])}`)
        .join(',')}}`;
    };
    const hostileString = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.constantFrom(
        '\u2028\u2029',
        'e\u0301',
        '\u00e9',
        '\ud83d\ude00',
        '\ufb33',
        '\ud800',
        '\udc00x',
        '\u0000',
        '\u007f',
        '</',
      ),
    );
    const hostileNumber = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      // 145488883439713.12: exactly halfway between two 17-digit decimals (ties go to the even one).
      fc.constantFrom(
        -0,
        1e21,
        1e-7,
        5e-324,
        2 ** 53 + 1,
        0.1 + 0.2,
        1e23,
        -1.5e-7,
        145488883439713.12,
      ),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small', maxDepth: 5 },
        fc.constant(null),
        fc.boolean(),
        hostileNumber,
        hostileString,
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(
          fc.oneof(hostileString, fc.constantFrom('1', '01', '10', '__proto__', 'constructor')),
          tie('v'),
          { maxKeys: 5 },
        ),
      ),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        const parsed = JSON.parse(JSON.stringify(v)) as unknown;
        expect(canonicalize(parsed)).toBe(jcs(parsed));
        expect(canonicalize(JSON.parse(canonicalize(parsed)))).toBe(canonicalize(parsed));
      }),
      { numRuns: 1000 },
    );
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

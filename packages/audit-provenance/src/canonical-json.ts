// SPDX-License-Identifier: Apache-2.0
/*
 * JSON Canonicalization Scheme (RFC 8785, "JCS"), small and dependency-free:
 *
 * - objects: members sorted by key, comparing keys as arrays of UTF-16 code units
 *   (RFC 8785 §3.2.3; JavaScript's default string order is exactly that); no whitespace;
 * - numbers: the ECMAScript Number-to-String form (RFC 8785 §3.2.2.3): `1e+21`, `1e-7`,
 *   `-0` written as `0`; NaN and ±Infinity are not JSON and are refused;
 * - strings: minimal escaping (RFC 8785 §3.2.2.2): `\"`, `\\`, `\b \f \n \r \t`, other
 *   control characters as `\u00xx` (lower-case hex), everything else as itself (UTF-8 when
 *   hashed). A lone surrogate is written as `\udxxx` (as JSON.stringify does): such text is
 *   not I-JSON and DataStorage cannot store it, but canonicalisation never crashes on it;
 * - literals `true`, `false`, `null`; arrays in order.
 *
 * Object members whose value is `undefined` are left out (as JSON.stringify does) and
 * `undefined` array elements are written as `null`. BigInt, functions, symbols and cycles are
 * refused with a TypeError, and so is every object that is neither an array nor a plain object
 * (prototype Object.prototype, of any realm, or null): a Date, Map, boxed primitive, typed array
 * or class instance has no one JSON form (JSON.stringify writes a Date as text, a Map as `{}`),
 * so it has no canonical form either and is never silently hashed as one.
 */

/** Deeper nesting than this is refused (a cycle, or not an audit payload). */
const MAX_DEPTH = 1000;

// Strings that JSON writes as they are between quotes (no quote, backslash, control character
// or surrogate): the common case, written without calling JSON.stringify.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is excluded.
const PLAIN_RE = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** A string as JSON (and RFC 8785) writes it. */
function quote(s: string): string {
  return s.length < 256 && PLAIN_RE.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** An object literal, JSON.parse's objects, Object.create(null); from any realm. */
function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/** Returns the RFC 8785 canonical JSON text of `value`. Throws TypeError on non-JSON values. */
export function canonicalize(value: unknown): string {
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`canonical JSON: ${value} is not a JSON number`);
      }
      // ECMAScript Number::toString; JSON.stringify(-0) === '0'.
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) {
        throw new TypeError('canonical JSON: nesting too deep (cyclic structure?)');
      }
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const v: unknown = value[i];
          out += v === undefined ? 'null' : write(v, depth + 1);
        }
        return `${out}]`;
      }
      if (!isPlainObject(value)) {
        const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
        throw new TypeError(
          `canonical JSON: ${typeof name === 'string' && name !== '' ? `a ${name}` : 'this object'} is not a JSON value`,
        );
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj);
      // Sorted by UTF-16 code units (Array#sort's order); often they already are.
      for (let i = 1; i < keys.length; i++) {
        if (keys[i - 1]! > keys[i]!) {
          keys.sort();
          break;
        }
      }
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        const v = obj[k];
        if (v === undefined) continue;
        if (out.length > 1) out += ',';
        out += quote(k);
        out += ':';
        out += write(v, depth + 1);
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`canonical JSON: a ${typeof value} is not a JSON value`);
  }
}

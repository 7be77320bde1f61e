// SPDX-License-Identifier: Apache-2.0
/*
 * Checks of a JSON request body that JSON.parse cannot make: number literals that a double
 * cannot hold. `1e400` parses to Infinity (then written back as `null`) and `1e-400` to 0, so
 * storing the parsed value would silently change what the client sent, and the hash chain
 * would vouch for the changed value. Such events are rejected instead (upstream rejects the
 * overflowing ones with `invalid_event_data`).
 *
 * (JSON.parse itself is iterative in V8: a deeply nested body parses without exhausting the
 * stack; the depth limits are checked on the parsed value before any recursive code runs.)
 */

// A JSON number in value position (after `:`, `,` or `[`) that could overflow (exponent of
// three digits or more, 309+ integer digits) or underflow to zero (300+ zeros after the point).
// A superset test: a match only sends the body through the exact (slower) check below.
const SUSPECT_NUMBER_RE = /[:,[]\s*-?(?:\d+(?:\.\d+)?[eE][+-]?\d{3}|\d{309}|0\.0{300})/;

/** A number literal the server cannot store as written. */
export interface UnrepresentableNumber {
  /** Index of the top-level array element holding it (undefined when the body is an object). */
  index: number | undefined;
  /** The literal as sent (shortened when long). */
  literal: string;
}

function representable(value: number, source: string): boolean {
  if (!Number.isFinite(value)) return false;
  if (value !== 0) return true;
  // Zero is right only when the literal's digits before the exponent are all zeros.
  const mantissa = source.split(/[eE]/)[0] ?? source;
  return !/[1-9]/.test(mantissa);
}

const shorten = (s: string) => (s.length > 40 ? `${s.slice(0, 20)}…${s.slice(-10)}` : s);

/**
 * The first number literal in `text` (valid JSON) that does not survive parsing as a double,
 * or undefined. Fast when the text has no suspicious literal (one regular expression test).
 */
export function findUnrepresentableNumber(text: string): UnrepresentableNumber | undefined {
  if (!SUSPECT_NUMBER_RE.test(text)) return undefined;
  let bad: string | undefined;
  let badCount = 0;
  // Post-order calls whose holder is an array: the root array's elements appear among them.
  const arrayCalls: Array<{ holder: unknown; key: string; bad: number }> = [];
  const root = JSON.parse(
    text,
    function (this: unknown, key: string, value: unknown, context?: { source?: string }) {
      if (typeof value === 'number' && context?.source !== undefined) {
        if (!representable(value, context.source)) {
          badCount++;
          bad ??= context.source;
        }
      }
      if (Array.isArray(this)) arrayCalls.push({ holder: this, key, bad: badCount });
      return value;
    },
  ) as unknown;
  if (bad === undefined) return undefined;
  let index: number | undefined;
  if (Array.isArray(root)) {
    for (const c of arrayCalls) {
      if (c.holder === root && c.bad > 0) {
        index = Number(c.key);
        break;
      }
    }
  }
  return { index, literal: shorten(bad) };
}

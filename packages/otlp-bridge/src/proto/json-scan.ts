// SPDX-License-Identifier: Apache-2.0
/*
 * One reading pass over an OTLP/JSON body before JSON.parse runs:
 * - the count of the objects and arrays it would parse into. As for protobuf (wire-check.ts),
 *   decoding costs memory per value, not per byte: `{},` is three bytes of text and a few hundred
 *   bytes once parsed, converted to protobufjs messages and to log records, so a 16 MiB body of
 *   them would take gigabytes;
 * - whether a run of 16 or more digits stands outside string literals: only then can the body
 *   hold a number JSON.parse would round (an int64 written as a JSON number), and only then does
 *   the codec rewrite the text (quoteLargeIntegers). OpenTelemetry's exporters write int64 values
 *   as strings, so their bodies skip that second pass.
 *
 * Invariants: reads the UTF-8 bytes once (escapes in strings honoured); throws
 * `DecodeLimitError` as soon as the count passes `max`; never allocates beyond its result.
 * `longDigitRuns` is false only when no unquoted integer literal has 16 or more digits.
 * Not a validator: malformed JSON is JSON.parse's to refuse.
 */
import { DecodeLimitError } from './wire-check.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** Digits in a row from which a JSON number may not survive JSON.parse exactly. */
const LONG_DIGIT_RUN = 16;

export interface JsonScan {
  /** Objects and arrays. */
  containers: number;
  /** A run of 16 or more digits outside string literals. */
  longDigitRuns: boolean;
}

/** Scans a JSON text (see the module comment); throws `DecodeLimitError` past `max` containers. */
export function scanJson(bytes: Uint8Array, max: number): JsonScan {
  let containers = 0;
  let inString = false;
  let digits = 0;
  let longDigitRuns = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c >= DIGIT_0 && c <= DIGIT_9) {
      if (++digits >= LONG_DIGIT_RUN) longDigitRuns = true;
      continue;
    }
    digits = 0;
    if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++containers > max) {
        throw new DecodeLimitError(`the request holds more than ${max} JSON objects and arrays`);
      }
    }
  }
  return { containers, longDigitRuns };
}

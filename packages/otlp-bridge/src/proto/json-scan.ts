// SPDX-License-Identifier: Apache-2.0
/*
 * A count of the objects and arrays an OTLP/JSON body would parse into, before JSON.parse runs.
 * As for protobuf (wire-check.ts), decoding costs memory per value, not per byte: `{},` is three
 * bytes of text and a few hundred bytes once parsed, converted to protobufjs messages and to
 * log records, so a 16 MiB body of them would take gigabytes.
 *
 * Invariants: reads the UTF-8 bytes once, counting `{` and `[` outside string literals (escapes
 * honoured); throws `DecodeLimitError` as soon as the count passes `max`; never allocates.
 * Not a validator: malformed JSON is JSON.parse's to refuse.
 */
import { DecodeLimitError } from './wire-check.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/** The objects and arrays of a JSON text; throws `DecodeLimitError` past `max`. */
export function countJsonContainers(bytes: Uint8Array, max: number): number {
  let count = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++count > max) {
        throw new DecodeLimitError(`the request holds more than ${max} JSON objects and arrays`);
      }
    }
  }
  return count;
}

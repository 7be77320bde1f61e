// SPDX-License-Identifier: Apache-2.0
/*
 * `event_timestamp` of an encoded event, read from its JSON bytes without parsing the event:
 * the deliverer needs it to dead-letter events older than DataStorage's 7-day window without
 * sending them. Pure.
 *
 * The key `"event_timestamp":"` cannot occur inside a JSON string (its quotes would be
 * escaped), so when it occurs once in an event it is the top-level member. Only when
 * event_data holds a member of that name too (several occurrences) is the event walked, by a
 * small scanner that skips strings and tracks the nesting depth.
 */
import { parseDateTime } from '@kubernaut/datastorage-contract';

const KEY = Buffer.from('"event_timestamp":"', 'latin1');

/** Ms since the epoch of the top-level `event_timestamp` in `json[start, end)`; NaN when absent or invalid. */
export function eventTimeOf(json: Buffer, start: number, end: number): number {
  let at = json.indexOf(KEY, start);
  if (at < 0 || at >= end) return Number.NaN;
  const second = json.indexOf(KEY, at + KEY.length);
  if (second >= 0 && second < end) at = topLevelKey(json, start, end);
  if (at < 0) return Number.NaN;
  const from = at + KEY.length;
  const close = json.indexOf(0x22, from); // the closing quote (a timestamp holds no escapes)
  if (close < 0 || close >= end || close - from > 64) return Number.NaN;
  return parseDateTime(json.toString('latin1', from, close)) ?? Number.NaN;
}

/** Offset of `"event_timestamp":"` at depth 1 of the object in `json[start, end)`, or -1. */
function topLevelKey(json: Buffer, start: number, end: number): number {
  let depth = 0;
  for (let i = start; i < end; i++) {
    const c = json[i];
    if (c === 0x22) {
      if (depth === 1 && json.compare(KEY, 0, KEY.length, i, i + KEY.length) === 0) return i;
      // Skip the string.
      for (i++; i < end; i++) {
        const d = json[i];
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return -1;
}

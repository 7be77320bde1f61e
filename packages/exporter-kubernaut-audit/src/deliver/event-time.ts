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
  return at < 0 ? Number.NaN : timeAt(json, at, end);
}

/**
 * eventTimeOf for several events of one buffer at once (`offset`/`length` per event, the
 * events in ascending order): one search pass over the span they cover, so that each event's
 * bytes are searched once.
 */
export function eventTimesOf(
  json: Buffer,
  offset: ArrayLike<number>,
  length: ArrayLike<number>,
  events: readonly number[],
  out: Float64Array,
  outAt: number,
): void {
  const n = events.length;
  if (n === 0) return;
  const last = events[n - 1] as number;
  const spanEnd = (offset[last] as number) + (length[last] as number);
  let at = json.indexOf(KEY, offset[events[0] as number] as number);
  for (let k = 0; k < n; k++) {
    const e = events[k] as number;
    const start = offset[e] as number;
    const end = start + (length[e] as number);
    // Skip occurrences before this event (in events not asked for).
    while (at >= 0 && at < start) at = json.indexOf(KEY, at + KEY.length);
    if (at < 0 || at >= end) {
      out[outAt + k] = Number.NaN;
      continue;
    }
    const next = json.indexOf(KEY, at + KEY.length);
    if (next >= 0 && next < end) {
      // More than one in this event: find the top-level one.
      const top = topLevelKey(json, start, end);
      out[outAt + k] = top < 0 ? Number.NaN : timeAt(json, top, end);
      at = next;
      while (at >= 0 && at < end) at = json.indexOf(KEY, at + KEY.length);
    } else {
      out[outAt + k] = timeAt(json, at, end);
      at = next >= spanEnd ? -1 : next;
    }
  }
}

/** The timestamp whose key starts at `at`. */
function timeAt(json: Buffer, at: number, end: number): number {
  const from = at + KEY.length;
  const close = json.indexOf(0x22, from); // the closing quote (a timestamp holds no escapes)
  if (close < 0 || close >= end || close - from > 64) return Number.NaN;
  const fast = utcMillis(json, from, close);
  if (!Number.isNaN(fast)) return fast;
  return parseDateTime(json.toString('latin1', from, close)) ?? Number.NaN;
}

/** Two ASCII digits at `at` as a number, or NaN. */
function two(b: Buffer, at: number): number {
  const x = (b[at] as number) - 0x30;
  const y = (b[at + 1] as number) - 0x30;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : Number.NaN;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what the exporter writes) read straight from the bytes,
 * digits below the millisecond dropped as parseDateTime does; NaN for any other form (the
 * caller then parses it fully) or an impossible date or time.
 */
function utcMillis(b: Buffer, from: number, to: number): number {
  const n = to - from;
  if (n < 20 || b[to - 1] !== 0x5a || b[from + 4] !== 0x2d || b[from + 7] !== 0x2d) {
    return Number.NaN;
  }
  if (b[from + 10] !== 0x54 || b[from + 13] !== 0x3a || b[from + 16] !== 0x3a) return Number.NaN;
  const year = two(b, from) * 100 + two(b, from + 2);
  const month = two(b, from + 5);
  const day = two(b, from + 8);
  const hour = two(b, from + 11);
  const minute = two(b, from + 14);
  const second = two(b, from + 17);
  let ms = 0;
  if (n > 20) {
    // `.` and at least one digit; the first three digits are the milliseconds.
    if (b[from + 19] !== 0x2e || n < 22) return Number.NaN;
    for (let i = from + 20, k = 0; i < to - 1; i++, k++) {
      const d = (b[i] as number) - 0x30;
      if (d < 0 || d > 9) return Number.NaN;
      if (k < 3) ms += d * (k === 0 ? 100 : k === 1 ? 10 : 1);
    }
  }
  if (!(month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59)) {
    return Number.NaN;
  }
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Day 31 of a 30-day month rolls over: not a real date.
  if (new Date(t).getUTCDate() !== day || year < 100) return Number.NaN;
  return t;
}

/** Offset of `"event_timestamp":"` at depth 1 of the object in `json[start, end)`, or -1. */
function topLevelKey(json: Buffer, start: number, end: number): number {
  let depth = 0;
  for (let i = start; i < end; i++) {
    const c = json[i];
    if (c === 0x22) {
      if (
        depth === 1 &&
        i + KEY.length <= end &&
        json.compare(KEY, 0, KEY.length, i, i + KEY.length) === 0
      ) {
        return i;
      }
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

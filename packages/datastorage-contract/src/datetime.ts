// SPDX-License-Identifier: Apache-2.0
/*
 * RFC 3339 date-times as DataStorage accepts them (the OpenAPI `date-time` format, stored in a
 * `timestamptz` column): `T` or `t`, `Z`/`z` or a `±HH:MM` offset, any number of fractional
 * digits, and a real calendar date and time of day: no month 13, no Feb 31, no 24:00, no leap
 * second, no offset beyond ±23:59 (the database rejects those even where the spec's format
 * check lets them through).
 */

const DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The value of the `n` decimal digits at `i`, or -1 when one of them is not a digit. */
function digits(t: string, i: number, n: number): number {
  let v = 0;
  for (let k = i; k < i + n; k++) {
    const c = t.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * The instant of a date-time in the `Date#toISOString` form most producers send
 * (`YYYY-MM-DDTHH:MM:SS.sssZ`, years 100 and later); NaN when it names no real date and time;
 * undefined when the text is not in that form (the general parser decides).
 */
function parseIsoMillis(t: string): number | undefined {
  if (
    t.length !== 24 ||
    t.charCodeAt(4) !== 45 || // -
    t.charCodeAt(7) !== 45 ||
    t.charCodeAt(10) !== 84 || // T
    t.charCodeAt(13) !== 58 || // :
    t.charCodeAt(16) !== 58 ||
    t.charCodeAt(19) !== 46 || // .
    t.charCodeAt(23) !== 90 // Z
  ) {
    return undefined;
  }
  const year = digits(t, 0, 4);
  const month = digits(t, 5, 2);
  const day = digits(t, 8, 2);
  const hour = digits(t, 11, 2);
  const minute = digits(t, 14, 2);
  const second = digits(t, 17, 2);
  const ms = digits(t, 20, 3);
  // (Years before 100 take the general path: Date.UTC reads them as 19xx.)
  if (year < 100 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || ms < 0) {
    return undefined;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    return Number.NaN;
  }
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : MONTH_DAYS[month - 1]!)) return Number.NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

/**
 * The instant an RFC 3339 date-time names, in ms since the epoch (digits below the millisecond
 * dropped); undefined when the text is not one, or names no real date and time.
 */
export function parseDateTime(text: string): number | undefined {
  const fast = parseIsoMillis(text);
  if (fast !== undefined) return Number.isNaN(fast) ? undefined : fast;
  const m = DATE_TIME_RE.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second, offsetHour = 0, offsetMinute = 0] = m
    .slice(1)
    .map((v) => (v === undefined ? undefined : Number(v))) as number[];
  if (month! < 1 || month! > 12 || day! < 1 || hour! > 23 || minute! > 59 || second! > 59) {
    return undefined;
  }
  if (offsetHour > 23 || offsetMinute > 59) return undefined;
  // Day 31 of a 30-day month rolls over into the next month: not a real date.
  if (new Date(Date.UTC(year!, month! - 1, day)).getUTCDate() !== day) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * REFERENCE COPY (tests only): the straightforward implementation of src/datetime.ts as it was before
 * its hot paths were optimised. The differential tests (test/reference.test.ts) check that the
 * package's implementation gives the same answers on generated inputs. Do not optimise this copy.
 */
/*
 * RFC 3339 date-times as DataStorage accepts them (the OpenAPI `date-time` format, stored in a
 * `timestamptz` column): `T` or `t`, `Z`/`z` or a `±HH:MM` offset, any number of fractional
 * digits, and a real calendar date and time of day: no month 13, no Feb 31, no 24:00, no leap
 * second, no offset beyond ±23:59 (the database rejects those even where the spec's format
 * check lets them through).
 */

const DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/**
 * The instant an RFC 3339 date-time names, in ms since the epoch (digits below the millisecond
 * dropped); undefined when the text is not one, or names no real date and time.
 */
export function parseDateTime(text: string): number | undefined {
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

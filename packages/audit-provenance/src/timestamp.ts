// SPDX-License-Identifier: Apache-2.0
/*
 * Canonical timestamps: the one form in which an instant is stored and hashed,
 * `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, exactly six fractional digits; DataStorage stores
 * microseconds). The reference server stores this form and the provenance hash view is
 * computed over it, so an event hashes the same when it is stamped and when it is read back.
 *
 * Accepted input: an RFC 3339 date-time (`T` or `t`, `Z`/`z` or a `±HH:MM` offset, any number of
 * fractional digits; digits beyond the microsecond are cut) naming a real calendar date and time
 * of day: no month 13, no Feb 31, no 24:00, no leap second, no offset beyond ±23:59.
 *
 * Invariants: one instant has one canonical text, and two instants never share one. Years are
 * proleptic Gregorian and taken as written: 0000-0099 are not 1900-1999 (Date.UTC's reading of a
 * two-digit year is never used). An instant whose UTC year falls outside 0000-9999 once the
 * offset is applied has no four-digit form: undefined.
 */

const TS_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
// The `Date#toISOString` form (UTC, milliseconds) most producers send.
const ISO_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True for a real calendar date and time of day (no 24:00, no leap second, no Feb 31). */
function isCivil(y: number, mo: number, d: number, h: number, mi: number, s: number): boolean {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return false;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= (mo === 2 && leap ? 29 : MONTH_DAYS[mo - 1]!);
}

/** The two-digit number at `i` of a string known to hold digits there. */
const d2 = (t: string, i: number) => (t.charCodeAt(i) - 48) * 10 + t.charCodeAt(i + 1) - 48;

/**
 * The canonical form of an RFC 3339 date-time (see the module comment); undefined when the
 * text is not one.
 */
export function canonicalTimestamp(text: string): string | undefined {
  if (text.length === 24 && ISO_MS_RE.test(text)) {
    const y = d2(text, 0) * 100 + d2(text, 2);
    return isCivil(y, d2(text, 5), d2(text, 8), d2(text, 11), d2(text, 14), d2(text, 17))
      ? `${text.slice(0, 23)}000Z`
      : undefined;
  }
  const m = TS_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se, frac = '', z, sign, oh, om] = m;
  if (!isCivil(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(se))) {
    return undefined;
  }
  if (!z && (Number(oh) > 23 || Number(om) > 59)) return undefined;
  // Not Date.UTC(year, ...): it reads years 0-99 as 1900-1999.
  const t = new Date(0);
  t.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  t.setUTCHours(Number(h), Number(mi), Number(se), 0);
  if (!z) {
    const offset = (Number(oh) * 60 + Number(om)) * 60_000;
    t.setTime(t.getTime() + (sign === '-' ? offset : -offset));
  }
  const year = t.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) return undefined;
  return (
    `${pad(year, 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}` +
    `T${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}` +
    `.${frac.slice(0, 6).padEnd(6, '0')}Z`
  );
}

// SPDX-License-Identifier: Apache-2.0
/* OTel HrTime → RFC 3339 UTC timestamp with microseconds, without going through a float. */
import type { HrTime } from '@opentelemetry/api';

const NANOS_PER_SECOND = 1_000_000_000;
/** The largest |ms| a Date can hold. */
const MAX_DATE_MS = 8.64e15;

/** True when `t` has the shape of an HrTime: `[seconds, nanoseconds]`, both finite integers. */
export function isHrTime(t: unknown): t is HrTime {
  return (
    Array.isArray(t) && t.length === 2 && Number.isSafeInteger(t[0]) && Number.isSafeInteger(t[1])
  );
}

/** True for the HrTime `[0, 0]`, which OTel uses for "not set". */
export function isZeroHrTime(t: HrTime): boolean {
  return t[0] === 0 && t[1] === 0;
}

/**
 * Formats an HrTime as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, truncated). Returns
 * undefined when the value is not an HrTime or falls outside the years 0000–9999.
 */
export function formatHrTime(t: unknown): string | undefined {
  if (!isHrTime(t)) return undefined;
  let seconds = t[0];
  let nanos = t[1];
  if (nanos < 0 || nanos >= NANOS_PER_SECOND) {
    // Normalise a carry (e.g. rounding up to 1e9 ns) or a borrow.
    seconds += Math.floor(nanos / NANOS_PER_SECOND);
    nanos = ((nanos % NANOS_PER_SECOND) + NANOS_PER_SECOND) % NANOS_PER_SECOND;
  }
  let prefix: string;
  if (seconds === lastSeconds) {
    prefix = lastPrefix;
  } else {
    const ms = seconds * 1000;
    if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) return undefined;
    const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z for years 0000-9999
    if (iso.length !== 24) return undefined;
    prefix = iso.slice(0, 19);
    lastSeconds = seconds;
    lastPrefix = prefix;
  }
  const micros = Math.floor(nanos / 1000);
  return `${prefix}.${String(micros).padStart(6, '0')}Z`;
}

// Records come in bursts within one second: remember the last second's formatted prefix.
let lastSeconds = Number.NaN;
let lastPrefix = '';

/**
 * The canonical timestamp one microsecond after `ts` (`YYYY-MM-DDTHH:MM:SS.ffffffZ`); `ts`
 * itself when it is not in that form.
 */
export function nextMicrosecond(ts: string): string {
  if (ts.length !== 27 || ts[19] !== '.' || ts[26] !== 'Z') return ts;
  const micros = Number(ts.slice(20, 26));
  if (!Number.isInteger(micros)) return ts;
  if (micros < 999_999) return `${ts.slice(0, 20)}${String(micros + 1).padStart(6, '0')}Z`;
  const next = Date.parse(`${ts.slice(0, 19)}Z`) + 1000;
  if (!Number.isFinite(next)) return ts;
  const iso = new Date(next).toISOString();
  return iso.length === 24 ? `${iso.slice(0, 19)}.000000Z` : ts;
}

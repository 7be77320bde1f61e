// SPDX-License-Identifier: Apache-2.0
/* Canonical timestamps: the one form in which instants are stored and hashed. */
import { IMPOSSIBLE_DATE_TIMES } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalTimestamp } from '../src/timestamp.ts';

describe('canonicalTimestamp', () => {
  it.each([
    ['2026-11-22T10:00:00Z', '2026-11-22T10:00:00.000000Z'],
    ['2026-11-22T10:00:00.1Z', '2026-11-22T10:00:00.100000Z'],
    ['2026-11-22T10:00:00.123456789Z', '2026-11-22T10:00:00.123456Z'],
    ['2026-11-22T01:30:00.5+02:00', '2026-11-21T23:30:00.500000Z'],
    ['2026-12-31T23:30:00-01:00', '2027-01-01T00:30:00.000000Z'],
    ['2026-11-22t10:00:00z', '2026-11-22T10:00:00.000000Z'],
  ])('%s -> %s', (input, expected) => {
    expect(canonicalTimestamp(input)).toBe(expected);
  });

  it.each([
    ...IMPOSSIBLE_DATE_TIMES,
    '2026-11-22T10:00:60Z',
    '2026-11-22 10:00:00Z',
    '2026-11-22T10:00:00',
  ])('rejects %s', (input) => {
    expect(canonicalTimestamp(input)).toBeUndefined();
  });

  it('agrees with Date on the instant, for any instant', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1971-01-01'), max: new Date('9000-01-01'), noInvalidDate: true }),
        (d) => {
          const c = canonicalTimestamp(d.toISOString())!;
          expect(Date.parse(c)).toBe(d.getTime());
        },
      ),
    );
  });
});

describe('canonicalTimestamp: UTC, six fractional digits', () => {
  it('normalises offsets and fractions', () => {
    expect(canonicalTimestamp('2026-11-22T10:00:00Z')).toBe('2026-11-22T10:00:00.000000Z');
    expect(canonicalTimestamp('2026-11-22T10:00:00.1234567Z')).toBe('2026-11-22T10:00:00.123456Z');
    expect(canonicalTimestamp('2026-11-22T00:30:00.25-01:00')).toBe('2026-11-22T01:30:00.250000Z');
    expect(canonicalTimestamp('not a time')).toBeUndefined();
  });
});

describe('canonicalTimestamp: years 0000-0099 and the ends of the four-digit range', () => {
  it('keeps years 0000-0099 (never read as 1900-1999), on either path', () => {
    // Date.UTC reads a year 0..99 as 1900+year: "0099" and "1999" must not be one instant.
    expect(canonicalTimestamp('0099-01-01T00:00:00Z')).toBe('0099-01-01T00:00:00.000000Z');
    expect(canonicalTimestamp('0099-01-01T00:00:00.000Z')).toBe('0099-01-01T00:00:00.000000Z');
    expect(canonicalTimestamp('0001-06-01T12:00:00.5Z')).toBe('0001-06-01T12:00:00.500000Z');
    expect(canonicalTimestamp('0000-02-29T10:00:00+01:00')).toBe('0000-02-29T09:00:00.000000Z');
    expect(canonicalTimestamp('0099-12-31T23:30:00-01:00')).toBe('0100-01-01T00:30:00.000000Z');
  });

  it('is undefined when the offset moves the instant out of years 0000-9999', () => {
    expect(canonicalTimestamp('0000-01-01T00:00:00+01:00')).toBeUndefined();
    expect(canonicalTimestamp('9999-12-31T23:59:59-01:00')).toBeUndefined();
    expect(canonicalTimestamp('9999-12-31T22:59:59-01:00')).toBe('9999-12-31T23:59:59.000000Z');
  });

  it('names one instant by one text, whatever the offset and fraction (property)', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0000-01-02T00:00:00Z'),
          max: new Date('9999-12-30T00:00:00Z'),
          noInvalidDate: true,
        }),
        fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
        fc.integer({ min: 0, max: 999 }),
        (d, offsetMinutes, micros) => {
          const canonical = `${d.toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`;
          // The same instant written in local time at the offset, with nine fractional digits.
          const local = new Date(d.getTime() + offsetMinutes * 60_000).toISOString();
          const sign = offsetMinutes < 0 ? '-' : '+';
          const abs = Math.abs(offsetMinutes);
          const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          const text = `${local.slice(0, 23)}${String(micros).padStart(3, '0')}789${offset}`;
          expect(canonicalTimestamp(text)).toBe(canonical);
          expect(canonicalTimestamp(canonical)).toBe(canonical);
          expect(canonicalTimestamp(d.toISOString())).toBe(`${d.toISOString().slice(0, 23)}000Z`);
        },
      ),
      { numRuns: 500 },
    );
  });
});

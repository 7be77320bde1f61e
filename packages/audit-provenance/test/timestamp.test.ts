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

// SPDX-License-Identifier: Apache-2.0
import { FIELD_MAX_LENGTH, validateAuditEventRequest } from '@kubernaut/datastorage-contract';
import { minimalEvent } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const base = minimalEvent();

describe('validateAuditEventRequest: lengths count characters (code points), cheaply', () => {
  it('agrees with a plain code-point count for any string', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 2 * FIELD_MAX_LENGTH.severity + 4 }),
        (s) => {
          const tooLong = [...s].length > FIELD_MAX_LENGTH.severity;
          const v = validateAuditEventRequest({ ...base, severity: s });
          expect(v.some((x) => x.field === 'severity' && x.reason === 'too_long')).toBe(tooLong);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('astral characters count once; huge strings are refused without being spread', () => {
    expect(validateAuditEventRequest({ ...base, severity: '😀'.repeat(20) })).toEqual([]);
    expect(validateAuditEventRequest({ ...base, severity: '😀'.repeat(21) })).toEqual([
      expect.objectContaining({ field: 'severity', reason: 'too_long' }),
    ]);
    const huge = 'x'.repeat(50 * 1024 * 1024);
    expect(validateAuditEventRequest({ ...base, event_action: huge })).toEqual([
      expect.objectContaining({ field: 'event_action', reason: 'too_long' }),
    ]);
  });
});

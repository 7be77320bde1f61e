// SPDX-License-Identifier: Apache-2.0
/*
 * analyze() is pure and never throws on malformed events (its contract): whatever DataStorage,
 * a proxy or an attacker returns as events — any JSON, any provenance stamp shape, hostile
 * numbers and strings — and whatever values the dead letters' fields hold, it returns a report
 * with a verdict, and never calls a trail complete with a malformed stamp in it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { analyze, formatReport, htmlReport, markdownReport } from '../src/index.ts';

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, -0, 1e308, 5e-324),
);
const hostileString = fc.oneof(
  fc.string(),
  fc.constantFrom(
    '',
    '__proto__',
    'constructor',
    '\u0000',
    '\ud800',
    'x'.repeat(10_000),
    '<x-injected onload=alert(1)>',
    '|</td><x-injected>',
  ),
);
const provenance = fc.record(
  {
    producer_id: fc.oneof(hostileString, fc.constantFrom('p1', 'p2'), fc.anything()),
    session_id: fc.oneof(hostileString, fc.constantFrom('s1', 's2'), fc.anything()),
    seq: fc.oneof(hostileNumber, fc.integer({ min: 1, max: 20 }), fc.anything()),
    prev_hash: fc.oneof(
      fc.constant(null),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
      fc.anything(),
    ),
    hash: fc.oneof(
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
      fc.anything(),
    ),
    recovered: fc.oneof(
      fc.constant(undefined),
      fc.record({
        session_id: fc.oneof(hostileString, fc.constantFrom('s1')),
        spooled_through: fc.oneof(hostileNumber, fc.anything()),
        reserved_through: fc.oneof(hostileNumber, fc.anything()),
      }),
      fc.anything(),
    ),
    signature: fc.oneof(fc.constant(undefined), fc.anything()),
  },
  { requiredKeys: [] },
);
const event = fc.record(
  {
    event_id: fc.oneof(fc.uuid(), hostileString, fc.anything()),
    event_timestamp: fc.oneof(
      fc
        .date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString()),
      hostileString,
      fc.anything(),
    ),
    event_type: fc.oneof(hostileString, fc.anything()),
    correlation_id: fc.oneof(fc.constantFrom('c1', 'c2'), hostileString, fc.anything()),
    event_data: fc.oneof(
      fc.record({ audit_provenance: provenance }, { requiredKeys: [] }),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);

describe('analyze() on anything', () => {
  it('never throws, always gives a verdict, and is complete only with well-formed stamps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(event, fc.anything()), { maxLength: 40 }),
        // Dead letters come typed from the CLI's readers (dead-letters.ts), with any values.
        fc.array(
          fc.record({
            producer_id: fc.oneof(fc.constantFrom('p1', 'p2'), hostileString),
            session_id: fc.oneof(fc.constantFrom('s1', 's2'), hostileString),
            seq: hostileNumber,
            hash: fc.oneof(fc.constant(null), hostileString),
            reason: hostileString,
          }),
          { maxLength: 5 },
        ),
        (events, deadLetters) => {
          const report = analyze({
            events: events as never,
            deadLetters: deadLetters as never,
          });
          expect(['complete', 'incomplete', 'empty']).toContain(report.verdict);
          if (report.verdict === 'complete') {
            expect(report.malformed_provenance.count).toBe(0);
            expect(report.totals.delivered).toBeGreaterThan(0);
          }
          // Every rendering of it too; the HTML an auditor files carries no markup from the data.
          const ctx = { keys: [], digestLogs: [], expectProducers: [] };
          expect(typeof formatReport(report)).toBe('string');
          expect(typeof markdownReport(report, ctx)).toBe('string');
          expect(htmlReport(report, ctx)).not.toContain('<x-injected');
        },
      ),
      { numRuns: 500 },
    );
  });
});

// SPDX-License-Identifier: Apache-2.0
import {
  ATTR_AUDIT_EVENT_DATA,
  ATTR_AUDIT_EVENT_TYPE,
  AUDIT_ATTRIBUTES,
  BORROWED_ATTRIBUTES,
} from '@kubernaut/audit-semantic-conventions';
import { makeAuditLogRecord } from '@kubernaut/test-kit';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { MAPPED_STRING_ATTRIBUTES } from '../../src/map/attribute-keys.ts';
import { mapLogRecord } from '../../src/map/index.ts';

/** The same record with one attribute set (or replaced) to a string value. */
function withAttribute(base: ReadableLogRecord, key: string, value: string): ReadableLogRecord {
  return {
    hrTime: base.hrTime,
    hrTimeObserved: base.hrTimeObserved,
    body: base.body,
    // No event name: the type then comes from its attribute, which is read.
    eventName: undefined,
    resource: base.resource,
    instrumentationScope: base.instrumentationScope,
    attributes: { ...base.attributes, [ATTR_AUDIT_EVENT_TYPE]: base.eventName, [key]: value },
    droppedAttributesCount: 0,
  } as ReadableLogRecord;
}

describe('the attribute keys the SDK-limit check covers', () => {
  // The check for values the SDK's length limit cut walks MAPPED_STRING_ATTRIBUTES. A string
  // attribute the mapping reads but the list lacks would be delivered cut without a word.
  it('are exactly the string attributes whose value changes what the mapping produces', () => {
    const base = makeAuditLogRecord();
    const baseline = JSON.stringify(mapLogRecord(withAttribute(base, 'unread.key', 'x')));
    expect(baseline).toContain('"ok":true');
    const candidates = [
      ...AUDIT_ATTRIBUTES.filter((a) => a.type === 'string').map((a) => a.key),
      ...BORROWED_ATTRIBUTES.map((a) => a.key),
    ].filter((k) => k !== ATTR_AUDIT_EVENT_DATA);
    const read = candidates.filter(
      (key) =>
        JSON.stringify(
          mapLogRecord(withAttribute(base, key, 'probe-value-that-changes-things')),
        ) !== baseline,
    );
    expect(read.length).toBeGreaterThan(10);
    expect([...read].sort()).toEqual([...MAPPED_STRING_ATTRIBUTES].sort());
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * select/: which log records are audit records (DESIGN §4).
 *
 * Invariant: a record is an audit record exactly when it carries the attribute
 * `audit.event.category` (any value but null/undefined) as an own attribute (./attributes.ts);
 * selection reads that one attribute, never throws and never modifies the record. Every other
 * record passes through untouched.
 */
import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { hasPlainPrototype } from './attributes.ts';

/** True when the record is an audit record: it carries `audit.event.category`. Never throws. */
export function isAuditRecord(record: ReadableLogRecord | { attributes?: unknown }): boolean {
  try {
    const attrs = (record as { attributes?: unknown } | null | undefined)?.attributes;
    if (attrs === null || typeof attrs !== 'object') return false;
    const v = (attrs as Record<string, unknown>)[ATTR_AUDIT_EVENT_CATEGORY];
    if (v === undefined || v === null) return false;
    // Its own attribute, not a prototype's (./attributes.ts).
    return hasPlainPrototype(attrs) || Object.hasOwn(attrs, ATTR_AUDIT_EVENT_CATEGORY);
  } catch {
    return false;
  }
}

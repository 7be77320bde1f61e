// SPDX-License-Identifier: Apache-2.0
/*
 * Whether a logging library's record (the fields of one log call) is an audit record (DESIGN §4).
 *
 * Invariant: an adapter keeps a line out of the ordinary output exactly when the processor will
 * take it as an audit record, so that no line is lost from both. The processor selects a record
 * whose `audit.event.category` is anything but null/undefined (../select/select.ts); a Symbol or
 * a function never reaches it (JSON drops them, the SDK refuses them as attribute values), so a
 * line carrying one is an ordinary line. Reading the fields never throws (a Proxy, a getter that
 * throws): a record that cannot be read is an ordinary line.
 */
import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';

/** True when `fields` carries an `audit.event.category` the processor selects. Never throws. */
export function hasAuditFields(fields: unknown): boolean {
  if (fields === null || typeof fields !== 'object') return false;
  try {
    const v = (fields as Record<string, unknown>)[ATTR_AUDIT_EVENT_CATEGORY];
    return v !== undefined && v !== null && typeof v !== 'symbol' && typeof v !== 'function';
  } catch {
    return false;
  }
}

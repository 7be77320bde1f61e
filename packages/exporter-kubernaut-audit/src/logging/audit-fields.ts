// SPDX-License-Identifier: Apache-2.0
/* Whether a logging library's record (the fields of one log call) is an audit record (DESIGN §4). */
import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';

/** True when `fields` carries `audit.event.category`, as the processor selects audit records. */
export function hasAuditFields(fields: unknown): boolean {
  return (
    fields !== null &&
    typeof fields === 'object' &&
    (fields as Record<string, unknown>)[ATTR_AUDIT_EVENT_CATEGORY] !== undefined
  );
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Whether a logging library's record (the fields of one log call) is an audit record (DESIGN §4).
 *
 * Invariant: an adapter keeps a line out of the ordinary output exactly when the processor will
 * take it as an audit record, so that no line is lost from both. The processor selects a record
 * whose `audit.event.category` attribute is anything but null/undefined (../select/select.ts).
 * The bridges of winston and bunyan hand the fields to the OpenTelemetry Logs API as they are,
 * and the SDK drops an attribute whose value is not an OTel AnyValue (`isAnyValue` of
 * @opentelemetry/core: a BigInt, a Symbol, a function, a Date, a Map or other class instance,
 * a cycle, or a map/array holding one): such a category never reaches the processor, so the line
 * is an ordinary line. (pino's bridge reads the JSON line instead: ./pino.ts decides on the
 * parsed line, where a BigInt is already a number and a Date a string.) Reading the fields never
 * throws (a Proxy, a getter that throws): a record that cannot be read is an ordinary line.
 */
import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';
import { isAnyValue } from '@opentelemetry/core';

/**
 * True when `fields` carries an `audit.event.category` the processor selects once the fields
 * are the attributes of an OpenTelemetry log record. Never throws.
 */
export function hasAuditFields(fields: unknown): boolean {
  if (fields === null || typeof fields !== 'object') return false;
  try {
    // The bridges and the SDK take own enumerable fields only (Object.entries, a rest spread):
    // an inherited or non-enumerable category never becomes an attribute.
    if (!Object.prototype.propertyIsEnumerable.call(fields, ATTR_AUDIT_EVENT_CATEGORY))
      return false;
    const v = (fields as Record<string, unknown>)[ATTR_AUDIT_EVENT_CATEGORY];
    if (v === undefined || v === null) return false;
    return typeof v === 'string' || isAnyValue(v);
  } catch {
    return false;
  }
}

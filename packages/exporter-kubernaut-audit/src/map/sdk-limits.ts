// SPDX-License-Identifier: Apache-2.0
/*
 * What the OpenTelemetry SDK's attribute limits did to a record before the processor saw it.
 * A LoggerProvider applies `logRecordLimits` (NodeSDK fills them from
 * OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT / OTEL_ATTRIBUTE_COUNT_LIMIT and
 * OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT / OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT): attributes
 * past the count limit are dropped, and strings (also inside maps and arrays) and byte arrays
 * past the length limit are cut, with nothing on the record but `droppedAttributesCount`.
 * Mapped as they are, a dropped `audit.actor.id` becomes the service's name and a cut one
 * another actor: an audit event that says something the application did not.
 *
 * Invariant: pure, never throws. A record with `droppedAttributesCount > 0` gets an
 * `attributes_dropped` violation (which attributes went is unknown, so any field may be wrong).
 * Under a finite value length limit, an attribute the mapping reads whose string (or a string
 * or byte array inside `audit.event.data`) is as long as the limit gets an `attribute_truncated`
 * violation: a value of exactly that length is indistinguishable from a cut one. Both are
 * fatal (the mapping fills defaults for absent actor and resource fields). The limit is read
 * from the SDK's record (`LogRecordImpl`'s limits); a bridged record carries none and is
 * checked for dropped attributes only. The default limits (128 attributes, no length limit)
 * cost one property read per record.
 */
import { ATTR_AUDIT_EVENT_DATA } from '@kubernaut/audit-semantic-conventions';
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import { MAX_EVENT_DATA_BYTES, MAX_EVENT_DATA_DEPTH } from '@kubernaut/datastorage-contract';
import { MAPPED_STRING_ATTRIBUTES } from './attribute-keys.ts';

/** The attribute limits a record was made under, as far as the record tells. */
export interface RecordLimits {
  /** Finite attribute value length limit, else undefined. */
  valueLength: number | undefined;
  /** Attribute count limit, when the record tells. */
  count: number | undefined;
}

/** The last limits object read and what it says (a provider's records share one object). */
let lastLimits: object | undefined;
let lastRead: RecordLimits | undefined;

/** The limits of an SDK `LogRecordImpl` (its `_logRecordLimits`); undefined for other records. */
export function recordLimitsOf(record: object): RecordLimits | undefined {
  const limits = (record as { _logRecordLimits?: unknown })._logRecordLimits;
  if (limits === null || typeof limits !== 'object') return undefined;
  if (limits === lastLimits) return lastRead;
  const { attributeValueLengthLimit: v, attributeCountLimit: c } = limits as {
    attributeValueLengthLimit?: unknown;
    attributeCountLimit?: unknown;
  };
  const read: RecordLimits = {
    // The SDK ignores a limit ≤ 0 (with a warning): so does this.
    valueLength: typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined,
    count: typeof c === 'number' && c >= 0 ? c : undefined,
  };
  // A provider's limits are set once, when it is constructed.
  lastLimits = limits;
  lastRead = read;
  return read;
}

/**
 * Adds the violations of a record the SDK's limits changed to `problems` (see the module
 * comment). `attrs`: the record's attributes.
 */
export function checkSdkLimits(
  record: Record<string, unknown>,
  attrs: Record<string, unknown>,
  problems: ContractViolation[],
): void {
  const dropped = record.droppedAttributesCount;
  const limits = recordLimitsOf(record);
  if (typeof dropped === 'number' && dropped > 0) {
    const limit = limits?.count === undefined ? '' : ` of ${limits.count}`;
    problems.push({
      field: '',
      reason: 'attributes_dropped',
      message: `the OpenTelemetry SDK dropped ${dropped} attribute(s) of this record (its attribute count limit${limit}: LoggerProvider logRecordLimits.attributeCountLimit, OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT or OTEL_ATTRIBUTE_COUNT_LIMIT): an audit field may be missing or defaulted`,
    });
  }
  const max = limits?.valueLength;
  if (max === undefined) return;
  for (const key of MAPPED_STRING_ATTRIBUTES) {
    const v = attrs[key];
    if (typeof v === 'string' && v.length >= max) problems.push(truncated(key, max));
  }
  const data = attrs[ATTR_AUDIT_EVENT_DATA];
  if (
    data !== null &&
    data !== undefined &&
    reachesLimit(data, max, 0, { work: MAX_EVENT_DATA_BYTES })
  ) {
    problems.push(truncated(ATTR_AUDIT_EVENT_DATA, max));
  }
}

function truncated(key: string, max: number): ContractViolation {
  return {
    field: '',
    reason: 'attribute_truncated',
    message: `${key} holds a value of ${max} characters, the LoggerProvider's attribute value length limit (logRecordLimits.attributeValueLengthLimit, OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT): the SDK may have cut it. Raise the limit, or carry event_data in the record's body (never cut)`,
  };
}

/** Whether a string or byte array in `v` (bounded walk) is at least `max` long. */
function reachesLimit(v: unknown, max: number, depth: number, w: { work: number }): boolean {
  if (typeof v === 'string') return v.length >= max;
  if (v === null || typeof v !== 'object' || depth > MAX_EVENT_DATA_DEPTH || --w.work < 0) {
    return false;
  }
  if (v instanceof Uint8Array) return v.length >= max;
  const values = Array.isArray(v) ? v : Object.values(v);
  for (const c of values) if (reachesLimit(c, max, depth + 1, w)) return true;
  return false;
}

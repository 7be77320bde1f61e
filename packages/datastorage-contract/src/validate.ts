// SPDX-License-Identifier: Apache-2.0
/*
 * Envelope validation of one AuditEventRequest against the DataStorage contract
 * (DESIGN §5): required fields, enums, lengths (spec and column limits), IP syntax,
 * uuid, retention range, the timestamp window and the event_data size/depth limits, and
 * storability: what passes the spec but PostgreSQL cannot store (NUL characters and unpaired
 * surrogates anywhere, impossible calendar dates, IPv6 zone indexes), which the real service
 * would accept and then fail on forever.
 * Pure: no I/O. Used by the exporter's mapping (client side) and the reference server.
 */
import { isIP } from 'node:net';
import {
  AUDIT_EVENT_CATEGORY_VALUES,
  AUDIT_EVENT_OUTCOME_VALUES,
} from '@kubernaut/audit-semantic-conventions';
import { parseDateTime } from './datetime.ts';
import {
  FIELD_MAX_LENGTH,
  MAX_DURATION_MS,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_DATA_DEPTH,
  MAX_FUTURE_SKEW_MS,
  MAX_RETENTION_DAYS,
  MIN_RETENTION_DAYS,
} from './limits.ts';
import { isStorableString, type JsonShape, jsonShape } from './storable.ts';

/** Machine-readable reason of a contract violation. */
export type ViolationReason =
  | 'missing_field'
  | 'invalid_type'
  | 'empty'
  | 'too_long'
  | 'invalid_enum'
  | 'invalid_timestamp'
  | 'timestamp_in_future'
  | 'expired'
  | 'invalid_ip'
  | 'invalid_uuid'
  | 'out_of_range'
  | 'event_data_too_large'
  | 'event_data_too_deep'
  | 'event_type_mismatch'
  /** A string holds a NUL character or an unpaired surrogate (PostgreSQL cannot store it). */
  | 'unstorable_string'
  | 'schema'
  /** `event_type` is not in the spec's discriminator mapping (OpenApiValidator). */
  | 'unknown_event_type'
  /** `audit.event.data` is a string that is not valid JSON. */
  | 'invalid_json'
  /** The log record itself could not be read (not a ReadableLogRecord). */
  | 'invalid_record'
  /**
   * The OpenTelemetry SDK (or the sender of a bridged record) dropped attributes of the record
   * (its attribute count limit): an audit field may be missing, or defaulted to a wrong value.
   */
  | 'attributes_dropped'
  /**
   * An attribute the mapping reads is as long as the LoggerProvider's attribute value length
   * limit: the SDK may have cut it.
   */
  | 'attribute_truncated';

export interface ContractViolation {
  /** The AuditEventRequest field at fault (`event_data` for payload problems). */
  field: string;
  reason: ViolationReason;
  /** Human-readable explanation; never contains credentials. */
  message: string;
}

/** Fields that must be present and valid, else the whole event is rejected. */
export const REQUIRED_FIELDS = [
  'version',
  'event_type',
  'event_timestamp',
  'event_category',
  'event_action',
  'event_outcome',
  'correlation_id',
  'event_data',
] as const;
const REQUIRED = new Set<string>(REQUIRED_FIELDS);
// NOT_EMPTY: the optional fields actor_type, actor_id, resource_type and resource_id are stored
// by DataStorage in NOT NULL columns with a default when absent: an empty value is not "absent"
// there, and the database refuses it (the real service answers 202 and then fails in its DLQ).
// Left out by a client, the default applies. validateEnvelope passes notEmpty for them.

/** True when a violation of `field` makes the whole event unacceptable. */
export function isRequiredField(field: string): boolean {
  return REQUIRED.has(field);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const CATEGORIES = new Set<string>(AUDIT_EVENT_CATEGORY_VALUES);
const OUTCOMES = new Set<string>(AUDIT_EVENT_OUTCOME_VALUES);

export interface ValidateOptions {
  /** Clock for the timestamp window, in ms since the epoch [Date.now()]. */
  now?: number;
  /**
   * The instant `event_timestamp` names, in ms since the epoch, when the caller wrote it from a
   * time it holds (it is then not parsed again); the text must still be a canonical timestamp.
   */
  eventTimeMillis?: number;
  /**
   * False when the caller checks storability itself, on the serialised event (validateEnvelope
   * only) [true].
   */
  storability?: boolean;
  /**
   * Byte length of the compact JSON form of the event's `event_data`, when the caller already
   * has it (e.g. a server that parsed the request and wrote event_data's canonical JSON, which
   * has the same length): the size check then uses it instead of serialising event_data again.
   */
  eventDataBytes?: number;
  /**
   * jsonShape(event_data, MAX_EVENT_DATA_DEPTH) when the caller already walked it (e.g. a
   * server that checks the depth of every event before anything recursive runs): the depth and
   * storability checks then use it instead of walking event_data again.
   */
  eventDataShape?: JsonShape;
}

/** Depth of a JSON value counting the outermost object/array as 1 (as DataStorage does). */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  return jsonShape(value, limit).depth;
}

/** Byte length of the compact JSON form of a value. */
export function jsonByteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/** Checks only the event_data rules: object, size, depth, storable strings, event_type key. */
export function validateEventData(
  eventData: unknown,
  eventType: unknown,
  out: ContractViolation[] = [],
  knownBytes?: number,
  knownShape?: JsonShape,
): ContractViolation[] {
  if (eventData === null || typeof eventData !== 'object' || Array.isArray(eventData)) {
    out.push({
      field: 'event_data',
      reason: 'invalid_type',
      message: 'event_data must be an object',
    });
    return out;
  }
  const bytes = knownBytes ?? jsonByteLength(eventData);
  if (bytes > MAX_EVENT_DATA_BYTES) {
    out.push({
      field: 'event_data',
      reason: 'event_data_too_large',
      message: `event_data is ${bytes} bytes, over the limit of ${MAX_EVENT_DATA_BYTES}`,
    });
  }
  const shape = knownShape ?? jsonShape(eventData, MAX_EVENT_DATA_DEPTH);
  if (shape.depth > MAX_EVENT_DATA_DEPTH) {
    out.push({
      field: 'event_data',
      reason: 'event_data_too_deep',
      message: `event_data nests deeper than ${MAX_EVENT_DATA_DEPTH} levels`,
    });
  } else if (!shape.storable) {
    out.push({
      field: 'event_data',
      reason: 'unstorable_string',
      message: 'event_data contains a NUL character or an unpaired surrogate',
    });
  }
  const inner = (eventData as Record<string, unknown>).event_type;
  if (typeof eventType === 'string' && inner !== eventType) {
    out.push({
      field: 'event_data',
      reason: 'event_type_mismatch',
      message: 'event_data.event_type must equal event_type',
    });
  }
  return out;
}

/** Length in code points, counting no further than `max + 1` (cheap for huge strings). */
function codePointLength(s: string, max: number): number {
  if (s.length > 2 * max + 1) return max + 1; // at most 2 UTF-16 units per code point
  let n = 0;
  for (const _ of s) if (++n > max) break;
  return n;
}

/**
 * Checks the string field `field` holding `v`: undefined (and null when optional) is absence
 * (a violation when required); else a string, non-empty when required or `notEmpty`, of at most
 * `max` characters, storable (when `storability`). Returns the string when it passes.
 */
function checkString(
  v: unknown,
  field: string,
  required: boolean,
  max: number | undefined,
  out: ContractViolation[],
  storability: boolean,
  notEmpty = required,
): string | undefined {
  if (v === undefined || (v === null && !required)) {
    if (required) {
      out.push({ field, reason: 'missing_field', message: `${field} is required` });
    }
    return undefined;
  }
  if (typeof v !== 'string') {
    out.push({ field, reason: 'invalid_type', message: `${field} must be a string` });
    return undefined;
  }
  if (v.length === 0 && notEmpty) {
    out.push({ field, reason: 'empty', message: `${field} must not be empty` });
    return undefined;
  }
  if (max !== undefined && v.length > max && codePointLength(v, max) > max) {
    out.push({ field, reason: 'too_long', message: `${field} is longer than ${max} characters` });
    return undefined;
  }
  if (storability && !isStorableString(v)) {
    out.push({
      field,
      reason: 'unstorable_string',
      message: `${field} contains a NUL character or an unpaired surrogate`,
    });
    return undefined;
  }
  return v;
}

/**
 * Validates one AuditEventRequest. Returns every violation found (empty when valid).
 * Violations of REQUIRED_FIELDS make the event unacceptable; the others concern
 * optional fields that a client can leave out.
 */
export function validateAuditEventRequest(
  event: unknown,
  options: ValidateOptions = {},
): ContractViolation[] {
  const out = validateEnvelope(event, options);
  if (out.length === 1 && out[0]?.field === '') return out;
  const ev = event as Record<string, unknown>;
  if (ev.event_data === undefined || ev.event_data === null) {
    out.push({ field: 'event_data', reason: 'missing_field', message: 'event_data is required' });
  } else {
    validateEventData(
      ev.event_data,
      ev.event_type,
      out,
      options.eventDataBytes,
      options.eventDataShape,
    );
  }
  return out;
}

/**
 * Validates every member of one AuditEventRequest but `event_data` (for a client that checks
 * `event_data` while it serialises it). Same rules and violations as validateAuditEventRequest.
 */
export function validateEnvelope(
  event: unknown,
  options: ValidateOptions = {},
  out: ContractViolation[] = [],
): ContractViolation[] {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    out.push({ field: '', reason: 'invalid_type', message: 'event must be a JSON object' });
    return out;
  }
  const ev = event as Record<string, unknown>;
  const now = options.now ?? Date.now();
  const st = options.storability !== false;

  const L = FIELD_MAX_LENGTH;
  checkString(ev.version, 'version', true, L.version, out, st);
  checkString(ev.event_type, 'event_type', true, L.event_type, out, st);
  const category = checkString(
    ev.event_category,
    'event_category',
    true,
    L.event_category,
    out,
    st,
  );
  if (category !== undefined && !CATEGORIES.has(category)) {
    out.push({
      field: 'event_category',
      reason: 'invalid_enum',
      message: `event_category must be one of ${[...CATEGORIES].join(', ')}`,
    });
  }
  checkString(ev.event_action, 'event_action', true, L.event_action, out, st);
  const outcome = ev.event_outcome;
  if (outcome === undefined) {
    out.push({
      field: 'event_outcome',
      reason: 'missing_field',
      message: 'event_outcome is required',
    });
  } else if (typeof outcome !== 'string' || !OUTCOMES.has(outcome)) {
    out.push({
      field: 'event_outcome',
      reason: 'invalid_enum',
      message: 'event_outcome must be one of success, failure, pending',
    });
  }
  checkString(ev.correlation_id, 'correlation_id', true, L.correlation_id, out, st);

  const ts = checkString(ev.event_timestamp, 'event_timestamp', true, undefined, out, st);
  if (ts !== undefined) {
    const t = options.eventTimeMillis ?? parseDateTime(ts);
    if (t === undefined) {
      out.push({
        field: 'event_timestamp',
        reason: 'invalid_timestamp',
        message: 'event_timestamp must be an RFC 3339 date-time of a real calendar date and time',
      });
    } else if (t > now + MAX_FUTURE_SKEW_MS) {
      out.push({
        field: 'event_timestamp',
        reason: 'timestamp_in_future',
        message: 'event_timestamp is more than 60 minutes in the future',
      });
    } else if (t < now - MAX_EVENT_AGE_MS) {
      out.push({
        field: 'event_timestamp',
        reason: 'expired',
        message: 'event_timestamp is more than 7 days old',
      });
    }
  }

  // Optional fields.
  // actor_type, actor_id, resource_type and resource_id are NOT NULL columns with a default
  // (NOT_EMPTY above): present, they must not be empty.
  checkString(ev.actor_type, 'actor_type', false, L.actor_type, out, st, true);
  checkString(ev.actor_id, 'actor_id', false, L.actor_id, out, st, true);
  checkString(ev.resource_type, 'resource_type', false, L.resource_type, out, st, true);
  checkString(ev.resource_id, 'resource_id', false, L.resource_id, out, st, true);
  checkString(ev.namespace, 'namespace', false, L.namespace, out, st);
  checkString(ev.cluster_id, 'cluster_id', false, L.cluster_id, out, st);
  checkString(ev.severity, 'severity', false, L.severity, out, st);
  checkString(ev.error_code, 'error_code', false, L.error_code, out, st);
  checkString(ev.error_message, 'error_message', false, undefined, out, st);
  const ip = checkString(ev.actor_ip, 'actor_ip', false, L.actor_ip, out, st);
  if (ip !== undefined && isIP(ip) === 0) {
    out.push({
      field: 'actor_ip',
      reason: 'invalid_ip',
      message: 'actor_ip must be an IPv4 or IPv6 address',
    });
  } else if (ip?.includes('%')) {
    // A scoped IPv6 address (`fe80::1%eth0`): the `inet` column rejects the zone index.
    out.push({
      field: 'actor_ip',
      reason: 'invalid_ip',
      message: 'actor_ip must not carry a zone index',
    });
  }
  const parent = checkString(ev.parent_event_id, 'parent_event_id', false, undefined, out, st);
  if (parent !== undefined && !UUID_RE.test(parent)) {
    out.push({
      field: 'parent_event_id',
      reason: 'invalid_uuid',
      message: 'parent_event_id must be a uuid',
    });
  }
  const pdate = ev.parent_event_date;
  if (
    pdate !== undefined &&
    pdate !== null &&
    (typeof pdate !== 'string' || parseDateTime(pdate) === undefined)
  ) {
    out.push({
      field: 'parent_event_date',
      reason: 'invalid_timestamp',
      message: 'parent_event_date must be an RFC 3339 date-time',
    });
  }
  const duration = ev.duration_ms;
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'number' || !Number.isInteger(duration)) {
      out.push({
        field: 'duration_ms',
        reason: 'invalid_type',
        message: 'duration_ms must be an integer',
      });
    } else if (duration < 0 || duration > MAX_DURATION_MS) {
      out.push({
        field: 'duration_ms',
        reason: 'out_of_range',
        message: 'duration_ms is out of range',
      });
    }
  }
  const retention = ev.retention_days;
  if (retention !== undefined && retention !== null) {
    if (typeof retention !== 'number' || !Number.isInteger(retention)) {
      out.push({
        field: 'retention_days',
        reason: 'invalid_type',
        message: 'retention_days must be an integer',
      });
    } else if (retention < MIN_RETENTION_DAYS || retention > MAX_RETENTION_DAYS) {
      out.push({
        field: 'retention_days',
        reason: 'out_of_range',
        message: `retention_days must be between ${MIN_RETENTION_DAYS} and ${MAX_RETENTION_DAYS}`,
      });
    }
  }
  const sensitive = ev.is_sensitive;
  if (sensitive !== undefined && sensitive !== null && typeof sensitive !== 'boolean') {
    out.push({
      field: 'is_sensitive',
      reason: 'invalid_type',
      message: 'is_sensitive must be a boolean',
    });
  }
  return out;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * map/: OTel log record → AuditEventRequest (DESIGN §4), validated (DESIGN §5) and encoded once
 * (canonical JSON, provenance hash over the same bytes). Invariants at the top of map.ts,
 * encode.ts and order.ts.
 */
import {
  type AuditEventRequest,
  type ContractViolation,
  isRequiredField,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ENVELOPE_UNSTORABLE, encodeEvent } from './encode.ts';
import { fillDefaults, type MappedEvent, mapRecord } from './map.ts';

export {
  ENVELOPE_UNSTORABLE,
  type Encoded,
  encodeEvent,
  type Prepared,
  type ProvenanceFields,
  prepareEvent,
  provenanceMembers,
  type RecoveredDeclaration,
  type StampedBytes,
  stampPrepared,
  stampPreparedInto,
  stampRoom,
} from './encode.ts';
export { isPlainMap, MAX_EVENT_DATA_JSON_STRING_LENGTH } from './event-data.ts';
export {
  Envelope,
  fillDefaults,
  type MapOptions,
  type MapOutcome,
  type MappedEvent,
  mapRecord,
} from './map.ts';
export { TimestampOrder, type TimestampOrderOptions } from './order.ts';
export { formatHrTime, nextMicrosecond } from './timestamp.ts';

/** A full validator of mapped events (an `OpenApiValidator` of the contract's `./openapi`). */
export interface EventValidator {
  validate(event: unknown): ContractViolation[];
}

/** Options of {@link mapLogRecord}. */
export interface MapLogRecordOptions {
  /** Clock for the timestamp window, in ms since the epoch [Date.now()]. */
  now?: number;
  /** Full OpenAPI validation, run after the contract rules when they pass. */
  openApi?: EventValidator;
}

/**
 * The outcome of mapping one record. `ok: true`: the event is acceptable; `omitted` lists
 * invalid optional fields that were left out of it. `ok: false`: a required field is missing or
 * invalid; `violations` lists every problem found.
 */
export type MapResult =
  | { ok: true; event: AuditEventRequest; omitted: ContractViolation[] }
  | { ok: false; violations: ContractViolation[] };

/**
 * Runs the full OpenAPI validation of an encoded event. Violations of required fields are
 * returned (the event is invalid); an invalid optional field is removed from the envelope and
 * added to `mapped.omitted`, and `changed` says that the event must be encoded again.
 */
export function checkOpenApi(
  mapped: MappedEvent,
  json: string,
  openApi: EventValidator,
): { fatal: ContractViolation[]; changed: boolean } {
  const fatal: ContractViolation[] = [];
  let changed = false;
  const fields = mapped.envelope as unknown as Record<string, unknown>;
  for (const v of openApi.validate(JSON.parse(json))) {
    if (v.field === '' || isRequiredField(v.field) || !(v.field in fields)) fatal.push(v);
    else {
      fields[v.field] = undefined;
      mapped.omitted.push(v);
      changed = true;
    }
  }
  return { fatal, changed };
}

/** One record mapped, validated and encoded without provenance; see {@link encodeRecord}. */
export type EncodedRecord =
  | { ok: true; json: string; timeMs: number; omitted: ContractViolation[] }
  | { ok: false; violations: ContractViolation[] };

/**
 * Maps, validates and encodes one record into the canonical JSON of its AuditEventRequest,
 * without provenance (the standalone exporter's path; the processor's drain stamps and encodes
 * in one step). Never throws.
 */
export function encodeRecord(
  record: ReadableLogRecord,
  options: MapLogRecordOptions = {},
): EncodedRecord {
  try {
    const now = options.now === undefined ? {} : { now: options.now };
    // Strings are checked for storability on the encoded text; only a hit maps again with the
    // per-field check, for the field's name in the violation.
    let mapped = mapRecord(record, { ...now, storability: false });
    if (!mapped.ok) return mapped;
    let encoded = encodeEvent(mapped.event.envelope, mapped.event.data, undefined);
    if (!encoded.ok && encoded.violation === ENVELOPE_UNSTORABLE) {
      mapped = mapRecord(record, now);
      if (!mapped.ok) return mapped;
      encoded = encodeEvent(mapped.event.envelope, mapped.event.data, undefined);
    }
    const m = mapped.event;
    if (encoded.ok && options.openApi !== undefined) {
      const { fatal, changed } = checkOpenApi(m, encoded.json, options.openApi);
      if (fatal.length > 0) return { ok: false, violations: [...fatal, ...m.omitted] };
      if (changed) encoded = encodeEvent(fillDefaults(m.envelope), m.data, undefined);
    }
    if (!encoded.ok) return { ok: false, violations: [encoded.violation, ...m.omitted] };
    return { ok: true, json: encoded.json, timeMs: m.timeMs, omitted: m.omitted };
  } catch (err) {
    return {
      ok: false,
      violations: [{ field: '', reason: 'invalid_record', message: errorText(err, 200) }],
    };
  }
}

/**
 * Maps and validates one record into a plain AuditEventRequest (without provenance), for tools
 * and tests that want the object; the processor encodes mapped records directly. Never throws.
 */
export function mapLogRecord(
  record: ReadableLogRecord,
  options: MapLogRecordOptions = {},
): MapResult {
  const encoded = encodeRecord(record, options);
  if (!encoded.ok) return encoded;
  return {
    ok: true,
    event: JSON.parse(encoded.json) as AuditEventRequest,
    omitted: encoded.omitted,
  };
}

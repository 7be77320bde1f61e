// SPDX-License-Identifier: Apache-2.0
/*
 * map/: an OTel log record → the envelope of a DataStorage AuditEventRequest (DESIGN §4) and the
 * source of its `event_data`, checked against the contract (DESIGN §5).
 *
 * Invariant: pure and total. Whatever it is given it returns a result and never throws; it never
 * modifies the record, never copies `event_data` (the encoder serialises it once, from the
 * source) and never awaits: resource attributes still pending are not read.
 *
 * The envelope is built in the *hash-view form* of @kubernaut/audit-provenance: every field
 * DataStorage would default is written out (`actor_type`, `actor_id`, `resource_type`,
 * `resource_id`, `retention_days`, `is_sensitive`), optional fields that are empty are left out,
 * `parent_event_id` is lower case and `event_timestamp` is canonical (UTC, six fractional
 * digits). So the canonical JSON of the request is the hash view (but for `actor_ip`, which the
 * hash view leaves out), and the provenance hash is computed over the very bytes that are sent.
 */
import {
  ATTR_AUDIT_ACTOR_ID,
  ATTR_AUDIT_ACTOR_TYPE,
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_DURATION_MS,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_DATA,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_EVENT_TYPE,
  ATTR_AUDIT_PARENT_EVENT_ID,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
  ATTR_AUDIT_RETENTION_DAYS,
  ATTR_AUDIT_SENSITIVE,
  ATTR_AUDIT_SEVERITY,
} from '@kubernaut/audit-semantic-conventions';
import {
  AUDIT_EVENT_VERSION,
  type ContractViolation,
  DEFAULT_ACTOR_TYPE,
  isRequiredField,
  type ValidateOptions,
  validateEnvelope,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ownAttributes } from '../select/index.ts';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_EXCEPTION_MESSAGE,
  ATTR_K8S_CLUSTER_UID,
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_SERVICE_NAME,
} from './attribute-keys.ts';
import { isPlainMap, parseEventData } from './event-data.ts';
import { checkSdkLimits } from './sdk-limits.ts';
import { formatHrTime, isHrTime, isZeroHrTime } from './timestamp.ts';

/** The retention DataStorage stores when a request sets none (the stamp format's default). */
const DATASTORAGE_DEFAULT_RETENTION_DAYS = 2555;

/**
 * The envelope of an AuditEventRequest (every member but `event_data`). One shape for every
 * record; an absent optional field is `undefined`.
 */
export class Envelope {
  version = AUDIT_EVENT_VERSION;
  event_type: string | undefined = undefined;
  event_timestamp: string | undefined = undefined;
  event_category: string | undefined = undefined;
  event_action: string | undefined = undefined;
  event_outcome: string | undefined = undefined;
  correlation_id: string | undefined = undefined;
  actor_type: string | undefined = undefined;
  actor_id: string | undefined = undefined;
  actor_ip: string | undefined = undefined;
  resource_type: string | undefined = undefined;
  resource_id: string | undefined = undefined;
  parent_event_id: string | undefined = undefined;
  namespace: string | undefined = undefined;
  cluster_id: string | undefined = undefined;
  severity: string | undefined = undefined;
  duration_ms: number | undefined = undefined;
  error_code: string | undefined = undefined;
  error_message: string | undefined = undefined;
  retention_days: number | undefined = undefined;
  is_sensitive: boolean | undefined = undefined;
}

/** A mapped record: its envelope (complete, valid) and the source of its event_data. */
export interface MappedEvent {
  envelope: Envelope;
  /** The body map, the `audit.event.data` map, or the parsed `audit.event.data` JSON: not copied. */
  data: Record<string, unknown>;
  /** Invalid optional fields left out (the event is still delivered). */
  omitted: ContractViolation[];
  /** `event_timestamp` in ms since the epoch (as mapped, before any monotonic adjustment). */
  timeMs: number;
}

/** The outcome of mapping one record. */
export type MapOutcome =
  | { ok: true; event: MappedEvent }
  | { ok: false; violations: ContractViolation[] };

type Attrs = Record<string, unknown>;
const EMPTY: Attrs = Object.freeze({}) as Attrs;

interface ResourceDefaults {
  serviceName: unknown;
  namespace: unknown;
  clusterId: unknown;
}
const resourceCache = new WeakMap<object, ResourceDefaults>();
const NO_RESOURCE: ResourceDefaults = {
  serviceName: undefined,
  namespace: undefined,
  clusterId: undefined,
};

/** The few resource attributes the mapping uses, read once per settled Resource object. */
function resourceDefaults(resource: unknown): ResourceDefaults {
  if (resource === null || typeof resource !== 'object') return NO_RESOURCE;
  const cached = resourceCache.get(resource);
  if (cached !== undefined) return cached;
  const r = resource as {
    asyncAttributesPending?: boolean;
    attributes?: unknown;
    getRawAttributes?: () => unknown;
  };
  let attrs: Attrs = EMPTY;
  const pending = r.asyncAttributesPending === true;
  if (pending && typeof r.getRawAttributes === 'function') {
    // Reading `attributes` now would log an error per record: take the settled raw ones only.
    const raw = r.getRawAttributes();
    attrs = {};
    if (Array.isArray(raw)) {
      for (const pair of raw) {
        if (!Array.isArray(pair) || typeof pair[0] !== 'string') continue;
        const v: unknown = pair[1];
        if (
          v !== null &&
          typeof v === 'object' &&
          typeof (v as PromiseLike<unknown>).then === 'function'
        )
          continue;
        if (!Object.hasOwn(attrs, pair[0])) attrs[pair[0]] = v;
      }
    }
  } else if (r.attributes !== null && typeof r.attributes === 'object') {
    attrs = r.attributes as Attrs;
  }
  const d: ResourceDefaults = {
    serviceName: attrs[ATTR_SERVICE_NAME],
    namespace: attrs[ATTR_K8S_NAMESPACE_NAME],
    clusterId: attrs[ATTR_K8S_CLUSTER_UID],
  };
  if (!pending) resourceCache.set(resource, d);
  return d;
}

function typeViolation(field: string, source: string, expected: string): ContractViolation {
  return { field, reason: 'invalid_type', message: `${source} must be ${expected} (for ${field})` };
}

/** Reads an attribute that must be a string; wrong types are reported, never coerced. */
function stringAttr(
  value: unknown,
  field: string,
  source: string,
  problems: ContractViolation[],
): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  problems.push(typeViolation(field, source, 'a string'));
  return undefined;
}

/** An optional string field: an empty value carries nothing and is left out. */
function optionalString(
  value: unknown,
  field: string,
  source: string,
  problems: ContractViolation[],
): string | undefined {
  const s = stringAttr(value, field, source, problems);
  return s === '' ? undefined : s;
}

/** Reads an attribute that must be an integer; whole-number doubles are integers in JS. */
function integerAttr(
  value: unknown,
  field: string,
  source: string,
  problems: ContractViolation[],
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  problems.push(typeViolation(field, source, 'an integer'));
  return undefined;
}

/** Options of {@link mapRecord}. */
export interface MapOptions {
  /** Clock for the timestamp window, in ms since the epoch [Date.now()]. */
  now?: number;
  /**
   * False: strings are not checked for NUL and unpaired surrogates here, because the caller
   * checks the encoded event (encodeEvent reports ENVELOPE_UNSTORABLE) and maps again with the
   * check when it finds one [true].
   */
  storability?: boolean;
}

/**
 * Maps one log record (DESIGN §4) and validates its envelope (DESIGN §5); `event_data` is
 * checked by the encoder. Never throws.
 */
export function mapRecord(record: ReadableLogRecord, options: MapOptions = {}): MapOutcome {
  try {
    return mapUnsafe(record as unknown as Record<string, unknown>, options);
  } catch (err) {
    return {
      ok: false,
      violations: [
        {
          field: '',
          reason: 'invalid_record',
          message: `log record cannot be mapped: ${errorText(err, 200)}`,
        },
      ],
    };
  }
}

function mapUnsafe(record: Record<string, unknown>, options: MapOptions): MapOutcome {
  if (record === null || typeof record !== 'object') {
    return {
      ok: false,
      violations: [{ field: '', reason: 'invalid_record', message: 'not a log record' }],
    };
  }
  const attrs = ownAttributes(record.attributes);
  const problems: ContractViolation[] = [];
  checkSdkLimits(record, attrs, problems);
  const ev = new Envelope();

  // event_type: eventName, else audit.event.type.
  const eventName = record.eventName;
  if (typeof eventName === 'string' && eventName.length > 0) {
    ev.event_type = eventName;
  } else if (eventName !== undefined && eventName !== null && eventName !== '') {
    problems.push(typeViolation('event_type', 'eventName', 'a string'));
  } else {
    ev.event_type = stringAttr(
      attrs[ATTR_AUDIT_EVENT_TYPE],
      'event_type',
      ATTR_AUDIT_EVENT_TYPE,
      problems,
    );
  }

  // event_timestamp: timestamp, else observedTimestamp ([0, 0] or absent = not set).
  const hr = record.hrTime;
  const useObserved = hr === undefined || hr === null || (isHrTime(hr) && isZeroHrTime(hr));
  const tsSource = useObserved ? record.hrTimeObserved : hr;
  let timeMs: number | undefined;
  if (tsSource !== undefined && tsSource !== null) {
    const ts = formatHrTime(tsSource);
    if (ts !== undefined) {
      const t = tsSource as [number, number];
      timeMs = t[0] * 1000 + Math.floor(t[1] / 1e6); // whole ms, as parseDateTime reads it
    }
    if (ts === undefined) {
      problems.push({
        field: 'event_timestamp',
        reason: 'invalid_timestamp',
        message: `${useObserved ? 'observedTimestamp' : 'timestamp'} is not a valid time`,
      });
    } else {
      ev.event_timestamp = ts;
    }
  }

  ev.event_category = stringAttr(
    attrs[ATTR_AUDIT_EVENT_CATEGORY],
    'event_category',
    ATTR_AUDIT_EVENT_CATEGORY,
    problems,
  );
  ev.event_action = stringAttr(
    attrs[ATTR_AUDIT_EVENT_ACTION],
    'event_action',
    ATTR_AUDIT_EVENT_ACTION,
    problems,
  );
  ev.event_outcome = stringAttr(
    attrs[ATTR_AUDIT_EVENT_OUTCOME],
    'event_outcome',
    ATTR_AUDIT_EVENT_OUTCOME,
    problems,
  );
  ev.correlation_id = stringAttr(
    attrs[ATTR_AUDIT_CORRELATION_ID],
    'correlation_id',
    ATTR_AUDIT_CORRELATION_ID,
    problems,
  );

  // Actor: the service itself unless the record names one.
  const res = resourceDefaults(record.resource);
  const actorTypeAttr = attrs[ATTR_AUDIT_ACTOR_TYPE];
  ev.actor_type = stringAttr(actorTypeAttr, 'actor_type', ATTR_AUDIT_ACTOR_TYPE, problems);
  const actorIdAttr = attrs[ATTR_AUDIT_ACTOR_ID];
  ev.actor_id = stringAttr(actorIdAttr, 'actor_id', ATTR_AUDIT_ACTOR_ID, problems);
  if (
    ev.actor_id === undefined &&
    (actorIdAttr === undefined || actorIdAttr === null) &&
    (actorTypeAttr === undefined ||
      actorTypeAttr === null ||
      actorTypeAttr === DEFAULT_ACTOR_TYPE) &&
    typeof res.serviceName === 'string' &&
    res.serviceName !== ''
  ) {
    ev.actor_id = res.serviceName;
  }
  ev.actor_ip = stringAttr(attrs[ATTR_CLIENT_ADDRESS], 'actor_ip', ATTR_CLIENT_ADDRESS, problems);
  ev.resource_type = stringAttr(
    attrs[ATTR_AUDIT_RESOURCE_TYPE],
    'resource_type',
    ATTR_AUDIT_RESOURCE_TYPE,
    problems,
  );
  ev.resource_id = stringAttr(
    attrs[ATTR_AUDIT_RESOURCE_ID],
    'resource_id',
    ATTR_AUDIT_RESOURCE_ID,
    problems,
  );
  const parent = optionalString(
    attrs[ATTR_AUDIT_PARENT_EVENT_ID],
    'parent_event_id',
    ATTR_AUDIT_PARENT_EVENT_ID,
    problems,
  );
  if (parent !== undefined) ev.parent_event_id = parent.toLowerCase();
  ev.severity = optionalString(
    attrs[ATTR_AUDIT_SEVERITY],
    'severity',
    ATTR_AUDIT_SEVERITY,
    problems,
  );
  ev.error_code = optionalString(attrs[ATTR_ERROR_TYPE], 'error_code', ATTR_ERROR_TYPE, problems);
  ev.error_message = optionalString(
    attrs[ATTR_EXCEPTION_MESSAGE],
    'error_message',
    ATTR_EXCEPTION_MESSAGE,
    problems,
  );
  const duration = integerAttr(
    attrs[ATTR_AUDIT_DURATION_MS],
    'duration_ms',
    ATTR_AUDIT_DURATION_MS,
    problems,
  );
  // 0 is left out: upstream DataStorage stores a 0 as NULL and reads it back without the
  // member, so an event sent with `duration_ms: 0` would read back unlike what was hashed.
  ev.duration_ms = duration === 0 ? undefined : duration;
  ev.retention_days = integerAttr(
    attrs[ATTR_AUDIT_RETENTION_DAYS],
    'retention_days',
    ATTR_AUDIT_RETENTION_DAYS,
    problems,
  );
  // namespace / cluster: the record's attribute, else the resource's.
  ev.namespace = optionalString(
    attrs[ATTR_K8S_NAMESPACE_NAME] ?? res.namespace,
    'namespace',
    ATTR_K8S_NAMESPACE_NAME,
    problems,
  );
  ev.cluster_id = optionalString(
    attrs[ATTR_K8S_CLUSTER_UID] ?? res.clusterId,
    'cluster_id',
    ATTR_K8S_CLUSTER_UID,
    problems,
  );
  const sensitive = attrs[ATTR_AUDIT_SENSITIVE];
  if (typeof sensitive === 'boolean') ev.is_sensitive = sensitive;
  else if (sensitive !== undefined && sensitive !== null) {
    problems.push(typeViolation('is_sensitive', ATTR_AUDIT_SENSITIVE, 'a boolean'));
  }

  // event_data: the body when it is a map, else audit.event.data (map or JSON string).
  const body = record.body;
  const dataAttr = attrs[ATTR_AUDIT_EVENT_DATA];
  let data: Record<string, unknown> | undefined;
  if (isPlainMap(body)) data = body;
  else if (isPlainMap(dataAttr)) data = dataAttr;
  else if (typeof dataAttr === 'string') {
    const parsed = parseEventData(dataAttr);
    if (parsed.ok) data = parsed.data;
    else problems.push(parsed.violation);
  } else if (dataAttr !== undefined && dataAttr !== null) {
    problems.push(typeViolation('event_data', ATTR_AUDIT_EVENT_DATA, 'a map or a JSON string'));
  } else if (body !== undefined && body !== null) {
    problems.push({
      field: 'event_data',
      reason: 'missing_field',
      message: `the body is ${Array.isArray(body) ? 'an array' : `a ${typeof body}`}, not a map, and there is no ${ATTR_AUDIT_EVENT_DATA} attribute`,
    });
  } else {
    problems.push({
      field: 'event_data',
      reason: 'missing_field',
      message: 'event_data is required',
    });
  }
  return settle(ev, data, problems, options, timeMs);
}

/** Validates the envelope, leaves out invalid optional fields, then fills in the defaults. */
function settle(
  ev: Envelope,
  data: Record<string, unknown> | undefined,
  problems: ContractViolation[],
  options: MapOptions,
  timeMs: number | undefined,
): MapOutcome {
  const fatal: ContractViolation[] = [];
  const omitted: ContractViolation[] = [];
  for (const p of problems) file(p, ev, fatal, omitted);
  const rules: ValidateOptions = { storability: options.storability !== false };
  if (options.now !== undefined) rules.now = options.now;
  if (timeMs !== undefined) rules.eventTimeMillis = timeMs;
  const found = validateEnvelope(ev, rules);
  for (let i = 0; i < found.length; i++) {
    const v = found[i] as ContractViolation;
    // A field the mapping already reported is absent now: skip the echo ("is required").
    if (problems.length === 0 || !problems.some((p) => p.field === v.field)) {
      file(v, ev, fatal, omitted);
    }
  }
  if (fatal.length > 0 || data === undefined) {
    return { ok: false, violations: [...fatal, ...omitted] };
  }
  return {
    ok: true,
    event: { envelope: fillDefaults(ev), data, omitted, timeMs: timeMs ?? Number.NaN },
  };
}

/** A violation of a required field is fatal; an optional field is left out (and reported). */
function file(
  v: ContractViolation,
  ev: Envelope,
  fatal: ContractViolation[],
  omitted: ContractViolation[],
): void {
  if (v.field === '' || isRequiredField(v.field)) {
    fatal.push(v);
  } else {
    omitted.push(v);
    (ev as unknown as Record<string, unknown>)[v.field] = undefined;
  }
}

/**
 * Writes out DataStorage's defaults for the fields it fills when they are absent (the hash
 * view's form, DESIGN §11). The required fields must be valid.
 */
export function fillDefaults(ev: Envelope): Envelope {
  const category = ev.event_category as string;
  ev.actor_type ??= DEFAULT_ACTOR_TYPE;
  ev.actor_id ??= `${category}-service`;
  ev.resource_type ??= category;
  ev.resource_id ??= ev.correlation_id as string;
  ev.retention_days ??= DATASTORAGE_DEFAULT_RETENTION_DAYS;
  ev.is_sensitive ??= false;
  return ev;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Maps an OTel log record onto a DataStorage AuditEventRequest (DESIGN §4) and checks
 * it against the contract (DESIGN §5). Pure and total: whatever it is given, it returns
 * a result and never throws, because it runs inside `emit()`.
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
  type AuditEventRequest,
  type ContractViolation,
  DEFAULT_ACTOR_TYPE,
  isRequiredField,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { copyEventData, isPlainMap, parseEventData } from './event-data.ts';
import { formatHrTime, isHrTime, isZeroHrTime } from './timestamp.ts';

// Attributes borrowed from the OTel semantic conventions (k8s.* are still incubating there).
const ATTR_CLIENT_ADDRESS = 'client.address';
const ATTR_K8S_NAMESPACE_NAME = 'k8s.namespace.name';
const ATTR_K8S_CLUSTER_UID = 'k8s.cluster.uid';
const ATTR_ERROR_TYPE = 'error.type';
const ATTR_EXCEPTION_MESSAGE = 'exception.message';
const ATTR_SERVICE_NAME = 'service.name';

/** Options of {@link mapLogRecord}. */
export interface MapOptions {
  /** Clock for the timestamp window, in ms since the epoch [Date.now()]. */
  now?: number;
  /**
   * Full OpenAPI validation of the mapped event (an `OpenApiValidator`), run after the
   * contract rules when they pass.
   */
  openApi?: { validate(event: unknown): ContractViolation[] };
}

/**
 * The outcome of mapping one record. `ok: true`: the event is acceptable; `omitted`
 * lists invalid optional fields that were left out of it. `ok: false`: a required field
 * is missing or invalid; `violations` lists every problem found.
 */
export type MapResult =
  | { ok: true; event: AuditEventRequest; omitted: ContractViolation[] }
  | { ok: false; violations: ContractViolation[] };

type Attrs = Record<string, unknown>;
const EMPTY: Attrs = Object.freeze({}) as Attrs;

/** True when the record is an audit record: it carries `audit.event.category`. Never throws. */
export function isAuditRecord(record: ReadableLogRecord | { attributes?: unknown }): boolean {
  try {
    const attrs = (record as { attributes?: unknown } | null | undefined)?.attributes;
    return (
      attrs !== null &&
      typeof attrs === 'object' &&
      (attrs as Attrs)[ATTR_AUDIT_EVENT_CATEGORY] !== undefined &&
      (attrs as Attrs)[ATTR_AUDIT_EVENT_CATEGORY] !== null
    );
  } catch {
    return false;
  }
}

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

/** The few resource attributes the mapping uses, read once per Resource object. */
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
    // Reading `attributes` now would log an error per record: take the settled raw ones.
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
        if (!(pair[0] in attrs)) attrs[pair[0]] = v;
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
  return {
    field,
    reason: 'invalid_type',
    message: `${source} must be ${expected} (for ${field})`,
  };
}

/** Required fields read from a string attribute of the record (DESIGN §4). */
const REQUIRED_STRING_ATTRIBUTES = [
  ['event_category', ATTR_AUDIT_EVENT_CATEGORY],
  ['event_action', ATTR_AUDIT_EVENT_ACTION],
  ['event_outcome', ATTR_AUDIT_EVENT_OUTCOME],
  ['correlation_id', ATTR_AUDIT_CORRELATION_ID],
] as const;

/** Optional fields read from a string attribute of the record, with no default. */
const OPTIONAL_STRING_ATTRIBUTES = [
  ['actor_ip', ATTR_CLIENT_ADDRESS],
  ['resource_type', ATTR_AUDIT_RESOURCE_TYPE],
  ['resource_id', ATTR_AUDIT_RESOURCE_ID],
  ['parent_event_id', ATTR_AUDIT_PARENT_EVENT_ID],
  ['severity', ATTR_AUDIT_SEVERITY],
  ['error_code', ATTR_ERROR_TYPE],
  ['error_message', ATTR_EXCEPTION_MESSAGE],
] as const;

/** Optional fields read from an integer attribute of the record. */
const INTEGER_ATTRIBUTES = [
  ['duration_ms', ATTR_AUDIT_DURATION_MS],
  ['retention_days', ATTR_AUDIT_RETENTION_DAYS],
] as const;

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

/**
 * Maps one log record onto an AuditEventRequest (DESIGN §4) and validates it (DESIGN §5).
 * Pure: the record is never modified; `event_data` is a fresh copy. Never throws.
 */
export function mapLogRecord(record: ReadableLogRecord, options: MapOptions = {}): MapResult {
  try {
    return mapRecord(record as unknown as Record<string, unknown>, options);
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

function mapRecord(record: Record<string, unknown>, options: MapOptions): MapResult {
  if (record === null || typeof record !== 'object') {
    return {
      ok: false,
      violations: [{ field: '', reason: 'invalid_record', message: 'not a log record' }],
    };
  }
  const attrs =
    record.attributes !== null && typeof record.attributes === 'object'
      ? (record.attributes as Attrs)
      : EMPTY;
  const problems: ContractViolation[] = [];
  const ev: Record<string, unknown> = { version: AUDIT_EVENT_VERSION };

  // event_type: eventName, else audit.event.type.
  const eventName = record.eventName;
  let eventType: string | undefined;
  if (typeof eventName === 'string' && eventName.length > 0) {
    eventType = eventName;
  } else if (eventName !== undefined && eventName !== null && eventName !== '') {
    problems.push(typeViolation('event_type', 'eventName', 'a string'));
  } else {
    eventType = stringAttr(
      attrs[ATTR_AUDIT_EVENT_TYPE],
      'event_type',
      ATTR_AUDIT_EVENT_TYPE,
      problems,
    );
  }
  if (eventType !== undefined) ev.event_type = eventType;

  // event_timestamp: timestamp, else observedTimestamp ([0, 0] or absent = not set).
  const hr = record.hrTime;
  const useObserved = hr === undefined || hr === null || (isHrTime(hr) && isZeroHrTime(hr));
  const tsSource = useObserved ? record.hrTimeObserved : hr;
  if (tsSource !== undefined && tsSource !== null) {
    const ts = formatHrTime(tsSource);
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

  for (const [field, key] of REQUIRED_STRING_ATTRIBUTES) {
    const v = stringAttr(attrs[key], field, key, problems);
    if (v !== undefined) ev[field] = v;
  }

  // Actor: defaults to the service itself.
  const res = resourceDefaults(record.resource);
  const actorTypeAttr = attrs[ATTR_AUDIT_ACTOR_TYPE];
  const actorType =
    actorTypeAttr === undefined || actorTypeAttr === null
      ? DEFAULT_ACTOR_TYPE
      : stringAttr(actorTypeAttr, 'actor_type', ATTR_AUDIT_ACTOR_TYPE, problems);
  if (actorType !== undefined) ev.actor_type = actorType;
  let actorId = stringAttr(attrs[ATTR_AUDIT_ACTOR_ID], 'actor_id', ATTR_AUDIT_ACTOR_ID, problems);
  if (
    actorId === undefined &&
    attrs[ATTR_AUDIT_ACTOR_ID] == null &&
    actorType === DEFAULT_ACTOR_TYPE &&
    typeof res.serviceName === 'string'
  ) {
    actorId = res.serviceName;
  }
  if (actorId !== undefined) ev.actor_id = actorId;
  for (const [field, key] of OPTIONAL_STRING_ATTRIBUTES) {
    const v = stringAttr(attrs[key], field, key, problems);
    if (v !== undefined) ev[field] = v;
  }
  for (const [field, key] of INTEGER_ATTRIBUTES) {
    const v = integerAttr(attrs[key], field, key, problems);
    if (v !== undefined) ev[field] = v;
  }

  // namespace / cluster: the record's attribute, else the resource's.
  const nsAttr = attrs[ATTR_K8S_NAMESPACE_NAME];
  const namespace = stringAttr(
    nsAttr ?? res.namespace,
    'namespace',
    ATTR_K8S_NAMESPACE_NAME,
    problems,
  );
  if (namespace !== undefined) ev.namespace = namespace;
  const clusterAttr = attrs[ATTR_K8S_CLUSTER_UID];
  const clusterId = stringAttr(
    clusterAttr ?? res.clusterId,
    'cluster_id',
    ATTR_K8S_CLUSTER_UID,
    problems,
  );
  if (clusterId !== undefined) ev.cluster_id = clusterId;

  const sensitive = attrs[ATTR_AUDIT_SENSITIVE];
  if (typeof sensitive === 'boolean') ev.is_sensitive = sensitive;
  else if (sensitive !== undefined && sensitive !== null) {
    problems.push(typeViolation('is_sensitive', ATTR_AUDIT_SENSITIVE, 'a boolean'));
  }

  // event_data: the body when it is a map, else audit.event.data (map or JSON string).
  const body = record.body;
  const dataAttr = attrs[ATTR_AUDIT_EVENT_DATA];
  let data: ReturnType<typeof copyEventData> | undefined;
  if (isPlainMap(body)) data = copyEventData(body, eventType);
  else if (typeof dataAttr === 'string') data = parseEventData(dataAttr);
  else if (isPlainMap(dataAttr)) data = copyEventData(dataAttr, eventType);
  else if (dataAttr !== undefined && dataAttr !== null) {
    problems.push(typeViolation('event_data', ATTR_AUDIT_EVENT_DATA, 'a map or a JSON string'));
  } else if (body !== undefined && body !== null) {
    problems.push({
      field: 'event_data',
      reason: 'missing_field',
      message: `the body is ${Array.isArray(body) ? 'an array' : `a ${typeof body}`}, not a map, and there is no ${ATTR_AUDIT_EVENT_DATA} attribute`,
    });
  }
  if (data !== undefined) {
    if (data.ok) {
      if (eventType !== undefined) data.data.event_type = eventType;
      ev.event_data = data.data;
    } else {
      problems.push(data.violation);
    }
  }

  return settle(ev, problems, options);
}

/** Validates the candidate event and splits violations into fatal ones and omitted fields. */
function settle(
  ev: Record<string, unknown>,
  problems: ContractViolation[],
  options: MapOptions,
): MapResult {
  const fatal: ContractViolation[] = [];
  const omitted: ContractViolation[] = [];
  const file = (v: ContractViolation) => {
    if (v.field === '' || isRequiredField(v.field)) {
      fatal.push(v);
    } else {
      omitted.push(v);
      delete ev[v.field];
    }
  };
  for (const p of problems) file(p);
  for (const v of validateAuditEventRequest(ev, { now: options.now })) {
    // A field the mapping already reported is absent now: skip the echo ("is required").
    if (problems.length === 0 || !problems.some((p) => p.field === v.field)) file(v);
  }
  if (fatal.length === 0 && options.openApi !== undefined) {
    for (const v of options.openApi.validate(ev)) file(v);
  }
  if (fatal.length > 0) return { ok: false, violations: [...fatal, ...omitted] };
  return { ok: true, event: ev as unknown as AuditEventRequest, omitted };
}

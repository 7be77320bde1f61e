// SPDX-License-Identifier: Apache-2.0
/*
 * The standalone exporter's encoding: each audit record mapped, validated and serialised once
 * into the JSON text of its AuditEventRequest, with its event_timestamp in ms (so that the
 * deliverer never parses it back).
 *
 * Invariant: the result is exactly the mapping's (`mapLogRecord`, then JSON.stringify of its
 * event): same JSON text, same invalid records with the same violations, same omitted fields.
 * A fast path handles the common record (required fields, the usual optional ones, event_data
 * a plain JSON map) with one walk over event_data to check its shape, one native
 * JSON.stringify of it, one of the envelope, and checks on numbers and lengths instead of a
 * second validation pass; whatever it is not sure of (any unusual field, any value near a
 * limit, any escaped character that might be unstorable) goes to the full mapping. A property
 * test holds the two paths equal.
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
  AUDIT_EVENT_CATEGORY_VALUES,
  AUDIT_EVENT_OUTCOME_VALUES,
} from '@kubernaut/audit-semantic-conventions';
import {
  AUDIT_EVENT_VERSION,
  type ContractViolation,
  DEFAULT_ACTOR_TYPE,
  FIELD_MAX_LENGTH,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_DATA_DEPTH,
  MAX_FUTURE_SKEW_MS,
  parseDateTime,
} from '@kubernaut/datastorage-contract';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { formatHrTime, mapLogRecord } from '../mapping/index.ts';
import type { SpecValidator } from './openapi-spec.ts';

export interface EncodedRecords {
  /** JSON text of each valid event, in record order. */
  json: string[];
  /** event_timestamp of each, ms since the epoch. */
  eventTime: Float64Array;
  /** Invalid optional fields left out, count by reason. */
  omitted: Map<string, number>;
  /** Records that cannot be delivered, with why. */
  invalid: Array<{ record: ReadableLogRecord; violations: ContractViolation[] }>;
}

/** Encodes audit records (see the module comment). Never throws. */
export function encodeRecords(
  records: readonly ReadableLogRecord[],
  now: number,
  validator: SpecValidator | undefined,
): EncodedRecords {
  const json: string[] = [];
  const eventTime = new Float64Array(records.length);
  const omitted = new Map<string, number>();
  const invalid: EncodedRecords['invalid'] = [];
  const fast: Fast = { json: '', ms: 0 };
  for (const record of records) {
    // Full OpenAPI validation has no fast path.
    if (validator === undefined && encodeFast(record, now, fast)) {
      eventTime[json.length] = fast.ms;
      json.push(fast.json);
      continue;
    }
    const mapped = mapLogRecord(record, { now, ...(validator ? { openApi: validator } : {}) });
    if (!mapped.ok) {
      invalid.push({ record, violations: mapped.violations });
      continue;
    }
    for (const o of mapped.omitted) omitted.set(o.reason, (omitted.get(o.reason) ?? 0) + 1);
    let text: string;
    try {
      text = JSON.stringify(mapped.event);
    } catch (err) {
      invalid.push({
        record,
        violations: [{ field: '', reason: 'invalid_record', message: String(err) }],
      });
      continue;
    }
    eventTime[json.length] = parseDateTime(mapped.event.event_timestamp) ?? Number.NaN;
    json.push(text);
  }
  return { json, eventTime: eventTime.subarray(0, json.length), omitted, invalid };
}

/** What the fast path produced. */
export interface Fast {
  json: string;
  ms: number;
}

type Attrs = Record<string, unknown>;

const CATEGORIES = new Set<unknown>(AUDIT_EVENT_CATEGORY_VALUES);
const OUTCOMES = new Set<unknown>(AUDIT_EVENT_OUTCOME_VALUES);
/** Attributes the fast path leaves to the full mapping (checks it does not repeat here). */
const SLOW_ATTRIBUTES = [
  'client.address',
  ATTR_AUDIT_PARENT_EVENT_ID,
  ATTR_AUDIT_DURATION_MS,
  ATTR_AUDIT_RETENTION_DAYS,
] as const;
/** Stay clear of the timestamp window's edges (the full mapping decides there). */
const EDGE_MS = 1000;

/** A string attribute of at most `max` UTF-16 units (then also code points), or undefined. */
function text(v: unknown, max: number, allowEmpty: boolean): string | undefined {
  if (typeof v !== 'string' || v.length > max || (!allowEmpty && v.length === 0)) return undefined;
  return v;
}

const resourceCache = new WeakMap<object, { service: unknown; ns: unknown; cluster: unknown }>();

/** The three resource attributes the mapping uses, when the resource is settled. */
function resourceOf(
  resource: unknown,
): { service: unknown; ns: unknown; cluster: unknown } | undefined {
  if (resource === null || typeof resource !== 'object') return undefined;
  const cached = resourceCache.get(resource);
  if (cached !== undefined) return cached;
  const r = resource as { asyncAttributesPending?: boolean; attributes?: unknown };
  if (r.asyncAttributesPending === true) return undefined;
  const a = r.attributes;
  if (a === null || typeof a !== 'object') return undefined;
  const attrs = a as Attrs;
  const d = {
    service: attrs['service.name'],
    ns: attrs['k8s.namespace.name'],
    cluster: attrs['k8s.cluster.uid'],
  };
  resourceCache.set(resource, d);
  return d;
}

/** True when `v` is a plain JSON value whose JSON.stringify the mapping's copy would equal. */
function plainJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if (v === null) return true;
      if (depth > MAX_EVENT_DATA_DEPTH) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!plainJson(v[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      const o = v as Attrs;
      for (const k in o) {
        if (!Object.hasOwn(o, k)) return false;
        if (!plainJson(o[k], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Milliseconds of an HrTime, or NaN when it is not one the fast path takes. */
function hrMillis(t: unknown): number {
  if (!Array.isArray(t) || t.length !== 2) return Number.NaN;
  const s = t[0];
  const ns = t[1];
  if (!Number.isSafeInteger(s) || !Number.isSafeInteger(ns) || ns < 0 || ns >= 1e9) {
    return Number.NaN;
  }
  return s * 1000 + Math.floor(ns / 1e6);
}

/**
 * The fast path: true with `out` set when the record is one it is sure of, false to leave it
 * to the full mapping. Never throws.
 */
export function encodeFast(record: ReadableLogRecord, now: number, out: Fast): boolean {
  try {
    const attrs = record.attributes as Attrs | undefined;
    if (attrs === null || typeof attrs !== 'object') return false;
    for (const k of SLOW_ATTRIBUTES) if (attrs[k] !== undefined) return false;

    const name = record.eventName;
    let eventType: string | undefined;
    if (name !== undefined && name !== null && name !== '') {
      eventType = text(name, FIELD_MAX_LENGTH.event_type, false);
    } else {
      eventType = text(attrs[ATTR_AUDIT_EVENT_TYPE], FIELD_MAX_LENGTH.event_type, false);
    }
    if (eventType === undefined) return false;

    const hr = record.hrTime;
    const zero = hr === undefined || hr === null || (hr[0] === 0 && hr[1] === 0);
    const time = zero ? record.hrTimeObserved : hr;
    const ms = hrMillis(time);
    if (!(ms > now - MAX_EVENT_AGE_MS + EDGE_MS) || !(ms < now + MAX_FUTURE_SKEW_MS - EDGE_MS)) {
      return false;
    }
    const timestamp = formatHrTime(time);
    if (timestamp === undefined) return false;

    const category = attrs[ATTR_AUDIT_EVENT_CATEGORY];
    if (!CATEGORIES.has(category)) return false;
    const action = text(attrs[ATTR_AUDIT_EVENT_ACTION], FIELD_MAX_LENGTH.event_action, false);
    const outcome = attrs[ATTR_AUDIT_EVENT_OUTCOME];
    if (action === undefined || !OUTCOMES.has(outcome)) return false;
    const correlation = text(
      attrs[ATTR_AUDIT_CORRELATION_ID],
      FIELD_MAX_LENGTH.correlation_id,
      false,
    );
    if (correlation === undefined) return false;

    const res = resourceOf(record.resource);
    if (res === undefined) return false;
    const actorTypeAttr = attrs[ATTR_AUDIT_ACTOR_TYPE];
    const actorType =
      actorTypeAttr === undefined ? DEFAULT_ACTOR_TYPE : text(actorTypeAttr, 50, false);
    if (actorType === undefined) return false;
    const actorIdAttr = attrs[ATTR_AUDIT_ACTOR_ID];
    let actorId: string | undefined;
    if (actorIdAttr !== undefined) {
      actorId = text(actorIdAttr, FIELD_MAX_LENGTH.actor_id, false);
      if (actorId === undefined) return false;
    } else if (actorType === DEFAULT_ACTOR_TYPE && res.service !== undefined) {
      actorId = text(res.service, FIELD_MAX_LENGTH.actor_id, false);
      if (actorId === undefined) return false;
    }

    // Built as text, in the mapping's key order, so that the text is the mapping's.
    const qt = quote(eventType);
    const qc = quote(category as string);
    const qa = quote(action);
    const qo = quote(outcome as string);
    const qr = quoteOnce(correlation);
    const qat = quote(actorType);
    if (qt === '' || qc === '' || qa === '' || qo === '' || qr === '' || qat === '') return false;
    let json = `{"version":"${AUDIT_EVENT_VERSION}","event_type":${qt},"event_timestamp":"${timestamp}","event_category":${qc},"event_action":${qa},"event_outcome":${qo},"correlation_id":${qr},"actor_type":${qat}`;
    if (actorId !== undefined) {
      const q = quote(actorId);
      if (q === '') return false;
      json += `,"actor_id":${q}`;
    }
    let more = optional(',"resource_type":', attrs[ATTR_AUDIT_RESOURCE_TYPE], 100, quote);
    if (more === undefined) return false;
    json += more;
    more = optional(',"resource_id":', attrs[ATTR_AUDIT_RESOURCE_ID], 255, quoteOnce);
    if (more === undefined) return false;
    json += more;
    more = optional(',"severity":', attrs[ATTR_AUDIT_SEVERITY], 20, quote);
    if (more === undefined) return false;
    json += more;
    more = optional(',"error_code":', attrs['error.type'], 50, quote);
    if (more === undefined) return false;
    json += more;
    more = optional(',"error_message":', attrs['exception.message'], Infinity, quoteOnce);
    if (more === undefined) return false;
    json += more;
    more = optional(',"namespace":', attrs['k8s.namespace.name'] ?? res.ns, 253, quote);
    if (more === undefined) return false;
    json += more;
    more = optional(',"cluster_id":', attrs['k8s.cluster.uid'] ?? res.cluster, 255, quote);
    if (more === undefined) return false;
    json += more;
    const sensitive = attrs[ATTR_AUDIT_SENSITIVE];
    if (sensitive !== undefined) {
      if (typeof sensitive !== 'boolean') return false;
      json += sensitive ? ',"is_sensitive":true' : ',"is_sensitive":false';
    }

    // event_data: the body when it is a plain map, else a map in audit.event.data.
    const body = record.body;
    let data: unknown;
    if (isMap(body)) data = body;
    else if (body === undefined || body === null) {
      data = attrs[ATTR_AUDIT_EVENT_DATA];
      if (!isMap(data)) return false;
    } else return false;
    const map = data as Attrs;
    let dataJson: string;
    if (Object.hasOwn(map, 'event_type')) {
      // The mapping puts the event type first and replaces the payload's: the same text only
      // when the payload already starts with it.
      let first: string | undefined;
      for (const k in map) {
        first = k;
        break;
      }
      if (first !== 'event_type' || map.event_type !== eventType) return false;
      if (!plainJson(map, 1)) return false;
      dataJson = JSON.stringify(map);
    } else {
      if (!plainJson(map, 1)) return false;
      const payload = JSON.stringify(map);
      const head = `{"event_type":${JSON.stringify(eventType)}`;
      dataJson = payload.length === 2 ? `${head}}` : `${head},${payload.slice(1)}`;
    }
    if (
      dataJson.length * 3 > MAX_EVENT_DATA_BYTES &&
      Buffer.byteLength(dataJson, 'utf8') > MAX_EVENT_DATA_BYTES
    ) {
      return false;
    }
    // JSON.stringify writes \uXXXX only for control characters and unpaired surrogates:
    // anything escaped that way (or a backslash before a u) goes to the full checks.
    if (dataJson.includes('\\u')) return false;
    out.json = `${json},"event_data":${dataJson}}`;
    out.ms = ms;
    return true;
  } catch {
    return false;
  }
}

/**
 * `,"field":"value"` for an optional string field ('' when absent); undefined when the value
 * is one the fast path leaves to the mapping.
 */
function optional(
  member: string,
  v: unknown,
  max: number,
  q: (s: string) => string,
): string | undefined {
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.length === 0 || v.length > max) return undefined;
  const quoted = q(v);
  return quoted === '' ? undefined : member + quoted;
}

/** Strings JSON.stringify writes as they are between quotes (nothing to escape, no surrogate). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes.
const VERBATIM = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** `"s"` when s needs no escaping, else '' (the mapping then decides). */
function quoteOnce(s: string): string {
  return VERBATIM.test(s) ? `"${s}"` : '';
}

/** quoteOnce for values that repeat (types, categories, services…), remembered. */
const quoted = new Map<string, string>();
function quote(s: string): string {
  let q = quoted.get(s);
  if (q === undefined) {
    q = quoteOnce(s);
    if (quoted.size >= 4096) quoted.clear();
    quoted.set(s, q);
  }
  return q;
}

function isMap(v: unknown): v is Attrs {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Realistic audit payloads and log records for tests, derived from the upstream
 * DataStorage spec (via specPath()) and its event-type table:
 *
 * - eventTypes(): every event type with its payload schema and emitter category;
 * - sampleEventTypes(): one event type per category;
 * - realisticPayload(eventType): an `event_data` object with every required field of the
 *   mapped schema filled with plausible values (the spec's examples where it gives them);
 * - auditLogRecord(...): a `LogRecord` for `logger.emit(...)` of @opentelemetry/api;
 * - makeAuditLogRecord(...): the real SDK ReadableLogRecord for it (emitted through a
 *   real LoggerProvider and captured by a processor);
 * - createCapturingLoggerProvider(): a LoggerProvider whose emitted records are kept.
 */
import { readFileSync } from 'node:fs';
import {
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_DATA,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_EVENT_TYPE,
  type AuditEventCategory,
  type AuditEventOutcome,
} from '@kubernaut/audit-semantic-conventions';
import type { JsonObject, JsonValue } from '@kubernaut/datastorage-contract';
import type { AnyValue, Attributes, LogRecord } from '@opentelemetry/api';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  LoggerProvider,
  type LogRecordProcessor,
  type ReadableLogRecord,
  type ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import { parse as parseYaml } from 'yaml';
import { eventTypesPath, specPath } from './spec.ts';

export type { JsonObject, JsonValue };

/** One row of event_types.tsv. */
export interface EventTypeInfo {
  eventType: string;
  /** Payload schema name in components.schemas. */
  schema: string;
  /** The category the type's emitters use (one of the spec's 14). */
  category: AuditEventCategory;
}

type Schema = Record<string, unknown>;

let cachedSchemas: Record<string, Schema> | undefined;
let cachedTypes: EventTypeInfo[] | undefined;

function schemas(): Record<string, Schema> {
  if (cachedSchemas === undefined) {
    const doc = parseYaml(readFileSync(specPath(), 'utf8')) as {
      components: { schemas: Record<string, Schema> };
    };
    cachedSchemas = doc.components.schemas;
  }
  return cachedSchemas;
}

/** Every event type of the table, in table order. */
export function eventTypes(): readonly EventTypeInfo[] {
  if (cachedTypes === undefined) {
    const lines = readFileSync(eventTypesPath(), 'utf8').split('\n');
    cachedTypes = [];
    for (const line of lines.slice(1)) {
      const [eventType, schema, category] = line.trim().split('\t');
      if (!eventType || !schema || !category) continue;
      cachedTypes.push({ eventType, schema, category: category as AuditEventCategory });
    }
  }
  return cachedTypes;
}

/** Looks an event type up in the table; throws for unknown types (a test bug). */
export function eventTypeInfo(eventType: string): EventTypeInfo {
  const info = eventTypes().find((t) => t.eventType === eventType);
  if (info === undefined) throw new Error(`unknown event type ${eventType}`);
  return info;
}

/** One event type per category (the first of each in the table), sorted by category. */
export function sampleEventTypes(): EventTypeInfo[] {
  const byCategory = new Map<string, EventTypeInfo>();
  for (const t of eventTypes()) if (!byCategory.has(t.category)) byCategory.set(t.category, t);
  return [...byCategory.values()].sort((a, b) => a.category.localeCompare(b.category));
}

/** The categories that occur in the table. */
export function categories(): AuditEventCategory[] {
  return [...new Set(eventTypes().map((t) => t.category))].sort();
}

// ---- payload generation -------------------------------------------------------------

const FIXED_TIME = '2026-11-20T09:15:30.123456Z';
const FIXED_DATE = '2026-11-20';
const FIXED_UUID = '3f1c2a9e-7b4d-4e8a-9c21-5d6f0a1b2c3d';
const SHA256 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

/** Plausible strings for common property names that the spec gives no example for. */
const NAME_HINTS: Array<[RegExp, string]> = [
  [/namespace/i, 'payments'],
  [/cluster/i, 'prod-eu-west-1'],
  [/fingerprint/i, 'fp-7c1e2d9a4b'],
  [/(^|_)kind$|Kind$/, 'Deployment'],
  [/hash/i, `sha256:${SHA256}`],
  [/(^|_)(user|username|actor|subject)$/i, 'system:serviceaccount:kubernaut:gateway'],
  [/email/i, 'oncall@example.com'],
  [/(^|_)ip$|address/i, '10.12.4.7'],
  [/(^|_)url$|endpoint|Url$/, 'https://api.example.com/v1/items'],
  [/model/i, 'claude-sonnet-4'],
  [/reason/i, 'MemoryLimitExceeded'],
  [/message|summary|description|detail/i, 'Container memory usage exceeded 95% of its limit'],
  [/phase|status|state/i, 'Completed'],
  [/(^|_)id$|Id$|ID$/, 'rr-2026-11-20-7f3a'],
  [/name$|Name$/, 'payment-api'],
];

function resolve(schema: Schema): Schema {
  let s = schema;
  for (let i = 0; i < 20 && typeof s.$ref === 'string'; i++) {
    const name = (s.$ref as string).replace('#/components/schemas/', '');
    const target = schemas()[name];
    if (target === undefined) throw new Error(`unresolved $ref ${s.$ref as string}`);
    s = target;
  }
  if (Array.isArray(s.allOf)) {
    // Merge allOf members (the spec uses allOf to wrap a single $ref).
    let merged: Schema = {};
    for (const part of s.allOf as Schema[]) {
      const r = resolve(part);
      merged = {
        ...merged,
        ...r,
        properties: { ...(merged.properties as Schema), ...(r.properties as Schema) },
        required: [...((merged.required as string[]) ?? []), ...((r.required as string[]) ?? [])],
      };
    }
    const { allOf: _allOf, ...rest } = s;
    s = { ...merged, ...rest };
  }
  return s;
}

function matchesType(value: unknown, type: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    default:
      return false;
  }
}

function stringFor(s: Schema, key: string): string {
  switch (s.format) {
    case 'date-time':
      return FIXED_TIME;
    case 'date':
      return FIXED_DATE;
    case 'uuid':
      return FIXED_UUID;
    case 'uri':
      return 'https://kubernaut.example.com/runbooks/oom';
  }
  if (s.pattern === '^[a-f0-9]{64}$') return SHA256;
  if (typeof s.example === 'string') return s.example;
  let v = key.length > 0 ? `${key}-value` : 'value';
  for (const [re, hint] of NAME_HINTS) {
    if (re.test(key)) {
      v = hint;
      break;
    }
  }
  if (typeof s.maxLength === 'number' && v.length > s.maxLength) v = v.slice(0, s.maxLength);
  if (typeof s.minLength === 'number' && v.length < s.minLength) v = v.padEnd(s.minLength, 'x');
  return v;
}

function numberFor(s: Schema, integer: boolean): number {
  if (typeof s.example === 'number' && (!integer || Number.isInteger(s.example))) {
    return s.example;
  }
  const min = typeof s.minimum === 'number' ? s.minimum : undefined;
  const max = typeof s.maximum === 'number' ? s.maximum : undefined;
  let v = integer ? 3 : 0.87;
  if (min !== undefined && v < min) v = min;
  if (max !== undefined && v > max) v = integer ? Math.floor(max) : max;
  if (min !== undefined && max !== undefined)
    v = integer ? Math.ceil((min + max) / 2) : (min + max) / 2;
  return v;
}

function valueFor(raw: Schema, key: string, depth: number): JsonValue {
  const s = resolve(raw);
  if (Array.isArray(s.enum) && s.enum.length > 0) {
    const nonNull = s.enum.filter((e) => e !== null);
    if (s.example !== undefined && nonNull.includes(s.example)) return s.example as JsonValue;
    return (nonNull[0] ?? null) as JsonValue;
  }
  const type = s.type ?? (s.properties ? 'object' : undefined);
  if (s.example !== undefined && type !== 'object' && matchesType(s.example, type)) {
    if (type !== 'array') return s.example as JsonValue;
  }
  switch (type) {
    case 'string':
      return stringFor(s, key);
    case 'integer':
      return numberFor(s, true);
    case 'number':
      return numberFor(s, false);
    case 'boolean':
      return true;
    case 'array': {
      if (depth > 6) return [];
      const items = (s.items as Schema | undefined) ?? { type: 'string' };
      const n = typeof s.minItems === 'number' ? Math.max(1, s.minItems) : 1;
      return Array.from({ length: n }, () => valueFor(items, singular(key), depth + 1));
    }
    case 'object':
      return objectFor(s, depth + 1);
    default:
      return stringFor(s, key);
  }
}

function singular(key: string): string {
  return key.endsWith('s') ? key.slice(0, -1) : key;
}

function objectFor(s: Schema, depth: number): JsonObject {
  const out: JsonObject = {};
  const props = (s.properties as Record<string, Schema> | undefined) ?? {};
  const required = new Set((s.required as string[] | undefined) ?? []);
  for (const [k, p] of Object.entries(props)) {
    // Required fields always; optional ones when the spec shows an example of them.
    const include = required.has(k) || (depth <= 2 && resolve(p).example !== undefined);
    if (include) out[k] = valueFor(p, k, depth);
  }
  if (Object.keys(props).length === 0 && isObjectMap(s.additionalProperties)) {
    out.example_key = valueFor(s.additionalProperties as Schema, 'example_key', depth);
  }
  return out;
}

function isObjectMap(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * A realistic `event_data` for `eventType`: all required fields of its payload schema
 * (enums respected, formats honoured), optional fields the spec gives examples for, and
 * `event_type`. A fresh object on every call; `overrides` are merged on top.
 */
export function realisticPayload(eventType: string, overrides: JsonObject = {}): JsonObject {
  const info = eventTypeInfo(eventType);
  const schema = schemas()[info.schema];
  if (schema === undefined) throw new Error(`schema ${info.schema} not in the spec`);
  const data = objectFor(resolve(schema), 1);
  data.event_type = eventType;
  return { ...data, ...overrides };
}

// ---- log records --------------------------------------------------------------------

/** What {@link auditLogRecord} builds; every field has a sensible default. */
export interface AuditRecordOptions {
  /** [`gateway.signal.received`] */
  eventType?: string;
  /** [the table's category of eventType] */
  category?: string;
  /** [the last segment of eventType, ≤ 50 chars] */
  action?: string;
  /** [`success`] */
  outcome?: AuditEventOutcome | string;
  /** [`rr-<random>`] */
  correlationId?: string;
  /** Record timestamp [now]. */
  timestamp?: LogRecord['timestamp'];
  observedTimestamp?: LogRecord['observedTimestamp'];
  /** Where the event type goes: the record's eventName, or `audit.event.type`. ['eventName'] */
  eventTypeAs?: 'eventName' | 'attribute';
  /**
   * Where the payload goes: the body (a map), or `audit.event.data` as a map or as a JSON
   * string (then the body is a short message). ['body']
   */
  dataAs?: 'body' | 'attribute-map' | 'attribute-json';
  /** The payload [realisticPayload(eventType)]. */
  data?: JsonObject;
  /** Extra attributes, merged last (undefined values remove a default). */
  attributes?: Attributes | Record<string, AnyValue>;
  severityText?: string;
}

let correlationSeq = 0;

/** A LogRecord for `logger.emit()` of `@opentelemetry/api` carrying an audit event. */
export function auditLogRecord(options: AuditRecordOptions = {}): LogRecord {
  const eventType = options.eventType ?? 'gateway.signal.received';
  const known = eventTypes().find((t) => t.eventType === eventType);
  const category = options.category ?? known?.category ?? 'gateway';
  const action = options.action ?? (eventType.split('.').pop() ?? 'performed').slice(0, 50);
  const data = options.data ?? (known ? realisticPayload(eventType) : { event_type: eventType });
  const attributes: Record<string, AnyValue> = {
    [ATTR_AUDIT_EVENT_CATEGORY]: category,
    [ATTR_AUDIT_EVENT_ACTION]: action,
    [ATTR_AUDIT_EVENT_OUTCOME]: options.outcome ?? 'success',
    [ATTR_AUDIT_CORRELATION_ID]:
      options.correlationId ?? `rr-${process.pid}-${Date.now().toString(36)}-${++correlationSeq}`,
  };
  if (options.eventTypeAs === 'attribute') attributes[ATTR_AUDIT_EVENT_TYPE] = eventType;
  let body: AnyValue = data as AnyValue;
  if (options.dataAs === 'attribute-map') {
    attributes[ATTR_AUDIT_EVENT_DATA] = data as AnyValue;
    body = `${eventType} ${action}`;
  } else if (options.dataAs === 'attribute-json') {
    attributes[ATTR_AUDIT_EVENT_DATA] = JSON.stringify(data);
    body = `${eventType} ${action}`;
  }
  for (const [k, v] of Object.entries(options.attributes ?? {})) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v as AnyValue;
  }
  const record: LogRecord = { body, attributes, severityText: options.severityText ?? 'INFO' };
  if (options.eventTypeAs !== 'attribute') record.eventName = eventType;
  if (options.timestamp !== undefined) record.timestamp = options.timestamp;
  if (options.observedTimestamp !== undefined) record.observedTimestamp = options.observedTimestamp;
  return record;
}

/** A LoggerProvider (real SDK) that keeps every emitted record, with its logger. */
export interface CapturingLoggerProvider {
  provider: LoggerProvider;
  logger: ReturnType<LoggerProvider['getLogger']>;
  /** Records in emit order (the real SDK objects, read-only after emit). */
  records: ReadableLogRecord[];
}

/** Default resource of test records: a service in a namespace of a cluster. */
export const TEST_RESOURCE_ATTRIBUTES = {
  'service.name': 'payments-gateway',
  'k8s.namespace.name': 'payments',
  'k8s.cluster.uid': '0b8f3a52-6c1d-4f7e-9a3b-2c4d5e6f7a8b',
} as const;

export function createCapturingLoggerProvider(
  resource: Resource = resourceFromAttributes(TEST_RESOURCE_ATTRIBUTES),
  extraProcessors: LogRecordProcessor[] = [],
): CapturingLoggerProvider {
  const records: ReadableLogRecord[] = [];
  const capture: LogRecordProcessor = {
    onEmit(record: ReadWriteLogRecord) {
      records.push(record);
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const provider = new LoggerProvider({ resource, processors: [...extraProcessors, capture] });
  return { provider, logger: provider.getLogger('kubernaut-audit-test', '1.0.0'), records };
}

let shared: CapturingLoggerProvider | undefined;

/**
 * The real SDK ReadableLogRecord for `auditLogRecord(options)` (or for a LogRecord you
 * pass), emitted through a real LoggerProvider with the test resource.
 */
export function makeAuditLogRecord(
  options: AuditRecordOptions | LogRecord = {},
): ReadableLogRecord {
  shared ??= createCapturingLoggerProvider();
  const logRecord = isLogRecord(options) ? options : auditLogRecord(options);
  shared.logger.emit(logRecord);
  const record = shared.records.pop();
  if (record === undefined) throw new Error('the LoggerProvider did not emit the record');
  return record;
}

function isLogRecord(v: AuditRecordOptions | LogRecord): v is LogRecord {
  return 'body' in v || 'eventName' in v || 'severityNumber' in v;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * OTLP log records (decoded plain objects) → the record shape the OTel SDK hands to log record
 * processors (`ReadWriteLogRecord`, which satisfies `ReadableLogRecord`). Pure: no I/O.
 */
import { errorText } from '@kubernaut/datastorage-contract/config';
import {
  type AnyValue,
  type Attributes,
  type HrTime,
  isSpanContextValid,
  type SeverityNumber,
  type SpanContext,
} from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type {
  OtlpAnyValue,
  OtlpExportLogsRequest,
  OtlpKeyValue,
  OtlpLogRecord,
} from './proto/codec.ts';

type AnyValueMap = { [key: string]: AnyValue };

/** Deepest AnyValue nesting accepted (arrays and kvlists); deeper values make the record invalid. */
export const MAX_ANY_VALUE_DEPTH = 32;

const NANOS_PER_SECOND = 1_000_000_000n;

/** Converts nanoseconds since the Unix epoch to an `HrTime` without precision loss. */
export function nanosToHrTime(nanos: bigint): HrTime {
  return [Number(nanos / NANOS_PER_SECOND), Number(nanos % NANOS_PER_SECOND)];
}

/** Converts an OTLP `AnyValue` to the OTel API `AnyValue` (kvlist → map, int64 → number). */
export function toApiAnyValue(value: OtlpAnyValue | undefined, depth = 0): AnyValue {
  if (!value) return undefined;
  if (depth > MAX_ANY_VALUE_DEPTH) {
    throw new RangeError(`value nesting deeper than ${MAX_ANY_VALUE_DEPTH}`);
  }
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return int64ToApi(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.bytesValue !== undefined) return new Uint8Array(value.bytesValue);
  if (value.arrayValue !== undefined) {
    return (value.arrayValue.values ?? []).map((v) => toApiAnyValue(v, depth + 1));
  }
  if (value.kvlistValue !== undefined) return keyValuesToMap(value.kvlistValue.values, depth + 1);
  return undefined;
}

/*
 * An int64 that a JS number cannot hold exactly (some beyond ±2^53) is kept as its exact decimal
 * string: an audit trail must not silently alter a number.
 */
function int64ToApi(v: bigint): number | string {
  const n = Number(v);
  return BigInt(n) === v ? n : v.toString();
}

/*
 * A key is data: `__proto__` (or `constructor`) becomes an own member of the map, never its
 * prototype, so that no key can hide or invent attributes the mapping reads.
 */
function keyValuesToMap(values: OtlpKeyValue[] | undefined, depth: number): AnyValueMap {
  const map: AnyValueMap = {};
  for (const kv of values ?? []) {
    if (kv.key === undefined) continue;
    const value = toApiAnyValue(kv.value, depth);
    if (kv.key === '__proto__') {
      Object.defineProperty(map, kv.key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else map[kv.key] = value;
  }
  return map;
}

/** Converts OTLP attributes to an attribute map; a repeated key keeps its last value. */
export function toAttributes(values: OtlpKeyValue[] | undefined): Attributes {
  // Log record attributes in the SDK hold any AnyValue (maps included).
  return keyValuesToMap(values, 1) as Attributes;
}

function toHex(bytes: Uint8Array | undefined, length: number): string | undefined {
  if (!bytes || bytes.length !== length) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** The span context of an OTLP record, when it carries a valid trace id and span id. */
export function toSpanContext(record: OtlpLogRecord): SpanContext | undefined {
  const traceId = toHex(record.traceId, 16);
  const spanId = toHex(record.spanId, 8);
  if (!traceId || !spanId) return undefined;
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: (record.flags ?? 0) & 0xff,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/**
 * A log record received over OTLP, in the shape the SDK hands to `LogRecordProcessor.onEmit`.
 * Mutable like the SDK's own record while a processor's `onEmit` runs.
 */
export class BridgedLogRecord implements ReadWriteLogRecord {
  hrTime: HrTime;
  hrTimeObserved: HrTime;
  spanContext?: SpanContext;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly attributes: Attributes;
  severityText?: string;
  severityNumber?: SeverityNumber;
  body?: AnyValue;
  eventName?: string;
  droppedAttributesCount: number;

  constructor(init: {
    hrTime: HrTime;
    hrTimeObserved: HrTime;
    spanContext?: SpanContext;
    resource: Resource;
    instrumentationScope: InstrumentationScope;
    attributes: Attributes;
    severityText?: string;
    severityNumber?: SeverityNumber;
    body?: AnyValue;
    eventName?: string;
    droppedAttributesCount?: number;
  }) {
    this.hrTime = init.hrTime;
    this.hrTimeObserved = init.hrTimeObserved;
    this.resource = init.resource;
    this.instrumentationScope = init.instrumentationScope;
    this.attributes = init.attributes;
    this.droppedAttributesCount = init.droppedAttributesCount ?? 0;
    if (init.spanContext) this.spanContext = init.spanContext;
    if (init.severityText !== undefined) this.severityText = init.severityText;
    if (init.severityNumber !== undefined) this.severityNumber = init.severityNumber;
    if (init.body !== undefined) this.body = init.body;
    if (init.eventName !== undefined) this.eventName = init.eventName;
  }

  setAttribute(key: string, value?: AnyValue): this {
    if (value === undefined || value === null) return this;
    if (key === '__proto__') {
      Object.defineProperty(this.attributes, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else (this.attributes as Record<string, AnyValue>)[key] = value;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const [key, value] of Object.entries(attributes)) this.setAttribute(key, value);
    return this;
  }

  setBody(body: AnyValue): this {
    this.body = body;
    return this;
  }

  setEventName(eventName: string): this {
    this.eventName = eventName;
    return this;
  }

  setSeverityNumber(severityNumber: SeverityNumber): this {
    this.severityNumber = severityNumber;
    return this;
  }

  setSeverityText(severityText: string): this {
    this.severityText = severityText;
    return this;
  }
}

/** One converted record, or why one could not be converted. */
export type ConvertedRecord = { ok: true; record: BridgedLogRecord } | { ok: false; error: string };

/**
 * Converts every log record of a request, in request order. Records sharing a ResourceLogs share
 * one `Resource` object and records sharing a ScopeLogs share one scope object, as in the SDK.
 * `now` supplies the observed time of records that carry neither timestamp.
 */
export function convertExportRequest(
  request: OtlpExportLogsRequest,
  now: () => HrTime = hrNow,
): ConvertedRecord[] {
  const out: ConvertedRecord[] = [];
  for (const resourceLogs of request.resourceLogs ?? []) {
    let resource: Resource;
    try {
      resource = resourceFromAttributes(
        toAttributes(resourceLogs.resource?.attributes) as Record<string, never>,
        resourceLogs.schemaUrl ? { schemaUrl: resourceLogs.schemaUrl } : undefined,
      );
    } catch (err) {
      for (const sl of resourceLogs.scopeLogs ?? []) {
        for (const _ of sl.logRecords ?? []) out.push({ ok: false, error: errorText(err) });
      }
      continue;
    }
    for (const scopeLogs of resourceLogs.scopeLogs ?? []) {
      const scope: { name: string; version?: string; schemaUrl?: string; attributes?: Attributes } =
        { name: scopeLogs.scope?.name ?? '' };
      if (scopeLogs.scope?.version) scope.version = scopeLogs.scope.version;
      if (scopeLogs.schemaUrl) scope.schemaUrl = scopeLogs.schemaUrl;
      if (scopeLogs.scope?.attributes?.length) {
        try {
          scope.attributes = toAttributes(scopeLogs.scope.attributes);
        } catch (err) {
          // As for the resource: the scope's records are rejected, the request goes on.
          for (const _ of scopeLogs.logRecords ?? [])
            out.push({ ok: false, error: errorText(err) });
          continue;
        }
      }
      for (const record of scopeLogs.logRecords ?? []) {
        try {
          out.push({ ok: true, record: convertLogRecord(record, resource, scope, now) });
        } catch (err) {
          out.push({ ok: false, error: errorText(err) });
        }
      }
    }
  }
  return out;
}

/** Converts one OTLP log record. Throws when a value is too deeply nested. */
export function convertLogRecord(
  record: OtlpLogRecord,
  resource: Resource,
  instrumentationScope: InstrumentationScope,
  now: () => HrTime = hrNow,
): BridgedLogRecord {
  const observed = record.observedTimeUnixNano
    ? nanosToHrTime(record.observedTimeUnixNano)
    : undefined;
  const time = record.timeUnixNano ? nanosToHrTime(record.timeUnixNano) : undefined;
  // The SDK always sets both; an OTLP record may leave either at 0 ("unknown").
  const hrTimeObserved = observed ?? time ?? now();
  const init: ConstructorParameters<typeof BridgedLogRecord>[0] = {
    hrTime: time ?? hrTimeObserved,
    hrTimeObserved,
    resource,
    instrumentationScope,
    attributes: toAttributes(record.attributes),
    droppedAttributesCount: record.droppedAttributesCount ?? 0,
  };
  const spanContext = toSpanContext(record);
  if (spanContext) init.spanContext = spanContext;
  if (record.severityNumber) init.severityNumber = record.severityNumber as SeverityNumber;
  if (record.severityText) init.severityText = record.severityText;
  if (record.body) init.body = toApiAnyValue(record.body);
  if (record.eventName) init.eventName = record.eventName;
  return new BridgedLogRecord(init);
}

function hrNow(): HrTime {
  return nanosToHrTime(BigInt(Date.now()) * 1_000_000n);
}

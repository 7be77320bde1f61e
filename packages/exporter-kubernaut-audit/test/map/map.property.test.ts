// SPDX-License-Identifier: Apache-2.0
/*
 * Property-based: generated valid audit records (any event type of the mapping with its
 * realistic payload, any mix of valid optional attributes, any way of carrying type and
 * payload) are accepted and yield events that pass the upstream spec and the contract;
 * generated invalid ones are rejected (or their field omitted) with the right reason.
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
  isRequiredField,
  isStorableString,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_DATA_BYTES,
  MAX_FUTURE_SKEW_MS,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import {
  auditLogRecord,
  createCapturingLoggerProvider,
  eventTypes,
  realisticPayload,
  specPath,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import type { HrTime } from '@opentelemetry/api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatHrTime, mapLogRecord } from '../../src/map/index.ts';

const NOW = Date.parse('2026-11-20T12:00:00Z');
const NOW_S = NOW / 1000;

let openApi: OpenApiValidator;
const cap = createCapturingLoggerProvider();
beforeAll(() => {
  openApi = OpenApiValidator.fromFile(specPath());
});
afterAll(() => cap.provider.shutdown());

/** Emits through the real SDK and returns the SDK's record. */
function emit(record: ReturnType<typeof auditLogRecord>) {
  cap.logger.emit(record);
  const r = cap.records.pop();
  if (!r) throw new Error('not emitted');
  return r;
}

/** Any text DataStorage can store: every code point but NUL, no unpaired surrogate. */
const str = (min: number, max: number) =>
  fc.string({ minLength: min, maxLength: max, unit: 'binary' }).filter(isStorableString);

/** Valid optional attributes, each present or not. */
const optionalAttributes = fc.record(
  {
    [ATTR_AUDIT_ACTOR_TYPE]: str(1, 50),
    [ATTR_AUDIT_ACTOR_ID]: str(1, 255),
    'client.address': fc.oneof(fc.ipV4(), fc.ipV6()),
    [ATTR_AUDIT_RESOURCE_TYPE]: str(1, 100),
    [ATTR_AUDIT_RESOURCE_ID]: str(1, 255),
    [ATTR_AUDIT_PARENT_EVENT_ID]: fc.uuid(),
    'k8s.namespace.name': str(0, 253),
    'k8s.cluster.uid': str(0, 255),
    [ATTR_AUDIT_SEVERITY]: str(0, 20),
    [ATTR_AUDIT_DURATION_MS]: fc.integer({ min: 0, max: 2_147_483_647 }),
    'error.type': str(0, 50),
    'exception.message': str(0, 500),
    [ATTR_AUDIT_RETENTION_DAYS]: fc.integer({ min: 1, max: 2555 }),
    [ATTR_AUDIT_SENSITIVE]: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** A timestamp inside DataStorage's window: up to 7 days old, up to 60 minutes ahead. */
const validTime = fc
  .record({
    offsetS: fc.integer({
      min: -(MAX_EVENT_AGE_MS / 1000) + 1,
      max: MAX_FUTURE_SKEW_MS / 1000 - 1,
    }),
    nanos: fc.integer({ min: 0, max: 999_999_999 }),
  })
  .map(({ offsetS, nanos }): HrTime => [NOW_S + offsetS, nanos]);

const validRecord = fc.record({
  type: fc.constantFrom(...eventTypes()),
  outcome: fc.constantFrom('success', 'failure', 'pending'),
  action: str(1, 50),
  correlationId: str(1, 255),
  time: validTime,
  eventTypeAs: fc.constantFrom('eventName' as const, 'attribute' as const),
  dataAs: fc.constantFrom('body' as const, 'attribute-map' as const, 'attribute-json' as const),
  // Of what JSON.stringify escapes, NUL and unpaired surrogates are what DataStorage cannot store.
  extra: fc.option(
    fc.jsonValue({ maxDepth: 3 }).filter((v) => !/\\u0000|\\ud[89a-f]/i.test(JSON.stringify(v))),
    { nil: undefined },
  ),
  attributes: optionalAttributes,
});

describe('property: valid records map to events the upstream spec accepts', () => {
  it('accepts, omits nothing, and the event validates against the spec and the contract', () => {
    fc.assert(
      fc.property(validRecord, (g) => {
        // The SDK copies attribute maps key by key (`copy[k] = v`) and so drops `__proto__` keys
        // before any processor sees them (a body keeps them): such payloads only travel as a body
        // here. The mapping itself keeps `__proto__` as data wherever it finds it (map.test.ts).
        fc.pre(
          g.dataAs !== 'attribute-map' || !JSON.stringify(g.extra ?? null).includes('"__proto__"'),
        );
        const data = realisticPayload(g.type.eventType);
        if (g.extra !== undefined) data.x_extra = g.extra as never;
        const input = auditLogRecord({
          eventType: g.type.eventType,
          outcome: g.outcome,
          action: g.action,
          correlationId: g.correlationId,
          timestamp: g.time,
          eventTypeAs: g.eventTypeAs,
          dataAs: g.dataAs,
          data,
          attributes: g.attributes,
        });
        const snapshot = JSON.stringify(input.body ?? null) + JSON.stringify(input.attributes);
        const record = emit(input);
        const r = mapLogRecord(record, { now: NOW, openApi });
        if (!r.ok) throw new Error(JSON.stringify(r.violations));
        expect(r.omitted).toEqual([]);
        expect(validateAuditEventRequest(r.event, { now: NOW })).toEqual([]);
        expect(openApi.validate(r.event)).toEqual([]);

        const ev = r.event;
        expect(ev.event_type).toBe(g.type.eventType);
        expect(ev.event_category).toBe(g.type.category);
        expect(ev.event_action).toBe(g.action);
        expect(ev.event_outcome).toBe(g.outcome);
        expect(ev.correlation_id).toBe(g.correlationId);
        expect(ev.event_timestamp).toBe(formatHrTime(g.time));
        expect(ev.event_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        expect(ev.event_timestamp.slice(20, 26)).toBe(
          String(Math.floor(g.time[1] / 1000)).padStart(6, '0'),
        );
        expect(JSON.parse(JSON.stringify(ev.event_data))).toEqual(JSON.parse(JSON.stringify(data)));
        // DataStorage's defaults are written out; empty optional values are left out.
        const nonEmpty = (v: unknown) => (v === '' ? undefined : v);
        expect(ev.actor_type).toBe(g.attributes[ATTR_AUDIT_ACTOR_TYPE] ?? 'service');
        if (g.attributes[ATTR_AUDIT_ACTOR_ID] !== undefined) {
          expect(ev.actor_id).toBe(g.attributes[ATTR_AUDIT_ACTOR_ID]);
        } else if (g.attributes[ATTR_AUDIT_ACTOR_TYPE] === undefined) {
          expect(ev.actor_id).toBe(TEST_RESOURCE_ATTRIBUTES['service.name']);
        } else {
          expect(ev.actor_id).toBe(`${g.type.category}-service`);
        }
        expect(ev.resource_type).toBe(g.attributes[ATTR_AUDIT_RESOURCE_TYPE] ?? g.type.category);
        expect(ev.resource_id).toBe(g.attributes[ATTR_AUDIT_RESOURCE_ID] ?? g.correlationId);
        expect(ev.namespace).toBe(
          nonEmpty(
            g.attributes['k8s.namespace.name'] ?? TEST_RESOURCE_ATTRIBUTES['k8s.namespace.name'],
          ),
        );
        expect(ev.cluster_id).toBe(
          nonEmpty(g.attributes['k8s.cluster.uid'] ?? TEST_RESOURCE_ATTRIBUTES['k8s.cluster.uid']),
        );
        expect(ev.severity).toBe(nonEmpty(g.attributes[ATTR_AUDIT_SEVERITY]));
        expect(ev.parent_event_id).toBe(g.attributes[ATTR_AUDIT_PARENT_EVENT_ID]?.toLowerCase());
        expect(ev.actor_ip).toBe(g.attributes['client.address']);
        expect(ev.retention_days).toBe(g.attributes[ATTR_AUDIT_RETENTION_DAYS] ?? 2555);
        expect(ev.is_sensitive).toBe(g.attributes[ATTR_AUDIT_SENSITIVE] ?? false);
        const duration = g.attributes[ATTR_AUDIT_DURATION_MS];
        expect(ev.duration_ms).toBe(duration === 0 ? undefined : duration); // 0: left out
        // Never mutates what the application handed over.
        expect(JSON.stringify(input.body ?? null) + JSON.stringify(input.attributes)).toBe(
          snapshot,
        );
      }),
      { numRuns: 150 },
    );
  });
});

type Mutation = {
  name: string;
  attributes?: Record<string, unknown>;
  eventName?: 'drop';
  time?: HrTime;
  /** Replaces the generated payload. */
  data?: (payload: Record<string, unknown>) => Record<string, unknown>;
  field: string;
  reason: string;
};

/** Each required field missing or invalid in turn, including exact boundaries. */
const FATAL: Mutation[] = [
  { name: 'no event type', eventName: 'drop', field: 'event_type', reason: 'missing_field' },
  {
    name: 'event type 101 chars',
    attributes: { [ATTR_AUDIT_EVENT_TYPE]: 'e'.repeat(101) },
    eventName: 'drop',
    field: 'event_type',
    reason: 'too_long',
  },
  {
    name: 'no category',
    attributes: { [ATTR_AUDIT_EVENT_CATEGORY]: undefined },
    field: 'event_category',
    reason: 'missing_field',
  },
  {
    name: 'bad category',
    attributes: { [ATTR_AUDIT_EVENT_CATEGORY]: 'aianalysis' },
    field: 'event_category',
    reason: 'invalid_enum',
  },
  {
    name: 'no action',
    attributes: { [ATTR_AUDIT_EVENT_ACTION]: undefined },
    field: 'event_action',
    reason: 'missing_field',
  },
  {
    name: 'empty action',
    attributes: { [ATTR_AUDIT_EVENT_ACTION]: '' },
    field: 'event_action',
    reason: 'empty',
  },
  {
    name: 'action 51 chars',
    attributes: { [ATTR_AUDIT_EVENT_ACTION]: 'a'.repeat(51) },
    field: 'event_action',
    reason: 'too_long',
  },
  {
    name: 'no outcome',
    attributes: { [ATTR_AUDIT_EVENT_OUTCOME]: undefined },
    field: 'event_outcome',
    reason: 'missing_field',
  },
  {
    name: 'bad outcome',
    attributes: { [ATTR_AUDIT_EVENT_OUTCOME]: 'succeeded' },
    field: 'event_outcome',
    reason: 'invalid_enum',
  },
  {
    name: 'numeric outcome',
    attributes: { [ATTR_AUDIT_EVENT_OUTCOME]: 0 },
    field: 'event_outcome',
    reason: 'invalid_type',
  },
  {
    name: 'no correlation',
    attributes: { [ATTR_AUDIT_CORRELATION_ID]: undefined },
    field: 'correlation_id',
    reason: 'missing_field',
  },
  {
    name: 'correlation 256 chars',
    attributes: { [ATTR_AUDIT_CORRELATION_ID]: 'c'.repeat(256) },
    field: 'correlation_id',
    reason: 'too_long',
  },
  {
    name: '60 min + 1 ms ahead',
    time: [NOW_S + 3600, 1_000_000],
    field: 'event_timestamp',
    reason: 'timestamp_in_future',
  },
  {
    name: '7 days + 1 s old',
    time: [NOW_S - 7 * 86400 - 1, 0],
    field: 'event_timestamp',
    reason: 'expired',
  },
  {
    name: 'year 10000',
    time: [253402300800, 0],
    field: 'event_timestamp',
    reason: 'invalid_timestamp',
  },
  {
    name: 'payload 256 KiB + 1',
    data: (p) => {
      const withPad = { ...p, pad: '' };
      withPad.pad = 'p'.repeat(
        MAX_EVENT_DATA_BYTES + 1 - Buffer.byteLength(JSON.stringify(withPad)),
      );
      return withPad;
    },
    field: 'event_data',
    reason: 'event_data_too_large',
  },
  {
    name: 'payload 11 levels deep',
    data: (p) => {
      // event_data is level 1; ten more nested objects make 11.
      let inner: Record<string, unknown> = { leaf: true };
      for (let level = 11; level > 2; level--) inner = { d: inner };
      return { ...p, d: inner };
    },
    field: 'event_data',
    reason: 'event_data_too_deep',
  },
  {
    name: 'bad JSON payload',
    attributes: { [ATTR_AUDIT_EVENT_DATA]: '{"event_type":' },
    field: 'event_data',
    reason: 'invalid_json',
  },
];

describe('property: invalid records are rejected with the right reason', () => {
  it('each required field missing or invalid in turn', () => {
    fc.assert(
      fc.property(validRecord, fc.constantFrom(...FATAL), (g, m) => {
        const jsonPayload = m.reason === 'invalid_json';
        const payload = realisticPayload(g.type.eventType);
        const input = auditLogRecord({
          data: (m.data ? m.data(payload) : payload) as never,
          eventType: g.type.eventType,
          outcome: g.outcome,
          action: g.action,
          correlationId: g.correlationId,
          timestamp: m.time ?? g.time,
          eventTypeAs: m.eventName === 'drop' ? 'attribute' : g.eventTypeAs,
          dataAs: jsonPayload ? 'attribute-json' : g.dataAs,
          attributes: {
            ...g.attributes,
            ...(m.eventName === 'drop' ? { [ATTR_AUDIT_EVENT_TYPE]: undefined } : {}),
            ...((m.attributes ?? {}) as Record<string, never>),
          },
        });
        const r = mapLogRecord(emit(input), { now: NOW, openApi });
        if (r.ok) throw new Error(`${m.name}: accepted`);
        expect(r.violations.filter((v) => v.field === m.field).map((v) => v.reason)).toContain(
          m.reason,
        );
        // Only the mutated required field is at fault.
        const others = r.violations.filter((v) => v.field !== m.field && isRequiredField(v.field));
        expect(others).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('the window boundaries themselves are accepted (exactly 60 min ahead, exactly 7 days old)', () => {
    for (const time of [
      [NOW_S + 3600, 0],
      [NOW_S - 7 * 86400, 0],
    ] as HrTime[]) {
      const r = mapLogRecord(emit(auditLogRecord({ timestamp: time })), { now: NOW, openApi });
      expect(r.ok).toBe(true);
    }
    for (const [name, value] of [
      [ATTR_AUDIT_EVENT_ACTION, 'a'.repeat(50)],
      [ATTR_AUDIT_CORRELATION_ID, 'c'.repeat(255)],
    ] as const) {
      const r = mapLogRecord(
        emit(auditLogRecord({ timestamp: [NOW_S, 0], attributes: { [name]: value } })),
        {
          now: NOW,
          openApi,
        },
      );
      expect(r.ok).toBe(true);
    }
    const long = 'e'.repeat(100);
    const r = mapLogRecord(
      emit(auditLogRecord({ eventType: long, category: 'gateway', timestamp: [NOW_S, 0] })),
      { now: NOW },
    );
    expect(r.ok).toBe(true);
  });
});

describe('property: invalid optional fields are omitted, the event still goes', () => {
  const OPTIONAL = fc.constantFrom(
    { attr: 'client.address', value: fc.domain(), field: 'actor_ip', reason: 'invalid_ip' },
    { attr: 'k8s.namespace.name', value: str(254, 300), field: 'namespace', reason: 'too_long' },
    {
      attr: ATTR_AUDIT_RETENTION_DAYS,
      value: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 2556 })),
      field: 'retention_days',
      reason: 'out_of_range',
    },
    { attr: ATTR_AUDIT_SEVERITY, value: str(21, 40), field: 'severity', reason: 'too_long' },
    {
      attr: ATTR_AUDIT_PARENT_EVENT_ID,
      value: str(1, 40).filter((s) => !/^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(s)),
      field: 'parent_event_id',
      reason: 'invalid_uuid',
    },
    {
      attr: ATTR_AUDIT_DURATION_MS,
      value: fc.oneof(fc.string(), fc.double({ noInteger: true, noNaN: true })),
      field: 'duration_ms',
      reason: 'invalid_type',
    },
    // What DataStorage cannot store: empty actor/resource ids, a scoped IPv6 address.
    ...(['actor_type', 'actor_id', 'resource_type', 'resource_id'] as const).map((field) => ({
      attr: `audit.${field.replace('_', '.')}`,
      value: fc.constant(''),
      field,
      reason: 'empty',
    })),
    {
      attr: 'client.address',
      value: fc.constant('fe80::1%eth0'),
      field: 'actor_ip',
      reason: 'invalid_ip',
    },
    {
      attr: ATTR_AUDIT_SENSITIVE,
      value: fc.oneof(fc.string(), fc.integer()),
      field: 'is_sensitive',
      reason: 'invalid_type',
    },
  );

  it('omits and reports the bad field; the rest validates against the spec', () => {
    fc.assert(
      fc.property(
        validRecord,
        OPTIONAL.chain((o) => o.value.map((value: unknown) => ({ ...o, value }))),
        (g, o) => {
          const input = auditLogRecord({
            eventType: g.type.eventType,
            timestamp: g.time,
            dataAs: g.dataAs,
            attributes: { ...g.attributes, [o.attr]: o.value as never },
          });
          const r = mapLogRecord(emit(input), { now: NOW, openApi });
          if (!r.ok) throw new Error(JSON.stringify(r.violations));
          expect(r.omitted).toEqual([
            expect.objectContaining({ field: o.field, reason: o.reason }),
          ]);
          // Left out, or DataStorage's default for it written out.
          const defaults: Record<string, unknown> = {
            retention_days: 2555,
            is_sensitive: false,
            actor_type: 'service',
            actor_id: `${g.type.category}-service`,
            resource_type: g.type.category,
            resource_id: r.event.correlation_id,
          };
          expect((r.event as unknown as Record<string, unknown>)[o.field]).toBe(defaults[o.field]);
          expect(openApi.validate(r.event)).toEqual([]);
          expect(validateAuditEventRequest(r.event, { now: NOW })).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('property: the mapper never throws', () => {
  it('whatever the body and attribute values', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withMap: true,
          withSet: true,
          withTypedArray: true,
          withDate: true,
          withNullPrototype: true,
        }),
        fc.dictionary(
          fc.constantFrom(
            ATTR_AUDIT_EVENT_DATA,
            ATTR_AUDIT_EVENT_OUTCOME,
            ATTR_AUDIT_DURATION_MS,
            ATTR_AUDIT_EVENT_TYPE,
            'client.address',
            ATTR_AUDIT_SENSITIVE,
          ),
          fc.anything({ withBigInt: true }),
        ),
        (body, attrs) => {
          const base = emit(auditLogRecord({ timestamp: [NOW_S, 0] }));
          const record = {
            ...base,
            hrTime: base.hrTime,
            resource: base.resource,
            body,
            attributes: { ...base.attributes, ...attrs },
          };
          const r = mapLogRecord(record as never, { now: NOW, openApi });
          expect(typeof r.ok).toBe('boolean');
          if (r.ok) {
            expect(validateAuditEventRequest(r.event, { now: NOW })).toEqual([]);
          } else {
            expect(r.violations.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

// SPDX-License-Identifier: Apache-2.0
import {
  ATTR_AUDIT_ACTOR_ID,
  ATTR_AUDIT_ACTOR_TYPE,
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_DURATION_MS,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_DATA,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_PARENT_EVENT_ID,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
  ATTR_AUDIT_RETENTION_DAYS,
  ATTR_AUDIT_SENSITIVE,
  ATTR_AUDIT_SEVERITY,
} from '@kubernaut/audit-semantic-conventions';
import { MAX_EVENT_DATA_BYTES, validateAuditEventRequest } from '@kubernaut/datastorage-contract';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import {
  createCapturingLoggerProvider,
  makeAuditLogRecord,
  realisticPayload,
  sampleEventTypes,
  specPath,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import { logs } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecord, formatHrTime, type MapResult, mapLogRecord } from '../../src/map/index.ts';
import { isAuditRecord } from '../../src/select/index.ts';

let openApi: OpenApiValidator;
beforeAll(() => {
  openApi = OpenApiValidator.fromFile(specPath());
});

function accepted(r: MapResult) {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.violations)}`);
  return r;
}
function rejected(r: MapResult) {
  if (r.ok) throw new Error(`expected rejection, got ${JSON.stringify(r.event).slice(0, 300)}`);
  return r;
}

/** A hand-built record (for shapes the SDK cannot produce). */
function rawRecord(over: Record<string, unknown> = {}): ReadableLogRecord {
  const base = makeAuditLogRecord();
  return {
    hrTime: base.hrTime,
    hrTimeObserved: base.hrTimeObserved,
    body: base.body,
    eventName: base.eventName,
    resource: base.resource,
    instrumentationScope: base.instrumentationScope,
    attributes: { ...base.attributes },
    droppedAttributesCount: 0,
    ...over,
  } as ReadableLogRecord;
}

describe('formatHrTime', () => {
  it('formats RFC 3339 UTC with microseconds, truncating, without float loss', () => {
    expect(formatHrTime([1765591200, 123456789])).toBe('2025-12-13T02:00:00.123456Z');
    expect(formatHrTime([1765591200, 999])).toBe('2025-12-13T02:00:00.000000Z');
    expect(formatHrTime([1765591200, 999_999_999])).toBe('2025-12-13T02:00:00.999999Z');
    expect(formatHrTime([1765591200, 1_000_000_000])).toBe('2025-12-13T02:00:01.000000Z');
    expect(formatHrTime([0, 1000])).toBe('1970-01-01T00:00:00.000001Z');
  });
  it('refuses what is not a time', () => {
    for (const bad of [
      undefined,
      null,
      'x',
      [1],
      [Number.NaN, 0],
      [1.5, 0],
      [253402300800, 0],
      [1e300, 0],
    ]) {
      expect(formatHrTime(bad)).toBeUndefined();
    }
  });
});

describe('isAuditRecord', () => {
  it('is true exactly when audit.event.category is present', () => {
    expect(isAuditRecord(makeAuditLogRecord())).toBe(true);
    expect(
      isAuditRecord(makeAuditLogRecord({ attributes: { [ATTR_AUDIT_EVENT_CATEGORY]: undefined } })),
    ).toBe(false);
    expect(isAuditRecord({ attributes: {} })).toBe(false);
    expect(isAuditRecord(null as never)).toBe(false);
    expect(
      isAuditRecord({
        attributes: new Proxy(
          {},
          {
            get() {
              throw new Error('boom');
            },
          },
        ),
      }),
    ).toBe(false);
  });
});

describe('an attribute key `__proto__` (untrusted input spread into attributes)', () => {
  // The SDK assigns each attribute (`attributes[key] = value`): a key `__proto__` with an object
  // value becomes the attributes object's PROTOTYPE. What it holds is not the record's own.
  const injected = JSON.parse(
    `{"user":"bob","__proto__":${JSON.stringify({
      [ATTR_AUDIT_EVENT_CATEGORY]: 'security',
      [ATTR_AUDIT_EVENT_ACTION]: 'login',
      [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
      [ATTR_AUDIT_CORRELATION_ID]: 'forged',
      'audit.actor.type': 'user',
      'audit.actor.id': 'admin',
      [ATTR_AUDIT_RESOURCE_TYPE]: 'Vault',
      [ATTR_AUDIT_RESOURCE_ID]: 'root',
    })}}`,
  ) as Record<string, unknown>;

  async function emitted(record: Parameters<ReturnType<typeof logs.getLogger>['emit']>[0]) {
    const cap = createCapturingLoggerProvider();
    try {
      cap.provider.getLogger('input').emit(record);
      const r = cap.records[0] as ReadableLogRecord;
      // The SDK did make it a prototype (what this test is about).
      expect(Object.getPrototypeOf(r.attributes)).not.toBe(Object.prototype);
      return r;
    } finally {
      await cap.provider.shutdown();
    }
  }

  it('does not make a plain log an audit record', async () => {
    const r = await emitted({
      eventName: 'app.request',
      body: { ok: true },
      attributes: { ...injected } as never,
    });
    expect(isAuditRecord(r)).toBe(false);
  });

  it('supplies no field of an audit record: only its own attributes count', async () => {
    const r = await emitted({
      eventName: 'gateway.signal.received',
      body: realisticPayload('gateway.signal.received'),
      attributes: {
        ...injected,
        [ATTR_AUDIT_EVENT_CATEGORY]: 'gateway',
        [ATTR_AUDIT_EVENT_ACTION]: 'create',
        [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
        [ATTR_AUDIT_CORRELATION_ID]: 'own-1',
      } as never,
    });
    expect(isAuditRecord(r)).toBe(true);
    const m = accepted(mapLogRecord(r, { now: Date.now() }));
    // No actor or resource of its own: the service's actor and no resource, not the injected.
    expect(m.event.actor_type).toBe('service');
    expect(m.event.actor_id).toBe(TEST_RESOURCE_ATTRIBUTES['service.name']);
    expect(m.event.correlation_id).toBe('own-1');
    const text = JSON.stringify(m);
    expect(text).not.toContain('admin');
    expect(text).not.toContain('Vault');
    expect(text).not.toContain('forged');
  });
});

describe('mapLogRecord: the DESIGN §4 table', () => {
  it('maps a record emitted through the real SDK (logs API of @opentelemetry/api)', async () => {
    const cap = createCapturingLoggerProvider();
    logs.setGlobalLoggerProvider(cap.provider);
    try {
      const data = realisticPayload('gateway.signal.received');
      const before = JSON.stringify(data);
      logs.getLogger('checkout').emit({
        eventName: 'gateway.signal.received',
        timestamp: [1765591200, 123456789],
        body: data,
        attributes: {
          [ATTR_AUDIT_EVENT_CATEGORY]: 'gateway',
          [ATTR_AUDIT_EVENT_ACTION]: 'received',
          [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
          [ATTR_AUDIT_CORRELATION_ID]: 'rr-1',
          [ATTR_AUDIT_RESOURCE_TYPE]: 'Signal',
          [ATTR_AUDIT_RESOURCE_ID]: 'fp-abc',
          [ATTR_AUDIT_PARENT_EVENT_ID]: '3f1c2a9e-7b4d-4e8a-9c21-5d6f0a1b2c3d',
          [ATTR_AUDIT_SEVERITY]: 'warning',
          [ATTR_AUDIT_DURATION_MS]: 42,
          [ATTR_AUDIT_RETENTION_DAYS]: 90,
          [ATTR_AUDIT_SENSITIVE]: true,
          'client.address': '2001:db8::1',
          'error.type': 'Timeout',
          'exception.message': 'upstream timed out',
        },
      });
      expect(cap.records).toHaveLength(1);
      const record = cap.records[0]!;
      const now = Date.parse('2025-12-13T02:30:00Z');
      const r = accepted(mapLogRecord(record, { now, openApi }));
      expect(r.omitted).toEqual([]);
      expect(r.event).toEqual({
        version: '1.0',
        event_type: 'gateway.signal.received',
        event_timestamp: '2025-12-13T02:00:00.123456Z',
        event_category: 'gateway',
        event_action: 'received',
        event_outcome: 'success',
        correlation_id: 'rr-1',
        actor_type: 'service',
        actor_id: TEST_RESOURCE_ATTRIBUTES['service.name'],
        actor_ip: '2001:db8::1',
        resource_type: 'Signal',
        resource_id: 'fp-abc',
        parent_event_id: '3f1c2a9e-7b4d-4e8a-9c21-5d6f0a1b2c3d',
        namespace: TEST_RESOURCE_ATTRIBUTES['k8s.namespace.name'],
        cluster_id: TEST_RESOURCE_ATTRIBUTES['k8s.cluster.uid'],
        severity: 'warning',
        duration_ms: 42,
        error_code: 'Timeout',
        error_message: 'upstream timed out',
        retention_days: 90,
        is_sensitive: true,
        event_data: data,
      });
      // A copy: the record's body is the caller's object, untouched.
      expect(r.event.event_data).not.toBe(record.body);
      expect(JSON.stringify(record.body)).toBe(before);
      expect(validateAuditEventRequest(r.event, { now })).toEqual([]);
      expect(openApi.validate(r.event)).toEqual([]);
    } finally {
      logs.disable();
      await cap.provider.shutdown();
    }
  });

  it('takes audit.event.type when there is no eventName, and sets event_data.event_type', () => {
    const data = realisticPayload('gateway.crd.created');
    delete data.event_type;
    const r = accepted(
      mapLogRecord(
        makeAuditLogRecord({ eventType: 'gateway.crd.created', eventTypeAs: 'attribute', data }),
      ),
    );
    expect(r.event.event_type).toBe('gateway.crd.created');
    expect(r.event.event_data.event_type).toBe('gateway.crd.created');
    expect(data.event_type).toBeUndefined();
  });

  it('eventName wins over audit.event.type and over a stale event_data.event_type', () => {
    const rec = makeAuditLogRecord({
      eventType: 'gateway.crd.created',
      data: { ...realisticPayload('gateway.crd.created'), event_type: 'gateway.crd.failed' },
      attributes: { 'audit.event.type': 'gateway.crd.failed' },
    });
    const r = accepted(mapLogRecord(rec, { openApi }));
    expect(r.event.event_type).toBe('gateway.crd.created');
    expect(r.event.event_data.event_type).toBe('gateway.crd.created');
    expect((rec.body as { event_type: string }).event_type).toBe('gateway.crd.failed');
  });

  it('takes event_data from audit.event.data as a map or a JSON string when the body is not a map', () => {
    for (const dataAs of ['attribute-map', 'attribute-json'] as const) {
      const data = realisticPayload('signalprocessing.signal.processed');
      const r = accepted(
        mapLogRecord(
          makeAuditLogRecord({ eventType: 'signalprocessing.signal.processed', dataAs, data }),
          {
            openApi,
          },
        ),
      );
      expect(r.event.event_data).toEqual(data);
    }
  });

  it('falls back to observedTimestamp when the timestamp is unset ([0, 0])', () => {
    const r = accepted(
      mapLogRecord(rawRecord({ hrTime: [0, 0], hrTimeObserved: [1765591200, 5000] }), {
        now: Date.parse('2025-12-13T02:00:00Z'),
      }),
    );
    expect(r.event.event_timestamp).toBe('2025-12-13T02:00:00.000005Z');
  });

  it('takes namespace and cluster from the record before the resource', () => {
    const r = accepted(
      mapLogRecord(
        makeAuditLogRecord({
          attributes: { 'k8s.namespace.name': 'billing', 'k8s.cluster.uid': 'c-2' },
        }),
      ),
    );
    expect(r.event.namespace).toBe('billing');
    expect(r.event.cluster_id).toBe('c-2');
  });

  it('defaults the actor to the service, but never names a user after the service', () => {
    const user = accepted(
      mapLogRecord(makeAuditLogRecord({ attributes: { [ATTR_AUDIT_ACTOR_TYPE]: 'user' } })),
    );
    expect(user.event.actor_type).toBe('user');
    // DataStorage's own default, written out (the hash view's form), never the service's name.
    expect(user.event.actor_id).toBe('gateway-service');
    const named = accepted(
      mapLogRecord(
        makeAuditLogRecord({
          attributes: { [ATTR_AUDIT_ACTOR_TYPE]: 'user', [ATTR_AUDIT_ACTOR_ID]: 'alice' },
        }),
      ),
    );
    expect(named.event.actor_id).toBe('alice');
    const cap = createCapturingLoggerProvider(resourceFromAttributes({}));
    cap.logger.emit(makeAuditLogRecordInput());
    const bare = accepted(mapLogRecord(cap.records[0]!));
    expect(bare.event.actor_type).toBe('service');
  });

  it('leaves duration_ms 0 out, as upstream DataStorage stores and reads it (NULL, no member)', () => {
    const r = accepted(
      mapLogRecord(makeAuditLogRecord({ attributes: { [ATTR_AUDIT_DURATION_MS]: 0 } })),
    );
    expect(r.event.duration_ms).toBeUndefined();
  });

  it('accepts whole-number doubles as integers', () => {
    const r = accepted(
      mapLogRecord(makeAuditLogRecord({ attributes: { [ATTR_AUDIT_DURATION_MS]: 12.0 } })),
    );
    expect(r.event.duration_ms).toBe(12);
  });
});

function makeAuditLogRecordInput() {
  return {
    eventName: 'gateway.signal.received',
    body: realisticPayload('gateway.signal.received'),
    attributes: {
      [ATTR_AUDIT_EVENT_CATEGORY]: 'gateway',
      [ATTR_AUDIT_EVENT_ACTION]: 'received',
      [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
      [ATTR_AUDIT_CORRELATION_ID]: 'rr-9',
    },
  };
}

describe('mapLogRecord: wrong types are violations, not coercions', () => {
  const cases: Array<[string, unknown, string, boolean]> = [
    // attribute, value, field, fatal
    [ATTR_AUDIT_EVENT_OUTCOME, 1, 'event_outcome', true],
    [ATTR_AUDIT_EVENT_ACTION, true, 'event_action', true],
    [ATTR_AUDIT_CORRELATION_ID, 17, 'correlation_id', true],
    [ATTR_AUDIT_EVENT_CATEGORY, ['gateway'], 'event_category', true],
    [ATTR_AUDIT_DURATION_MS, '12', 'duration_ms', false],
    [ATTR_AUDIT_DURATION_MS, 12.5, 'duration_ms', false],
    [ATTR_AUDIT_RETENTION_DAYS, '30', 'retention_days', false],
    [ATTR_AUDIT_SENSITIVE, 'true', 'is_sensitive', false],
    [ATTR_AUDIT_SENSITIVE, 1, 'is_sensitive', false],
    [ATTR_AUDIT_SEVERITY, 3, 'severity', false],
    ['client.address', 167772161, 'actor_ip', false],
    ['k8s.namespace.name', 5, 'namespace', false],
  ];
  for (const [attr, value, field, fatal] of cases) {
    it(`${attr} = ${JSON.stringify(value)} → ${field} invalid_type (${fatal ? 'rejected' : 'omitted'})`, () => {
      const r = mapLogRecord(makeAuditLogRecord({ attributes: { [attr]: value as never } }), {
        openApi,
      });
      const expected = expect.objectContaining({ field, reason: 'invalid_type' });
      if (fatal) {
        expect(rejected(r).violations).toEqual([expected]);
      } else {
        const ok = accepted(r);
        expect(ok.omitted).toEqual([expected]);
        // Left out, or DataStorage's default for it written out (the hash view's form).
        expect((ok.event as unknown as Record<string, unknown>)[field]).toBe(DEFAULTS[field]);
      }
    });
  }
});

/** What an optional field left out becomes: DataStorage's default, written out (gateway event). */
const DEFAULTS: Record<string, unknown> = {
  retention_days: 2555,
  is_sensitive: false,
  actor_type: 'service',
  resource_type: 'gateway',
};

describe('mapLogRecord: invalid optional fields are left out and reported', () => {
  const cases: Array<[string, unknown, string, string]> = [
    ['client.address', 'gateway.example.com', 'actor_ip', 'invalid_ip'],
    ['k8s.namespace.name', 'n'.repeat(254), 'namespace', 'too_long'],
    [ATTR_AUDIT_RETENTION_DAYS, 0, 'retention_days', 'out_of_range'],
    [ATTR_AUDIT_RETENTION_DAYS, 2556, 'retention_days', 'out_of_range'],
    [ATTR_AUDIT_SEVERITY, 's'.repeat(21), 'severity', 'too_long'],
    [ATTR_AUDIT_PARENT_EVENT_ID, 'evt-123', 'parent_event_id', 'invalid_uuid'],
    [ATTR_AUDIT_ACTOR_TYPE, 'a'.repeat(51), 'actor_type', 'too_long'],
    [ATTR_AUDIT_RESOURCE_TYPE, 'r'.repeat(101), 'resource_type', 'too_long'],
    ['error.type', 'e'.repeat(51), 'error_code', 'too_long'],
    ['k8s.cluster.uid', 'c'.repeat(256), 'cluster_id', 'too_long'],
    [ATTR_AUDIT_DURATION_MS, -1, 'duration_ms', 'out_of_range'],
  ];
  for (const [attr, value, field, reason] of cases) {
    it(`${attr} (${String(value).slice(0, 24)}) → ${field} ${reason}`, () => {
      const now = Date.now();
      const r = accepted(
        mapLogRecord(makeAuditLogRecord({ attributes: { [attr]: value as never } }), {
          now,
          openApi,
        }),
      );
      expect(r.omitted).toEqual([expect.objectContaining({ field, reason })]);
      expect((r.event as unknown as Record<string, unknown>)[field]).toBe(DEFAULTS[field]);
      expect(validateAuditEventRequest(r.event, { now })).toEqual([]);
      expect(openApi.validate(r.event)).toEqual([]);
    });
  }

  it('keeps the values just inside the limits', () => {
    const r = accepted(
      mapLogRecord(
        makeAuditLogRecord({
          attributes: {
            'k8s.namespace.name': 'n'.repeat(253),
            [ATTR_AUDIT_RETENTION_DAYS]: 2555,
            [ATTR_AUDIT_SEVERITY]: 's'.repeat(20),
            'client.address': '192.0.2.10',
          },
        }),
        { openApi },
      ),
    );
    expect(r.omitted).toEqual([]);
    expect(r.event.namespace).toHaveLength(253);
    expect(r.event.retention_days).toBe(2555);
    expect(
      accepted(mapLogRecord(makeAuditLogRecord({ attributes: { [ATTR_AUDIT_RETENTION_DAYS]: 1 } })))
        .omitted,
    ).toEqual([]);
  });
});

describe('mapLogRecord: event_data', () => {
  it('rejects an invalid JSON string, a JSON non-object and a missing payload', () => {
    const bad = (attrs: Record<string, unknown>, body: unknown = 'signal received') =>
      rejected(
        mapLogRecord(
          rawRecord({ body, attributes: { ...makeAuditLogRecord().attributes, ...attrs } }),
        ),
      ).violations;
    expect(bad({ [ATTR_AUDIT_EVENT_DATA]: '{"event_type": "gateway' })).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'invalid_json' }),
    ]);
    expect(bad({ [ATTR_AUDIT_EVENT_DATA]: '[1,2]' })).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'invalid_type' }),
    ]);
    expect(bad({ [ATTR_AUDIT_EVENT_DATA]: 42 })).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'invalid_type' }),
    ]);
    expect(bad({})).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'missing_field' }),
    ]);
    expect(bad({}, [1, 2])).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'missing_field' }),
    ]);
  });

  it('rejects payloads over 256 KiB, exactly at the boundary', () => {
    const sized = (bytes: number) => {
      const data = { ...realisticPayload('gateway.signal.received'), pad: '' };
      const size = Buffer.byteLength(JSON.stringify(data));
      data.pad = 'x'.repeat(bytes - size);
      expect(Buffer.byteLength(JSON.stringify(data))).toBe(bytes);
      return mapLogRecord(makeAuditLogRecord({ data }), { openApi });
    };
    expect(accepted(sized(MAX_EVENT_DATA_BYTES)).event.event_data.pad).toBeDefined();
    expect(rejected(sized(MAX_EVENT_DATA_BYTES + 1)).violations).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'event_data_too_large' }),
    ]);
    // Multi-byte characters count in bytes, not characters.
    const data = {
      ...realisticPayload('gateway.signal.received'),
      pad: 'é'.repeat(MAX_EVENT_DATA_BYTES / 2),
    };
    expect(rejected(mapLogRecord(makeAuditLogRecord({ data }))).violations[0]?.reason).toBe(
      'event_data_too_large',
    );
  });

  it('rejects nesting deeper than 10 levels, exactly at the boundary', () => {
    const nested = (levels: number) => {
      // event_data itself is level 1.
      let inner: Record<string, unknown> = { leaf: 1 };
      for (let i = 2; i < levels; i++) inner = { n: inner };
      return { ...realisticPayload('gateway.signal.received'), deep: inner };
    };
    for (const dataAs of ['body', 'attribute-json'] as const) {
      expect(
        accepted(mapLogRecord(makeAuditLogRecord({ data: nested(10) as never, dataAs }))).ok,
      ).toBe(true);
      expect(
        rejected(mapLogRecord(makeAuditLogRecord({ data: nested(11) as never, dataAs })))
          .violations,
      ).toEqual([expect.objectContaining({ field: 'event_data', reason: 'event_data_too_deep' })]);
    }
  });

  it('rejects a payload that fails the spec only when an OpenApiValidator is given', () => {
    const data = realisticPayload('gateway.signal.received');
    delete data.signal_name;
    const rec = makeAuditLogRecord({ data });
    expect(mapLogRecord(rec).ok).toBe(true);
    expect(rejected(mapLogRecord(rec, { openApi })).violations).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'schema' }),
    ]);
    const unknown = makeAuditLogRecord({
      eventType: 'gateway.signal.teleported',
      category: 'gateway',
    });
    expect(rejected(mapLogRecord(unknown, { openApi })).violations).toEqual([
      expect.objectContaining({ field: 'event_type', reason: 'unknown_event_type' }),
    ]);
  });

  it('one event type per category with its realistic payload maps and validates', () => {
    for (const s of sampleEventTypes()) {
      const r = accepted(mapLogRecord(makeAuditLogRecord({ eventType: s.eventType }), { openApi }));
      expect(r.event.event_category).toBe(s.category);
      expect(r.omitted).toEqual([]);
    }
  });
});

describe('mapLogRecord: hostile input never throws', () => {
  const map = (over: Record<string, unknown>) => mapLogRecord(rawRecord(over), { openApi });

  it('a cyclic body', () => {
    const body: Record<string, unknown> = { ...realisticPayload('gateway.signal.received') };
    body.self = body;
    // A cycle ends at the depth limit (the walk is bounded by depth and size, never tracks).
    expect(rejected(map({ body })).violations).toEqual([
      expect.objectContaining({
        field: 'event_data',
        reason: 'event_data_too_deep',
        message: expect.stringMatching(/^event_data\.self\.self.* nests deeper than 10 levels$/),
      }),
    ]);
  });

  it('a wide shared-reference explosion stops at the size budget', () => {
    let node: Record<string, unknown> = { v: 'x'.repeat(50) };
    for (let i = 0; i < 8; i++) {
      const next: Record<string, unknown> = {};
      for (let k = 0; k < 20; k++) next[`k${k}`] = node;
      node = next;
    }
    const body = { ...realisticPayload('gateway.signal.received'), bomb: node };
    expect(rejected(map({ body })).violations[0]?.reason).toBe('event_data_too_large');
  });

  it('BigInt, functions, symbols, non-finite numbers and class instances in the body', () => {
    for (const bad of [
      10n,
      () => 1,
      Symbol('s'),
      Number.NaN,
      Number.POSITIVE_INFINITY,
      new Map(),
      new (class Foo {})(),
    ]) {
      const body = { ...realisticPayload('gateway.signal.received'), nested: { bad } };
      const v = rejected(map({ body })).violations;
      expect(v).toEqual([expect.objectContaining({ field: 'event_data', reason: 'invalid_type' })]);
      expect(v[0]?.message).toMatch(/^event_data\.nested\.bad /);
    }
  });

  it('Uint8Array: nested becomes base64, a Uint8Array body is not a map', () => {
    const body = {
      ...realisticPayload('gateway.signal.received'),
      raw: new Uint8Array([1, 2, 3]),
      at: new Date(0),
    };
    const r = accepted(map({ body }));
    expect(r.event.event_data.raw).toBe('AQID');
    expect(r.event.event_data.at).toBe('1970-01-01T00:00:00.000Z');
    expect(rejected(map({ body: new Uint8Array([123, 125]) })).violations[0]).toMatchObject({
      field: 'event_data',
      reason: 'missing_field',
    });
  });

  it('huge strings are rejected quickly as too long / too large', () => {
    const huge = 'x'.repeat(20 * 1024 * 1024);
    const rec = rawRecord();
    const v = rejected(
      map({
        attributes: {
          ...rec.attributes,
          [ATTR_AUDIT_EVENT_ACTION]: huge,
          [ATTR_AUDIT_SEVERITY]: huge,
        },
        body: { ...realisticPayload('gateway.signal.received'), huge },
      }),
    ).violations;
    // The envelope is checked first: event_data is not even read when the envelope is invalid.
    expect(v.map((x) => `${x.field}:${x.reason}`).sort()).toEqual([
      'event_action:too_long',
      'severity:too_long',
    ]);
    expect(
      rejected(map({ body: { ...realisticPayload('gateway.signal.received'), huge } })).violations,
    ).toEqual([expect.objectContaining({ field: 'event_data', reason: 'event_data_too_large' })]);
    expect(
      rejected(
        map({ body: 'msg', attributes: { ...rec.attributes, [ATTR_AUDIT_EVENT_DATA]: huge } }),
      ).violations[0]?.reason,
    ).toBe('event_data_too_large');
  });

  it('prototype-polluting keys stay data and pollute nothing', () => {
    const body = JSON.parse(
      `{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, ${JSON.stringify(
        realisticPayload('gateway.signal.received'),
      ).slice(1)}`,
    );
    const r = accepted(map({ body }));
    expect(Object.hasOwn(r.event.event_data, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(r.event.event_data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const reparsed = JSON.parse(JSON.stringify(r.event.event_data));
    expect(Object.getOwnPropertyDescriptor(reparsed, '__proto__')?.value).toEqual({
      polluted: true,
    });
    const viaJson = accepted(
      map({
        body: 'm',
        attributes: { ...rawRecord().attributes, [ATTR_AUDIT_EVENT_DATA]: JSON.stringify(body) },
      }),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(viaJson.event.event_data, '__proto__')).toBe(true);
  });

  it('a `__proto__` key in an audit.event.data map stays data at any depth (fast-check seed -511468505)', () => {
    // The counterexample's shape: `x_extra: [{"__proto__": false}]` in an attribute map that
    // reaches the mapping with the key (a bridged record; the SDK's own copy drops it earlier).
    const data = JSON.parse(
      `{"x_extra":[{"__proto__":false}],"nested":{"__proto__":{"a":1}},${JSON.stringify(
        realisticPayload('gateway.signal.received'),
      ).slice(1)}`,
    ) as Record<string, unknown>;
    const r = accepted(
      map({
        body: undefined,
        attributes: { ...rawRecord().attributes, [ATTR_AUDIT_EVENT_DATA]: data },
      }),
    );
    const out = r.event.event_data as Record<string, unknown>;
    const extra = (out.x_extra as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(extra, '__proto__')?.value).toBe(false);
    const nested = out.nested as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(nested, '__proto__')?.value).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(nested)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it('records that are not records at all', () => {
    const throwing = new Proxy(
      {},
      {
        get() {
          throw new Error('getter exploded');
        },
      },
    );
    for (const junk of [
      null,
      undefined,
      42,
      'record',
      throwing,
      { attributes: throwing },
      { body: throwing },
    ]) {
      const r = mapLogRecord(junk as never);
      expect(r.ok).toBe(false);
    }
    const r = rejected(mapLogRecord(throwing as never));
    expect(r.violations[0]).toMatchObject({ field: '', reason: 'invalid_record' });
    const badTime = rejected(map({ hrTime: [Number.NaN, 0] })).violations;
    expect(badTime).toEqual([
      expect.objectContaining({ field: 'event_timestamp', reason: 'invalid_timestamp' }),
    ]);
  });
});

afterAll(() => {
  logs.disable();
});

describe('encodeRecord without provenance: event_data written as it is', () => {
  const withData = (data: Record<string, unknown>) =>
    rawRecord({ body: data, attributes: { ...makeAuditLogRecord().attributes } });

  it('keeps the payload’s own member order; the envelope stays canonical', () => {
    const e = encodeRecord(withData({ zeta: 1, alpha: { y: 2, b: [3, { d: 4, c: 5 }] } }));
    if (!e.ok) throw new Error(JSON.stringify(e.violations));
    const type = (JSON.parse(e.json) as { event_type: string }).event_type;
    expect(e.json).toContain(
      `"event_data":{"event_type":${JSON.stringify(type)},"zeta":1,"alpha":{"y":2,"b":[3,{"d":4,"c":5}]}}`,
    );
    const keys = Object.keys(JSON.parse(e.json) as object);
    expect(keys).toEqual([...keys].sort());
  });

  it('a getter that answers differently when read again cannot smuggle what the check refuses', () => {
    let nul = 0;
    const nulLater = withData({
      get note() {
        nul += 1;
        return nul === 1 ? 'fine' : 'not\u0000fine';
      },
    });
    expect(encodeRecord(nulLater)).toMatchObject({
      ok: false,
      violations: [expect.objectContaining({ field: 'event_data', reason: 'unstorable_string' })],
    });
    let big = 0;
    const bigLater = withData({
      get n() {
        big += 1;
        return big === 1 ? 1 : 10n;
      },
    });
    expect(encodeRecord(bigLater)).toMatchObject({
      ok: false,
      violations: [
        expect.objectContaining({
          field: 'event_data',
          reason: 'invalid_type',
          message: 'event_data.n is a BigInt, not a JSON value',
        }),
      ],
    });
    let cyc = 0;
    const cycleLater = withData({
      get loop() {
        cyc += 1;
        if (cyc === 1) return {};
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      },
    });
    expect(encodeRecord(cycleLater)).toMatchObject({
      ok: false,
      violations: [expect.objectContaining({ reason: 'event_data_too_deep' })],
    });
  });

  it('a toJSON member JSON.stringify would call is refused, as with the copy', () => {
    const own = encodeRecord(withData({ x: { toJSON: () => 'replaced' } }));
    expect(own).toMatchObject({
      ok: false,
      violations: [
        expect.objectContaining({
          field: 'event_data',
          reason: 'invalid_type',
          message: 'event_data.x.toJSON is a function, not a JSON value',
        }),
      ],
    });
  });

  it('an event_type getter of the payload’s own cannot make event_data disagree with the envelope', () => {
    let reads = 0;
    const e = encodeRecord(
      withData({
        a: 1,
        get event_type() {
          reads += 1;
          return reads === 1 ? 'gateway.signal.received' : 'something.else';
        },
      }),
    );
    if (!e.ok) throw new Error(JSON.stringify(e.violations));
    const request = JSON.parse(e.json) as { event_type: string; event_data: object };
    expect(request.event_data).toEqual({ a: 1, event_type: request.event_type });
  });

  it('an event_type of the payload’s own is replaced by the record’s, as with the copy', () => {
    const e = encodeRecord(withData({ event_type: 'something.else', a: 1 }));
    if (!e.ok) throw new Error(JSON.stringify(e.violations));
    const request = JSON.parse(e.json) as { event_type: string; event_data: object };
    expect(request.event_data).toEqual({ a: 1, event_type: request.event_type });
    expect(request.event_type).not.toBe('something.else');
  });
});

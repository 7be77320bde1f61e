// SPDX-License-Identifier: Apache-2.0
/*
 * Property-based: the standalone exporter's encoding gives exactly what the mapping gives (the
 * JSON text, its event_timestamp in ms, the invalid records and the omitted fields),
 * for valid records and for records with any field missing, empty, too long, of the wrong type,
 * unstorable, near a limit or exotic (BigInt, Date, bytes, NaN, deep nesting, a `__proto__` key,
 * the payload's own event_type), through the real SDK and as raw objects.
 */

import { canonicalize } from '@kubernaut/audit-provenance';
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
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
  ATTR_AUDIT_SENSITIVE,
  ATTR_AUDIT_SEVERITY,
} from '@kubernaut/audit-semantic-conventions';
import {
  MAX_EVENT_AGE_MS,
  MAX_EVENT_DATA_BYTES,
  parseDateTime,
} from '@kubernaut/datastorage-contract';
import {
  auditLogRecord,
  createCapturingLoggerProvider,
  eventTypes,
  realisticPayload,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import type { HrTime } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeRecords } from '../../src/exporter/encode.ts';
import { mapLogRecord } from '../../src/map/index.ts';

const NOW = Date.parse('2026-11-20T12:00:00Z');
const NOW_S = NOW / 1000;
const cap = createCapturingLoggerProvider();
afterAll(() => cap.provider.shutdown());
const RESOURCE = resourceFromAttributes(TEST_RESOURCE_ATTRIBUTES);

/** What the mapping makes of a record, in the encoder's terms. */
function viaMapping(record: ReadableLogRecord) {
  const r = mapLogRecord(record, { now: NOW });
  if (!r.ok) return { ok: false as const, violations: r.violations };
  return {
    ok: true as const,
    event: r.event,
    ms: parseDateTime(r.event.event_timestamp),
    omitted: r.omitted.map((o) => o.reason).sort(),
  };
}

function viaEncoder(record: ReadableLogRecord) {
  const e = encodeRecords([record], NOW, undefined);
  if (e.invalid.length > 0) return { ok: false as const, violations: e.invalid[0]!.violations };
  const omitted: string[] = [];
  for (const [reason, n] of e.omitted) for (let i = 0; i < n; i++) omitted.push(reason);
  const json = e.json[0] as string;
  // The envelope is canonical (members sorted, no whitespace); without provenance event_data
  // keeps its own member order, so only its value is compared.
  const parsed = JSON.parse(json) as Record<string, unknown>;
  const [before, after] = canonicalize({ ...parsed, event_data: 0 }).split('"event_data":0');
  expect(json.startsWith(`${before}"event_data":`)).toBe(true);
  expect(json.endsWith(after as string)).toBe(true);
  return {
    ok: true as const,
    event: JSON.parse(json),
    ms: e.eventTime[0],
    omitted: omitted.sort(),
  };
}

const str = (min: number, max: number) => fc.string({ minLength: min, maxLength: max });

/** Values an attribute may hold, valid or not. */
const anyAttr = fc.oneof(
  { weight: 40, arbitrary: str(1, 30) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom('a\u0000b', 'x\ud800', 'tab\there', 'back\\u0000slash') },
  { weight: 1, arbitrary: fc.integer({ min: 19, max: 300 }).map((n) => 'L'.repeat(n)) },
);

/** Payload values: JSON, and what JSON or DataStorage cannot carry as is. */
const exotic = fc.constantFrom<unknown>(
  10n,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -0,
  new Date(NOW),
  new Date(Number.NaN),
  new Uint8Array([1, 2, 3]),
  () => 1,
  Symbol('s'),
  undefined,
  'nul\u0000',
  'lone\udc00',
  'ctl\u0001',
  '\\u0000 literal',
  new Map([[1, 2]]),
);
const payloadValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: exotic },
  { weight: 1, arbitrary: fc.array(exotic, { maxLength: 3 }) },
);

function deep(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { d: v };
  return v;
}

const payload = fc
  .record({
    type: fc.constantFrom(...eventTypes().slice(0, 30)),
    extra: fc.option(payloadValue, { nil: undefined }),
    ownType: fc.oneof(
      { weight: 4, arbitrary: fc.constant('none') },
      { weight: 1, arbitrary: fc.constantFrom('first-same', 'first-other', 'later-same') },
    ),
    shape: fc.constantFrom(
      'plain',
      'deep9',
      'deep10',
      'deep11',
      'proto-key',
      'null-proto',
      'big',
      'huge',
    ),
  })
  .map(({ type, extra, ownType, shape }) => {
    let data: Record<string, unknown> = realisticPayload(type.eventType);
    if (ownType === 'first-same') data = { event_type: type.eventType, ...data };
    if (ownType === 'first-other') data = { event_type: 'other.type', ...data };
    if (ownType === 'later-same') data = { ...data, event_type: type.eventType };
    if (extra !== undefined || shape === 'plain') data.x = extra;
    if (shape === 'deep9') data.x = deep(8);
    if (shape === 'deep10') data.x = deep(9);
    if (shape === 'deep11') data.x = deep(10);
    if (shape === 'proto-key')
      Object.defineProperty(data, '__proto__', { value: 1, enumerable: true });
    if (shape === 'null-proto') data = Object.assign(Object.create(null), data);
    if (shape === 'big') data.x = 'b'.repeat(MAX_EVENT_DATA_BYTES - 2000);
    if (shape === 'huge') data.x = 'é'.repeat(MAX_EVENT_DATA_BYTES / 2);
    return { type, data };
  });

const time = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .integer({ min: -(MAX_EVENT_AGE_MS / 1000) - 5, max: 3700 })
      .map((s): HrTime => [NOW_S + s, 0]),
  },
  { weight: 1, arbitrary: fc.constant<HrTime>([NOW_S - MAX_EVENT_AGE_MS / 1000, 999_999_999]) },
  { weight: 1, arbitrary: fc.constant<HrTime>([0, 0]) },
  { weight: 1, arbitrary: fc.constant<HrTime>([NOW_S, 1_500_000_000]) },
);

const record = fc.record({
  payload,
  time,
  observed: fc.constantFrom<HrTime>([NOW_S - 5, 7000]),
  eventTypeAs: fc.oneof(
    { weight: 5, arbitrary: fc.constant('eventName') },
    { weight: 1, arbitrary: fc.constantFrom('attribute', 'both-bad') },
  ),
  dataAs: fc.oneof(
    { weight: 5, arbitrary: fc.constant('body') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('attribute-map', 'attribute-json', 'body-string', 'none'),
    },
  ),
  attrs: fc.record(
    {
      [ATTR_AUDIT_EVENT_ACTION]: anyAttr,
      [ATTR_AUDIT_EVENT_OUTCOME]: fc.oneof(
        fc.constantFrom('success', 'failure', 'pending'),
        anyAttr,
      ),
      [ATTR_AUDIT_EVENT_CATEGORY]: fc.oneof(fc.constantFrom('gateway', 'workflow'), anyAttr),
      [ATTR_AUDIT_CORRELATION_ID]: anyAttr,
      [ATTR_AUDIT_ACTOR_TYPE]: anyAttr,
      [ATTR_AUDIT_ACTOR_ID]: anyAttr,
      [ATTR_AUDIT_RESOURCE_TYPE]: anyAttr,
      [ATTR_AUDIT_RESOURCE_ID]: anyAttr,
      [ATTR_AUDIT_SEVERITY]: anyAttr,
      [ATTR_AUDIT_SENSITIVE]: fc.oneof(fc.boolean(), anyAttr),
      [ATTR_AUDIT_DURATION_MS]: fc.integer({ min: -1, max: 10 }),
      'client.address': fc.constantFrom('10.0.0.1', 'fe80::1%eth0', 'host'),
    },
    { requiredKeys: [] },
  ),
  mutate: fc.boolean(),
  common: fc.record(
    {
      'k8s.namespace.name': anyAttr,
      'k8s.cluster.uid': anyAttr,
      'error.type': anyAttr,
      'exception.message': anyAttr,
    },
    { requiredKeys: [] },
  ),
});

type Gen = typeof record extends fc.Arbitrary<infer T> ? T : never;

function build(g: Gen) {
  const { payload: p } = g;
  const attributes: Record<string, unknown> = {
    [ATTR_AUDIT_EVENT_CATEGORY]: p.type.category,
    [ATTR_AUDIT_EVENT_ACTION]: 'act',
    [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
    [ATTR_AUDIT_CORRELATION_ID]: 'corr-1',
    ...g.common,
    ...(g.mutate ? g.attrs : {}),
  };
  let eventName: unknown = p.type.eventType;
  if (g.eventTypeAs === 'attribute') {
    eventName = undefined;
    attributes[ATTR_AUDIT_EVENT_TYPE] = p.type.eventType;
  } else if (g.eventTypeAs === 'both-bad') {
    eventName = 42;
  }
  let body: unknown = p.data;
  if (g.dataAs === 'attribute-map') {
    attributes[ATTR_AUDIT_EVENT_DATA] = p.data;
    body = undefined;
  } else if (g.dataAs === 'attribute-json') {
    try {
      attributes[ATTR_AUDIT_EVENT_DATA] = JSON.stringify(p.data);
    } catch {
      attributes[ATTR_AUDIT_EVENT_DATA] = '{';
    }
    body = 'a message';
  } else if (g.dataAs === 'body-string') {
    attributes[ATTR_AUDIT_EVENT_DATA] = p.data;
    body = 'a message';
  } else if (g.dataAs === 'none') {
    body = undefined;
  }
  return { eventName, attributes, body };
}

describe('property: the standalone encoding equals the mapping', () => {
  it('raw records: the same JSON text, invalid records, omitted fields and timestamp', () => {
    let valid = 0;
    fc.assert(
      fc.property(record, (g) => {
        const { eventName, attributes, body } = build(g);
        const raw = {
          eventName,
          hrTime: g.time,
          hrTimeObserved: g.observed,
          attributes,
          body,
          resource: RESOURCE,
        } as unknown as ReadableLogRecord;
        const expected = viaMapping(raw);
        const got = viaEncoder(raw);
        expect(got).toEqual(expected);
        if (expected.ok) valid++;
      }),
      { numRuns: 600 },
    );
    // Valid records were exercised, not only invalid ones.
    expect(valid).toBeGreaterThan(30);
  });

  it('records through the real SDK (valid ones, every payload shape)', () => {
    let sdkValid = 0;
    fc.assert(
      fc.property(payload, time, fc.constantFrom('body', 'attribute-map'), (p, t, dataAs) => {
        cap.logger.emit(
          auditLogRecord({
            eventType: p.type.eventType,
            timestamp: t,
            dataAs,
            data: p.data as never,
            attributes: { [ATTR_AUDIT_RESOURCE_ID]: 'r-1', [ATTR_AUDIT_SEVERITY]: 'info' },
          }),
        );
        const r = cap.records.pop() as ReadableLogRecord;
        const expected = viaMapping(r);
        expect(viaEncoder(r)).toEqual(expected);
        if (expected.ok) sdkValid++;
      }),
      { numRuns: 300 },
    );
    expect(sdkValid).toBeGreaterThan(50);
  });
});

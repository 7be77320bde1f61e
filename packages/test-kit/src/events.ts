// SPDX-License-Identifier: Apache-2.0
/*
 * AuditEventRequests for tests, valid against the upstream spec (real event types and
 * payloads), and the form in which a DataStorage returns them.
 */
import { randomUUID } from 'node:crypto';
import { canonicalTimestamp } from '@kubernaut/audit-provenance';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { realisticPayload, sampleEventTypes } from './payloads.ts';

/** A stored event as the query API returns it. */
export interface StoredEvent extends Record<string, unknown> {
  event_id: string;
  event_timestamp: string;
  event_type: string;
  correlation_id: string;
  event_data: Record<string, unknown>;
}

/** RFC 3339-shaped texts that name no real date and time: DataStorage cannot store them. */
export const IMPOSSIBLE_DATE_TIMES: readonly string[] = [
  '2026-02-31T00:00:00Z',
  '2026-04-31T12:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-11-22T24:00:00Z',
  '2026-11-22T10:60:00Z',
  '2026-11-22T23:59:60Z',
  '2026-11-22T10:00:00+24:00',
];

let seq = 0;

/** The required fields of an event of `eventType` (category gateway, now, a unique correlation). */
export function eventEnvelope(
  eventType: string,
  action: string,
  eventData: AuditEventRequest['event_data'],
): AuditEventRequest {
  return {
    version: '1.0',
    event_type: eventType,
    event_timestamp: new Date().toISOString(),
    event_category: 'gateway',
    event_action: action,
    event_outcome: 'success',
    correlation_id: `corr-${process.pid}-${++seq}-${randomUUID().slice(0, 8)}`,
    event_data: eventData,
  };
}

/** A valid AuditEventRequest (`gateway.signal.received`) with a unique correlation id. */
export function auditEvent(overrides: Partial<AuditEventRequest> = {}): AuditEventRequest {
  const eventType = overrides.event_type ?? 'gateway.signal.received';
  return {
    ...eventEnvelope(eventType, 'received', overrides.event_data ?? realisticPayload(eventType)),
    actor_type: 'service',
    actor_id: 'payments-gateway',
    ...overrides,
  };
}

/** `count` valid AuditEventRequests, each with its own correlation id. */
export function auditEvents(count: number): AuditEventRequest[] {
  return Array.from({ length: count }, () => auditEvent());
}

/** A valid AuditEventRequest numbered `i` (one of three correlations, µs timestamps). */
export function sampleEvent(
  i: number,
  overrides: Partial<AuditEventRequest> = {},
): AuditEventRequest {
  const info = sampleEventTypes()[0];
  if (info === undefined) throw new Error('no event types in the spec');
  const ts = new Date(Date.now() - 60_000 + i)
    .toISOString()
    .replace('Z', `${String(i % 1000).padStart(3, '0')}Z`);
  return {
    version: '1.0',
    event_type: info.eventType,
    event_timestamp: ts,
    event_category: info.category,
    event_action: 'act',
    event_outcome: 'success',
    correlation_id: `corr-${i % 3}`,
    actor_type: 'service',
    actor_id: 'checkout',
    event_data: realisticPayload(info.eventType, { n: i }),
    ...overrides,
  };
}

/** What a DataStorage returns for a stored event: server defaults, µs timestamp, ids. */
export function storedForm(event: AuditEventRequest, eventId = randomUUID()): StoredEvent {
  return {
    event_id: eventId,
    event_date: event.event_timestamp.slice(0, 10),
    event_hash: 'x',
    previous_event_hash: '',
    ...event,
    event_timestamp: canonicalTimestamp(event.event_timestamp) ?? event.event_timestamp,
    actor_type: event.actor_type ?? 'service',
    actor_id: event.actor_id ?? `${event.event_category}-service`,
    resource_type: event.resource_type ?? event.event_category,
    resource_id: event.resource_id ?? event.correlation_id,
    retention_days: event.retention_days ?? 2555,
    is_sensitive: event.is_sensitive === true,
    namespace: event.namespace ?? null,
    severity: event.severity ?? null,
    // JSONB round trip: a fresh object with keys in another order.
    event_data: reorder(event.event_data) as Record<string, unknown>,
  };
}

/** A deep copy with every object's keys in reverse order. */
export function reorder(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reorder);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as object)
        .reverse()
        .map(([k, x]) => [k, reorder(x)]),
    );
  }
  return v;
}

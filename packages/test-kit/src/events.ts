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

let seq = 0;

/** A valid AuditEventRequest (`gateway.signal.received`) with a unique correlation id. */
export function auditEvent(overrides: Partial<AuditEventRequest> = {}): AuditEventRequest {
  const n = ++seq;
  const eventType = overrides.event_type ?? 'gateway.signal.received';
  return {
    version: '1.0',
    event_type: eventType,
    event_timestamp: new Date().toISOString(),
    event_category: 'gateway',
    event_action: 'received',
    event_outcome: 'success',
    correlation_id: `corr-${process.pid}-${n}`,
    actor_type: 'service',
    actor_id: 'payments-gateway',
    event_data: realisticPayload(eventType),
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

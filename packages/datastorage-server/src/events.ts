// SPDX-License-Identifier: Apache-2.0
/*
 * From a validated AuditEventRequest to the row the server stores (pure): server-assigned
 * event_id, canonical microsecond UTC timestamp, event_date, the upstream defaults for
 * NOT NULL columns, `duration_ms: 0` as NULL (as upstream), and event_data as canonical JSON
 * text. What PostgreSQL cannot store is
 * rejected before, by the contract's validation.
 */
import { randomUUID } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { canonicalize, canonicalTimestamp } from '@kubernaut/audit-provenance';
import {
  type AuditEventRequest,
  DEFAULT_ACTOR_TYPE,
  MAX_RETENTION_DAYS,
} from '@kubernaut/datastorage-contract';
import type { HashedEventFields } from './hash.ts';

/** An event ready to be chained and inserted (also the unit stored in the Redis DLQ). */
export interface PreparedEvent extends HashedEventFields {
  event_date: string;
  parent_event_date: string | null;
  /** event_data as canonical JSON text. */
  event_data: string;
}

const opt = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * The stored row of a request that passed validation. `event_id` is assigned here, so a row
 * keeps its identity through the DLQ (replays are deduplicated by it). `eventDataJson`: the
 * canonical JSON of its event_data when the caller already wrote it.
 */
export function prepareEvent(req: AuditEventRequest, eventDataJson?: string): PreparedEvent {
  const ts = canonicalTimestamp(req.event_timestamp);
  if (ts === undefined) throw new TypeError('event_timestamp is not RFC 3339');
  const eventData = eventDataJson ?? canonicalize(req.event_data);
  return {
    event_id: randomUUID(),
    version: req.version,
    event_timestamp: ts,
    event_date: ts.slice(0, 10),
    event_type: req.event_type,
    event_category: req.event_category,
    event_action: req.event_action,
    event_outcome: req.event_outcome,
    correlation_id: req.correlation_id,
    actor_type: req.actor_type ?? DEFAULT_ACTOR_TYPE,
    actor_id: req.actor_id ?? `${req.event_category}-service`,
    actor_ip: opt(req.actor_ip),
    resource_type: req.resource_type ?? req.event_category,
    resource_id: req.resource_id ?? req.correlation_id,
    parent_event_id: req.parent_event_id ? req.parent_event_id.toLowerCase() : null,
    parent_event_date: null,
    namespace: opt(req.namespace),
    cluster_id: opt(req.cluster_id),
    severity: opt(req.severity),
    // As upstream: a duration of 0 is stored as NULL (and read back without the member). The
    // chain hashes this row, so it verifies against what is read back.
    duration_ms:
      typeof req.duration_ms === 'number' && req.duration_ms !== 0 ? req.duration_ms : null,
    error_code: opt(req.error_code),
    error_message: opt(req.error_message),
    retention_days:
      typeof req.retention_days === 'number' ? req.retention_days : MAX_RETENTION_DAYS,
    is_sensitive: req.is_sensitive === true,
    event_data: eventData,
  };
}

/** True when an event's actor_ip needs the database's canonical text form before hashing. */
export function needsIpNormalisation(e: PreparedEvent): boolean {
  return e.actor_ip !== null && isIPv6(e.actor_ip);
}

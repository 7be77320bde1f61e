// SPDX-License-Identifier: Apache-2.0
/* Wire types of the DataStorage audit API (data-storage-v1.yaml, OpenAPI 3.0.3). */

import type { AuditEventCategory, AuditEventOutcome } from '@kubernaut/audit-semantic-conventions';

/** A JSON value as it travels in `event_data`. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** `AuditEventRequest`: one element of the bare array POSTed to `/api/v1/audit/events/batch`. */
export interface AuditEventRequest {
  version: string;
  event_type: string;
  event_timestamp: string;
  event_category: AuditEventCategory;
  event_action: string;
  event_outcome: AuditEventOutcome;
  correlation_id: string;
  event_data: JsonObject;
  actor_type?: string;
  actor_id?: string;
  actor_ip?: string;
  resource_type?: string;
  resource_id?: string;
  parent_event_id?: string | null;
  parent_event_date?: string | null;
  namespace?: string | null;
  cluster_id?: string | null;
  severity?: string | null;
  duration_ms?: number | null;
  error_code?: string | null;
  error_message?: string | null;
  retention_days?: number | null;
  is_sensitive?: boolean | null;
}

/** 201 answer of the batch endpoint: ids in input order. */
export interface BatchAuditEventResponse {
  event_ids: string[];
  message?: string;
}

/** 202 answer: the server queued the events to its own dead-letter queue (accepted). */
export interface AsyncAcceptanceResponse {
  status: string;
  message: string;
}

/** RFC 7807 problem details (`application/problem+json`). */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  field_errors?: Record<string, string>;
}

/** One stored event as returned by `GET /api/v1/audit/events`. */
export interface AuditEvent extends Omit<AuditEventRequest, 'version'> {
  event_id: string;
  version: string;
  event_date?: string;
  event_hash?: string;
  previous_event_hash?: string;
}

export interface AuditEventsQueryResponse {
  data: AuditEvent[];
  pagination: { limit: number; offset: number; total: number; has_more: boolean };
}

export interface VerifyChainResponse {
  correlation_id: string;
  is_valid: boolean;
  [key: string]: unknown;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Facts of the DataStorage contract (DESIGN §5). The spec states some limits; others
 * are column sizes of the `audit_events` table that the spec does not state but that
 * make the real server accept a request (202) and then fail forever in its DLQ, so
 * they must be enforced before sending.
 */

/** Paths of the audit API. */
export const AUDIT_EVENTS_PATH = '/api/v1/audit/events';
export const AUDIT_EVENTS_BATCH_PATH = '/api/v1/audit/events/batch';
export const VERIFY_CHAIN_PATH = '/api/v1/audit/verify-chain';
export const READYZ_PATH = '/readyz';

/** At most this many events in one batch request. */
export const MAX_BATCH_EVENTS = 500;
/** A batch request body must stay below this many bytes (413 otherwise). */
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;
/** `event_data` serialised as JSON may not exceed this many bytes. */
export const MAX_EVENT_DATA_BYTES = 256 * 1024;
/** `event_data` may not nest deeper than this many levels of objects/arrays. */
export const MAX_EVENT_DATA_DEPTH = 10;
/** Timestamps further than this in the future are rejected. */
export const MAX_FUTURE_SKEW_MS = 60 * 60 * 1000;
/** Timestamps older than this are rejected; such a record can never be accepted. */
export const MAX_EVENT_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** Range of `retention_days` accepted by the database. */
export const MIN_RETENTION_DAYS = 1;
export const MAX_RETENTION_DAYS = 2555;
/** `duration_ms` is an INTEGER column. */
export const MAX_DURATION_MS = 2_147_483_647;
/** The schema version the exporter writes. */
export const AUDIT_EVENT_VERSION = '1.0';

/**
 * Maximum length in characters of each string field: the stricter of the spec's
 * `maxLength` and the database column's VARCHAR size.
 */
export const FIELD_MAX_LENGTH = {
  version: 10, // spec 20, column VARCHAR(10)
  event_type: 100,
  event_category: 50,
  event_action: 50,
  correlation_id: 255,
  actor_type: 50, // column only
  actor_id: 255, // column only
  actor_ip: 45,
  resource_type: 100, // column only
  resource_id: 255, // column only
  namespace: 253, // column only
  cluster_id: 255, // column only
  severity: 20, // column only
  error_code: 50, // column only
} as const satisfies Record<string, number>;

export type LimitedField = keyof typeof FIELD_MAX_LENGTH;

/** Defaults the server applies to NOT NULL columns when the request leaves them out. */
export const DEFAULT_ACTOR_TYPE = 'service';

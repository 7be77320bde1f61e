// SPDX-License-Identifier: Apache-2.0
/*
 * Audit attribute keys, in the naming style of @opentelemetry/semantic-conventions.
 *
 * A log record is an audit record when it carries ATTR_AUDIT_EVENT_CATEGORY. The
 * event type is the record's standard `eventName`; ATTR_AUDIT_EVENT_TYPE exists for
 * logging bridges that cannot set `eventName`.
 *
 * Every constant here is described in ./registry.ts, from which the README's
 * reference table is generated (`npm run docs -w @kubernaut/audit-semantic-conventions`).
 */

/** Domain of the audit event; its presence marks a log record as an audit record. */
export const ATTR_AUDIT_EVENT_CATEGORY = 'audit.event.category' as const;
/** Event type for records whose producer cannot set the log record's `eventName`. */
export const ATTR_AUDIT_EVENT_TYPE = 'audit.event.type' as const;
/** Action performed, e.g. `received`, `created`. */
export const ATTR_AUDIT_EVENT_ACTION = 'audit.event.action' as const;
/** Result of the event: one of the AUDIT_EVENT_OUTCOME_VALUE_* values. */
export const ATTR_AUDIT_EVENT_OUTCOME = 'audit.event.outcome' as const;
/** Event payload when the log record's body is not a map: a map or a JSON string. */
export const ATTR_AUDIT_EVENT_DATA = 'audit.event.data' as const;
/** Identifier that ties together the events of one request or remediation. */
export const ATTR_AUDIT_CORRELATION_ID = 'audit.correlation.id' as const;
/** Kind of actor, e.g. `service` or `user`. */
export const ATTR_AUDIT_ACTOR_TYPE = 'audit.actor.type' as const;
/** Identity of the actor. */
export const ATTR_AUDIT_ACTOR_ID = 'audit.actor.id' as const;
/** Kind of resource acted on, e.g. `Signal`, `RemediationRequest`. */
export const ATTR_AUDIT_RESOURCE_TYPE = 'audit.resource.type' as const;
/** Identity of the resource acted on. */
export const ATTR_AUDIT_RESOURCE_ID = 'audit.resource.id' as const;
/** Id (uuid) of a parent event previously returned by DataStorage. */
export const ATTR_AUDIT_PARENT_EVENT_ID = 'audit.parent_event.id' as const;
/** Business severity of the event (not the log level). */
export const ATTR_AUDIT_SEVERITY = 'audit.severity' as const;
/** Duration of the audited operation in whole milliseconds. */
export const ATTR_AUDIT_DURATION_MS = 'audit.duration_ms' as const;
/** Retention override in days, 1 to 2555. */
export const ATTR_AUDIT_RETENTION_DAYS = 'audit.retention.days' as const;
/** Whether the event holds sensitive data. */
export const ATTR_AUDIT_SENSITIVE = 'audit.sensitive' as const;

/**
 * The record's stable identifier (OTEP 0267's audit data model). A caller's value is kept in the
 * provenance stamp as `record_id`; the processor can set `<producer_id>/<seq>` at emit.
 */
export const ATTR_AUDIT_RECORD_ID = 'audit.record.id' as const;
/** Monotonic sequence number of the record's stream (OTEP 0267): the provenance `seq`. */
export const ATTR_AUDIT_SEQUENCE_NUMBER = 'audit.sequence.number' as const;
/** Hash of the previous record of the stream (OTEP 0267): the provenance `prev_hash`. */
export const ATTR_AUDIT_PREV_HASH = 'audit.prev.hash' as const;

/**
 * Reserved key inside `event_data` under which the processor records provenance
 * (producer id, session id, sequence number, chained hash) for completeness checks.
 */
export const AUDIT_EVENT_DATA_PROVENANCE_KEY = 'audit_provenance' as const;

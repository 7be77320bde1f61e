// SPDX-License-Identifier: Apache-2.0
import * as A from './attributes.ts';
import * as V from './values.ts';

/** How an attribute's value is typed on the log record. */
export type AttributeValueType = 'string' | 'int' | 'boolean' | 'map or JSON string';

/** Whether DataStorage needs the attribute. */
export type Requirement = 'required' | 'recommended' | 'opt-in';

/** One attribute of the audit conventions, as documented in the reference table. */
export interface AuditAttributeDefinition {
  /** Name of the exported constant. */
  constant: string;
  /** Attribute key on the log record. */
  key: string;
  type: AttributeValueType;
  requirement: Requirement;
  /** DataStorage `AuditEventRequest` field the attribute maps to. */
  field: string;
  brief: string;
  /** Limits enforced client-side before the request is sent. */
  limits?: string;
  /** Name of the constant group of allowed values, if it is an enum. */
  values?: readonly string[];
}

/** An attribute defined by OpenTelemetry's own conventions that the mapping also reads. */
export interface BorrowedAttributeDefinition {
  key: string;
  field: string;
  brief: string;
  limits?: string;
}

/** Allowed values of `audit.event.category`, in the order of the DataStorage spec. */
export const AUDIT_EVENT_CATEGORY_VALUES = [
  V.AUDIT_EVENT_CATEGORY_VALUE_GATEWAY,
  V.AUDIT_EVENT_CATEGORY_VALUE_NOTIFICATION,
  V.AUDIT_EVENT_CATEGORY_VALUE_ANALYSIS,
  V.AUDIT_EVENT_CATEGORY_VALUE_AIAGENT,
  V.AUDIT_EVENT_CATEGORY_VALUE_SIGNALPROCESSING,
  V.AUDIT_EVENT_CATEGORY_VALUE_WORKFLOW,
  V.AUDIT_EVENT_CATEGORY_VALUE_WORKFLOWEXECUTION,
  V.AUDIT_EVENT_CATEGORY_VALUE_ORCHESTRATION,
  V.AUDIT_EVENT_CATEGORY_VALUE_APPROVAL,
  V.AUDIT_EVENT_CATEGORY_VALUE_EFFECTIVENESS,
  V.AUDIT_EVENT_CATEGORY_VALUE_ACTIONTYPE,
  V.AUDIT_EVENT_CATEGORY_VALUE_APIFRONTEND,
  V.AUDIT_EVENT_CATEGORY_VALUE_SECURITY,
  V.AUDIT_EVENT_CATEGORY_VALUE_AGENTSESSION,
] as const;
export type AuditEventCategory = (typeof AUDIT_EVENT_CATEGORY_VALUES)[number];

/** Allowed values of `audit.event.outcome`. */
export const AUDIT_EVENT_OUTCOME_VALUES = [
  V.AUDIT_EVENT_OUTCOME_VALUE_SUCCESS,
  V.AUDIT_EVENT_OUTCOME_VALUE_FAILURE,
  V.AUDIT_EVENT_OUTCOME_VALUE_PENDING,
] as const;
export type AuditEventOutcome = (typeof AUDIT_EVENT_OUTCOME_VALUES)[number];

/** The audit attributes: the single source of the README's reference table. */
export const AUDIT_ATTRIBUTES: readonly AuditAttributeDefinition[] = [
  {
    constant: 'ATTR_AUDIT_EVENT_CATEGORY',
    key: A.ATTR_AUDIT_EVENT_CATEGORY,
    type: 'string',
    requirement: 'required',
    field: 'event_category',
    brief: 'Domain of the event. Its presence marks a log record as an audit record.',
    values: AUDIT_EVENT_CATEGORY_VALUES,
  },
  {
    constant: 'ATTR_AUDIT_EVENT_TYPE',
    key: A.ATTR_AUDIT_EVENT_TYPE,
    type: 'string',
    requirement: 'opt-in',
    field: 'event_type',
    brief:
      'Event type, only for producers that cannot set the log record `eventName` (which wins).',
    limits: '≤ 100 chars; a type of the spec discriminator mapping',
  },
  {
    constant: 'ATTR_AUDIT_EVENT_ACTION',
    key: A.ATTR_AUDIT_EVENT_ACTION,
    type: 'string',
    requirement: 'required',
    field: 'event_action',
    brief: 'Action performed.',
    limits: '≤ 50 chars',
  },
  {
    constant: 'ATTR_AUDIT_EVENT_OUTCOME',
    key: A.ATTR_AUDIT_EVENT_OUTCOME,
    type: 'string',
    requirement: 'required',
    field: 'event_outcome',
    brief: 'Result of the event.',
    values: AUDIT_EVENT_OUTCOME_VALUES,
  },
  {
    constant: 'ATTR_AUDIT_CORRELATION_ID',
    key: A.ATTR_AUDIT_CORRELATION_ID,
    type: 'string',
    requirement: 'required',
    field: 'correlation_id',
    brief: 'Ties together the events of one request or remediation; DataStorage chains them.',
    limits: '1–255 chars',
  },
  {
    constant: 'ATTR_AUDIT_EVENT_DATA',
    key: A.ATTR_AUDIT_EVENT_DATA,
    type: 'map or JSON string',
    requirement: 'opt-in',
    field: 'event_data',
    brief: 'Payload when the log record body is not a map (the body wins when it is a map).',
    limits: '≤ 256 KiB as JSON, nesting ≤ 10',
  },
  {
    constant: 'ATTR_AUDIT_ACTOR_TYPE',
    key: A.ATTR_AUDIT_ACTOR_TYPE,
    type: 'string',
    requirement: 'recommended',
    field: 'actor_type',
    brief: 'Kind of actor; defaults to `service`.',
    limits: '≤ 50 chars',
  },
  {
    constant: 'ATTR_AUDIT_ACTOR_ID',
    key: A.ATTR_AUDIT_ACTOR_ID,
    type: 'string',
    requirement: 'recommended',
    field: 'actor_id',
    brief: 'Identity of the actor; defaults to the resource `service.name`.',
    limits: '≤ 255 chars',
  },
  {
    constant: 'ATTR_AUDIT_RESOURCE_TYPE',
    key: A.ATTR_AUDIT_RESOURCE_TYPE,
    type: 'string',
    requirement: 'recommended',
    field: 'resource_type',
    brief: 'Kind of resource acted on.',
    limits: '≤ 100 chars',
  },
  {
    constant: 'ATTR_AUDIT_RESOURCE_ID',
    key: A.ATTR_AUDIT_RESOURCE_ID,
    type: 'string',
    requirement: 'recommended',
    field: 'resource_id',
    brief: 'Identity of the resource acted on.',
    limits: '≤ 255 chars',
  },
  {
    constant: 'ATTR_AUDIT_PARENT_EVENT_ID',
    key: A.ATTR_AUDIT_PARENT_EVENT_ID,
    type: 'string',
    requirement: 'opt-in',
    field: 'parent_event_id',
    brief: 'Id of an existing event, as returned by DataStorage.',
    limits: 'uuid',
  },
  {
    constant: 'ATTR_AUDIT_SEVERITY',
    key: A.ATTR_AUDIT_SEVERITY,
    type: 'string',
    requirement: 'opt-in',
    field: 'severity',
    brief: 'Business severity of the event (not the log level).',
    limits: '≤ 20 chars',
  },
  {
    constant: 'ATTR_AUDIT_DURATION_MS',
    key: A.ATTR_AUDIT_DURATION_MS,
    type: 'int',
    requirement: 'opt-in',
    field: 'duration_ms',
    brief: 'Duration of the audited operation in milliseconds.',
    limits: 'integer, 32-bit',
  },
  {
    constant: 'ATTR_AUDIT_RETENTION_DAYS',
    key: A.ATTR_AUDIT_RETENTION_DAYS,
    type: 'int',
    requirement: 'opt-in',
    field: 'retention_days',
    brief: 'Retention override in days.',
    limits: '1–2555',
  },
  {
    constant: 'ATTR_AUDIT_SENSITIVE',
    key: A.ATTR_AUDIT_SENSITIVE,
    type: 'boolean',
    requirement: 'opt-in',
    field: 'is_sensitive',
    brief: 'Whether the event holds sensitive data.',
  },
  {
    constant: 'ATTR_AUDIT_RECORD_ID',
    key: A.ATTR_AUDIT_RECORD_ID,
    type: 'string',
    requirement: 'opt-in',
    field: 'event_data.audit_provenance.record_id',
    brief:
      "OTEP 0267 name. The caller's stable record id: kept in the provenance stamp (hashed). With `recordAttributes` the processor sets `<producer_id>/<seq>` at emit when absent.",
    limits: '≤ 255 chars',
  },
  {
    constant: 'ATTR_AUDIT_SEQUENCE_NUMBER',
    key: A.ATTR_AUDIT_SEQUENCE_NUMBER,
    type: 'int',
    requirement: 'opt-in',
    field: 'event_data.audit_provenance.seq',
    brief:
      'OTEP 0267 name of the provenance seq. Written, not read: with `recordAttributes` the processor sets it at emit when absent (an upstream value names its own stream and is left alone).',
  },
  {
    constant: 'ATTR_AUDIT_PREV_HASH',
    key: A.ATTR_AUDIT_PREV_HASH,
    type: 'string',
    requirement: 'opt-in',
    field: 'event_data.audit_provenance.prev_hash',
    brief:
      'OTEP 0267 name of the provenance prev_hash. Stored form only: the chain is built when records are written to the spool, after emit (see the README).',
  },
];

/** OpenTelemetry attributes (record first, else resource where noted) that the mapping reads. */
export const BORROWED_ATTRIBUTES: readonly BorrowedAttributeDefinition[] = [
  { key: 'client.address', field: 'actor_ip', brief: 'Client IP address.', limits: 'IPv4/IPv6' },
  {
    key: 'k8s.namespace.name',
    field: 'namespace',
    brief: 'Kubernetes namespace (record, else resource).',
    limits: '≤ 253 chars',
  },
  {
    key: 'k8s.cluster.uid',
    field: 'cluster_id',
    brief: 'Cluster identifier (record, else resource).',
    limits: '≤ 255 chars',
  },
  { key: 'error.type', field: 'error_code', brief: 'Error class.', limits: '≤ 50 chars' },
  { key: 'exception.message', field: 'error_message', brief: 'Error message.' },
  {
    key: 'service.name',
    field: 'actor_id',
    brief: 'Resource attribute; the default actor id.',
    limits: '≤ 255 chars',
  },
];

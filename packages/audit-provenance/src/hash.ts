// SPDX-License-Identifier: Apache-2.0
/*
 * The provenance hash of one audit event (DESIGN §11).
 *
 *   hash = lower-case hex SHA-256 of the UTF-8 bytes of canonicalize(hashView(event))
 *
 * where canonicalize is RFC 8785 (./canonical-json.ts) and hashView(event) is the JSON object
 *
 *   {
 *     version, event_type, event_timestamp*, event_category, event_action, event_outcome,
 *     correlation_id,
 *     actor_type     (absent → "service"),
 *     actor_id       (absent → "<event_category>-service"),
 *     resource_type  (absent → event_category),
 *     resource_id    (absent → correlation_id),
 *     retention_days (absent → 2555),
 *     is_sensitive   (true only when true),
 *     namespace, cluster_id, severity, duration_ms, error_code, error_message,
 *     parent_event_id (lower case)            — each only when present, non-null and not "",
 *     event_data     with event_data.audit_provenance = { producer_id, session_id, seq, prev_hash }
 *                    (the same object without its `hash` and `signature` members: the
 *                    signature of a chain head covers the hash, ./signature.ts)
 *   }
 *
 *   * event_timestamp is written in its canonical form (./timestamp.ts): UTC, exactly six
 *     fractional digits, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (DataStorage stores microseconds); a
 *     value that is not an RFC 3339 date-time is hashed as it is.
 *
 * The view is the event as DataStorage stores it, so that the hash of an event read back
 * through GET /api/v1/audit/events equals the hash computed when it was stamped: the absent
 * fields take DataStorage's documented defaults, and the fields the server rewrites into its
 * own text forms are left out (`actor_ip`: the database's inet text form; `parent_event_date`:
 * filled in by the server). Those two are still protected by DataStorage's own per-correlation
 * chain (verify-chain). Note: a DataStorage that attributes events to an authenticated human
 * user (not a service account) overwrites actor_type/actor_id; the verifier then reports
 * those events as altered, which is what they are.
 */
import { createHash } from 'node:crypto';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import { canonicalize } from './canonical-json.ts';
import { canonicalTimestamp } from './timestamp.ts';

// DataStorage's defaults for absent fields, as the stamp format fixes them: a hash computed
// today must verify forever, so they are part of the format, not read from the contract.
/** Retention when an event does not set one (days). */
const DEFAULT_RETENTION_DAYS = 2555;
const DEFAULT_ACTOR_TYPE = 'service';
const OPTIONAL_FIELDS = [
  'namespace',
  'cluster_id',
  'severity',
  'duration_ms',
  'error_code',
  'error_message',
] as const;

/** The provenance object under `event_data.audit_provenance`. */
export interface Provenance {
  /** Stable id of the producer (the spool's producer id). */
  producer_id: string;
  /** Id of the process start (session) that stamped the record. */
  session_id: string;
  /** Gap-free, monotonic sequence number per producer, from 1. */
  seq: number;
  /** `hash` of the producer's previous stamped record; null for its first record. */
  prev_hash: string | null;
  /** SHA-256 (hex) over the canonical form of the event without this member. */
  hash: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

/**
 * The object whose canonical JSON is hashed (see the module comment). Accepts an
 * AuditEventRequest or a stored event as returned by the query API (extra fields ignored).
 */
export function hashView(event: Record<string, unknown>): Record<string, unknown> {
  const category = event.event_category;
  const view: Record<string, unknown> = {
    version: event.version,
    event_type: event.event_type,
    event_timestamp:
      typeof event.event_timestamp === 'string'
        ? (canonicalTimestamp(event.event_timestamp) ?? event.event_timestamp)
        : event.event_timestamp,
    event_category: category,
    event_action: event.event_action,
    event_outcome: event.event_outcome,
    correlation_id: event.correlation_id,
    actor_type: present(event.actor_type) ? event.actor_type : DEFAULT_ACTOR_TYPE,
    actor_id: present(event.actor_id) ? event.actor_id : `${String(category)}-service`,
    resource_type: present(event.resource_type) ? event.resource_type : category,
    resource_id: present(event.resource_id) ? event.resource_id : event.correlation_id,
    retention_days: present(event.retention_days) ? event.retention_days : DEFAULT_RETENTION_DAYS,
    is_sensitive: event.is_sensitive === true,
  };
  for (const f of OPTIONAL_FIELDS) if (present(event[f])) view[f] = event[f];
  if (typeof event.parent_event_id === 'string' && event.parent_event_id !== '') {
    view.parent_event_id = event.parent_event_id.toLowerCase();
  }
  const data = isObject(event.event_data) ? event.event_data : {};
  const prov = data[AUDIT_EVENT_DATA_PROVENANCE_KEY];
  if (isObject(prov)) {
    const { hash: _hash, signature: _signature, ...rest } = prov;
    view.event_data = { ...data, [AUDIT_EVENT_DATA_PROVENANCE_KEY]: rest };
  } else {
    view.event_data = data;
  }
  return view;
}

/** SHA-256 hex of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The provenance hash of an event (stamped or read back): SHA-256 hex of the RFC 8785
 * form of {@link hashView}. Throws TypeError when the event holds non-JSON values.
 */
export function computeProvenanceHash(event: Record<string, unknown>): string {
  return sha256Hex(canonicalize(hashView(event)));
}

/** The provenance object of an event, when it has a well-formed one. */
export function readProvenance(event: unknown): Provenance | undefined {
  if (!isObject(event) || !isObject(event.event_data)) return undefined;
  return asProvenance(event.event_data[AUDIT_EVENT_DATA_PROVENANCE_KEY]);
}

/**
 * Checks the shape of a provenance object. `hash` and `prev_hash` may be absent (a dead letter's
 * stamp of a reserved seq has neither; read as '' and null), and so may `session_id` (read as
 * ''); a member that is there with the wrong type (`prev_hash: 5`, `session_id: null`) makes the
 * stamp malformed, never read as absent: a verifier decoding into typed fields would refuse it.
 */
export function asProvenance(p: unknown): Provenance | undefined {
  if (!isObject(p)) return undefined;
  if (typeof p.producer_id !== 'string' || p.producer_id === '') return undefined;
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 1) return undefined;
  const { session_id = '', prev_hash = null, hash = '' } = p;
  if (typeof session_id !== 'string' || typeof hash !== 'string') return undefined;
  if (prev_hash !== null && typeof prev_hash !== 'string') return undefined;
  return { producer_id: p.producer_id, session_id, seq: p.seq, prev_hash, hash };
}

/*
 * From a validated AuditEventRequest to the row the server stores (pure): server-assigned
 * event_id, canonical microsecond UTC timestamp, event_date, the upstream defaults for
 * NOT NULL columns, and event_data as canonical JSON text.
 */
import { randomUUID } from 'node:crypto';
import { isIPv6 } from 'node:net';
import {
  type AuditEventRequest,
  DEFAULT_ACTOR_TYPE,
  MAX_RETENTION_DAYS,
} from '@kubernaut/exporter-kubernaut-audit/contract';
import { canonicalJsonChecked, type HashedEventFields, UnstorableStringError } from './hash.ts';

/** An event ready to be chained and inserted (also the unit stored in the Redis DLQ). */
export interface PreparedEvent extends HashedEventFields {
  event_date: string;
  parent_event_date: string | null;
  /** event_data as canonical JSON text. */
  event_data: string;
}

const TS_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const ISO_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True for a real calendar date and a time of day (no 24:00, no leap second, no Feb 31). */
export function validCivilTime(y: number, mo: number, d: number, h = 0, mi = 0, s = 0): boolean {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return false;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= (mo === 2 && leap ? 29 : MONTH_DAYS[mo - 1]!);
}

/** The two-digit number at `i` of a string known to hold digits there. */
const d2 = (t: string, i: number) => (t.charCodeAt(i) - 48) * 10 + t.charCodeAt(i + 1) - 48;

/**
 * An RFC 3339 date-time as the canonical `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds,
 * digits beyond the microsecond truncated). Undefined when the text is not RFC 3339.
 */
export function canonicalTimestamp(text: string): string | undefined {
  // Fast path: the `Date#toISOString` form most clients send (UTC, milliseconds).
  if (text.length === 24 && ISO_MS_RE.test(text)) {
    const y = d2(text, 0) * 100 + d2(text, 2);
    return validCivilTime(y, d2(text, 5), d2(text, 8), d2(text, 11), d2(text, 14), d2(text, 17))
      ? `${text.slice(0, 23)}000Z`
      : undefined;
  }
  const m = TS_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se, frac = '', z, sign, oh, om] = m;
  if (!validCivilTime(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(se))) {
    return undefined;
  }
  if (!z && (Number(oh) > 23 || Number(om) > 59)) return undefined;
  const micros = Number(frac.slice(0, 6).padEnd(6, '0'));
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  if (Number.isNaN(ms)) return undefined;
  if (!z) {
    const offset = (Number(oh) * 60 + Number(om)) * 60_000;
    ms += sign === '-' ? offset : -offset;
  }
  const t = new Date(ms);
  if (Number.isNaN(t.getTime())) return undefined;
  return (
    `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}` +
    `T${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}` +
    `.${pad(micros, 6)}Z`
  );
}

/** True when a string can be stored in PostgreSQL text as is (no NUL, no lone surrogate). */
export function isStorableString(s: string): boolean {
  // Fast path: most strings hold neither NUL nor any surrogate.
  if (!SUSPECT_RE.test(s)) return true;
  return (s as unknown as WellFormed).isWellFormed() && !s.includes('\u0000');
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what is looked for.
const SUSPECT_RE = /[\u0000\ud800-\udfff]/;
// String.prototype.isWellFormed (ES2024; Node >= 20) is not in the es2023 lib typings.
type WellFormed = { isWellFormed(): boolean };

// Every string field of AuditEventRequest except event_data (checked while canonicalised).
const TEXT_FIELDS = [
  'version',
  'event_type',
  'event_timestamp',
  'event_category',
  'event_action',
  'event_outcome',
  'correlation_id',
  'actor_type',
  'actor_id',
  'actor_ip',
  'resource_type',
  'resource_id',
  'parent_event_id',
  'parent_event_date',
  'namespace',
  'cluster_id',
  'severity',
  'error_code',
  'error_message',
] as const;

/**
 * Server-side checks of the top-level fields beyond the shared contract: strings PostgreSQL
 * cannot store as given (NUL characters, unpaired surrogates) and scoped IPv6 addresses
 * (`fe80::1%eth0`), which the `inet` column rejects. Returns a message, or undefined when the
 * fields are storable. (event_data is checked by prepareEvent while it is canonicalised.)
 */
export function storageProblem(
  event: Record<string, unknown>,
  /** canonicalTimestamp(event.event_timestamp), when the caller has it already. */
  timestamp?: string,
): string | undefined {
  for (const k of TEXT_FIELDS) {
    const v = event[k];
    if (typeof v === 'string' && !isStorableString(v)) {
      return `${k} contains a NUL character or an unpaired surrogate`;
    }
  }
  const ts = event.event_timestamp;
  if (typeof ts === 'string' && (timestamp ?? canonicalTimestamp(ts)) === undefined) {
    return 'event_timestamp is not a valid calendar date and time';
  }
  const ip = event.actor_ip;
  if (typeof ip === 'string' && ip.includes('%')) {
    return 'actor_ip must not carry a zone index';
  }
  return undefined;
}

const opt = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** event_data holds a string PostgreSQL cannot store as given. */
export class UnstorableEventDataError extends Error {
  constructor() {
    super('event_data contains a NUL character or an unpaired surrogate');
    this.name = 'UnstorableEventDataError';
  }
}

/**
 * The stored row of a request that passed validation. `event_id` is assigned here, so a row
 * keeps its identity through the DLQ (replays are deduplicated by it). Throws
 * UnstorableEventDataError when event_data holds a string PostgreSQL cannot store.
 */
export function prepareEvent(
  req: AuditEventRequest,
  /** canonicalTimestamp(req.event_timestamp), when the caller has it already. */
  timestamp?: string,
): PreparedEvent {
  const ts = timestamp ?? canonicalTimestamp(req.event_timestamp);
  if (ts === undefined) throw new TypeError('event_timestamp is not RFC 3339');
  let eventData: string;
  try {
    eventData = canonicalJsonChecked(req.event_data);
  } catch (err) {
    if (err instanceof UnstorableStringError) throw new UnstorableEventDataError();
    throw err;
  }
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
    duration_ms: typeof req.duration_ms === 'number' ? req.duration_ms : null,
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

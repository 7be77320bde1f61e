/* Parsing of the GET /api/v1/audit/events query string (pure). */
import { isStorableString, validCivilTime } from './events.ts';

/** Filters and page of an audit event query. */
export interface AuditEventsQuery {
  eventType?: string;
  eventCategory?: string;
  eventOutcome?: string;
  severity?: string;
  correlationId?: string;
  detailKey?: string;
  detailValue?: string;
  /** Inclusive lower bound, as a timestamptz literal (RFC 3339, full precision kept). */
  since?: string;
  /** Inclusive upper bound, as a timestamptz literal (RFC 3339, full precision kept). */
  until?: string;
  limit: number;
  offset: number;
}

export const DEFAULT_QUERY_LIMIT = 50;
export const MAX_QUERY_LIMIT = 1000;

const OUTCOMES = new Set(['success', 'failure', 'pending']);
const DETAIL_KEY_RE = /^[a-zA-Z0-9_]+$/;
const INT_RE = /^\d{1,9}$/;
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+$/;
const DURATION_PART_RE = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g;
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const LOCAL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the range of time parameters. */
const MIN_TIME_MS = Date.parse('0001-01-01T00:00:00Z');
const MAX_TIME_MS = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * A time parameter: a relative duration before `now` (`24h`, `30m`, `1h30m`, `7d`), an
 * RFC 3339 date-time, a date-time without offset (UTC) or a date (UTC midnight).
 */
export function parseTimeParam(text: string, now: number): string | undefined {
  if (DURATION_RE.test(text)) {
    let ms = 0;
    for (const m of text.matchAll(DURATION_PART_RE)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    const t = now - ms;
    // Years 1..9999 only: PostgreSQL has no year 0 and the text form of other years differs.
    return Number.isFinite(t) && t >= MIN_TIME_MS && t <= MAX_TIME_MS
      ? new Date(t).toISOString()
      : undefined;
  }
  let literal: string | undefined;
  if (RFC3339_RE.test(text)) literal = text;
  else if (LOCAL_RE.test(text)) literal = `${text}Z`;
  else if (DATE_RE.test(text)) literal = `${text}T00:00:00Z`;
  // Date.parse rejects impossible dates (month 13, hour 99); the text itself goes to the
  // database so that sub-millisecond precision is kept.
  if (literal === undefined || Number.isNaN(Date.parse(literal))) return undefined;
  const [y, mo, d, h, mi, s] = literal.split(/[-T:tZz+.]/).map(Number) as number[];
  if (!validCivilTime(y!, mo!, d!, h, mi, s) || y! < 1) return undefined;
  // The instant, offset applied, must stay within years 1..9999 too.
  const t = Date.parse(literal);
  return t >= MIN_TIME_MS && t <= MAX_TIME_MS ? literal : undefined;
}

/** Result of parsing: the query, or the problem detail of a 400. */
export type ParsedQuery = { ok: true; query: AuditEventsQuery } | { ok: false; detail: string };

/** Parses and validates the query parameters; unknown parameters are ignored. */
export function parseAuditEventsQuery(params: URLSearchParams, now = Date.now()): ParsedQuery {
  const query: AuditEventsQuery = { limit: DEFAULT_QUERY_LIMIT, offset: 0 };
  // PostgreSQL text cannot hold NUL (nor unpaired surrogates): a clear 400, not a 500.
  for (const [name, value] of params) {
    if (!isStorableString(value)) {
      return { ok: false, detail: `${name} contains a NUL character or an unpaired surrogate` };
    }
  }
  const str = (name: string): string | undefined => {
    const v = params.get(name);
    return v === null || v === '' ? undefined : v;
  };
  query.eventType = str('event_type');
  query.eventCategory = str('event_category');
  query.severity = str('severity');
  query.correlationId = str('correlation_id');
  const outcome = str('event_outcome');
  if (outcome !== undefined && !OUTCOMES.has(outcome)) {
    return { ok: false, detail: 'event_outcome must be one of success, failure, pending' };
  }
  query.eventOutcome = outcome;

  const detailKey = str('detail_key');
  const detailValue = str('detail_value');
  if ((detailKey === undefined) !== (detailValue === undefined)) {
    return { ok: false, detail: 'detail_key and detail_value must both be given or both omitted' };
  }
  if (detailKey !== undefined && !DETAIL_KEY_RE.test(detailKey)) {
    return { ok: false, detail: 'detail_key must match ^[a-zA-Z0-9_]+$' };
  }
  query.detailKey = detailKey;
  query.detailValue = detailValue;

  for (const name of ['since', 'until'] as const) {
    const v = str(name);
    if (v === undefined) continue;
    const t = parseTimeParam(v, now);
    if (t === undefined) {
      return {
        ok: false,
        detail: `${name} must be a relative duration (24h, 30m, 7d) or an RFC 3339 timestamp`,
      };
    }
    query[name] = t;
  }

  const limit = params.get('limit');
  if (limit !== null) {
    const n = INT_RE.test(limit) ? Number(limit) : Number.NaN;
    if (!(n >= 1 && n <= MAX_QUERY_LIMIT)) {
      return { ok: false, detail: `limit must be an integer between 1 and ${MAX_QUERY_LIMIT}` };
    }
    query.limit = n;
  }
  const offset = params.get('offset');
  if (offset !== null) {
    if (!INT_RE.test(offset)) {
      return { ok: false, detail: 'offset must be a non-negative integer' };
    }
    query.offset = Number(offset);
  }
  return { ok: true, query };
}

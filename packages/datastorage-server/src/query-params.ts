// SPDX-License-Identifier: Apache-2.0
/* Parsing of the GET /api/v1/audit/events query string (pure). */
import { isStorableString, parseDateTime } from '@kubernaut/datastorage-contract';
import { parseDuration } from '@kubernaut/datastorage-contract/config';

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
const LOCAL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the range of time parameters. */
const MIN_TIME_MS = Date.parse('0001-01-01T00:00:00Z');
const MAX_TIME_MS = Date.parse('9999-12-31T23:59:59.999Z');
const inTimeRange = (t: number) => Number.isFinite(t) && t >= MIN_TIME_MS && t <= MAX_TIME_MS;

/**
 * A time parameter: a relative duration before `now` (`24h`, `30m`, `1h30m`, `7d`), an
 * RFC 3339 date-time, a date-time without offset (UTC) or a date (UTC midnight).
 */
export function parseTimeParam(text: string, now: number): string | undefined {
  const ago = parseDuration(text);
  if (ago !== undefined) {
    const t = now - ago;
    // Years 1..9999 only: PostgreSQL has no year 0 and the text form of other years differs.
    return inTimeRange(t) ? new Date(t).toISOString() : undefined;
  }
  let literal = text;
  if (LOCAL_RE.test(text)) literal = `${text}Z`;
  else if (DATE_RE.test(text)) literal = `${text}T00:00:00Z`;
  // The text itself goes to the database so that sub-millisecond precision is kept. A real
  // date and time (no month 13, no Feb 31) of a year from 1, naming an instant (offset applied)
  // within years 1..9999 too.
  const t = parseDateTime(literal);
  return t !== undefined && Number(literal.slice(0, 4)) >= 1 && inTimeRange(t)
    ? literal
    : undefined;
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
  // Given empty, it is not one of the enum's values either.
  const outcome = params.get('event_outcome') ?? undefined;
  if (outcome !== undefined && !OUTCOMES.has(outcome)) {
    return { ok: false, detail: 'event_outcome must be one of success, failure, pending' };
  }
  query.eventOutcome = outcome;

  if (params.get('detail_key') === '') {
    return { ok: false, detail: 'detail_key must match ^[a-zA-Z0-9_]+$' };
  }
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

// SPDX-License-Identifier: Apache-2.0
/*
 * What one answer means (DESIGN §6, issue 11 behaviours 3 and 5). Pure: a transport result in,
 * an action out. What the engine then does with a run of answers (bisection, poison, storms)
 * is deliverer.ts's business.
 *
 * Invariant: only DataStorage's own answers settle or drop events. Accepted is a 201 whose
 * body has `event_ids` for exactly the events sent, or a 202 whose body is DataStorage's
 * AsyncAcceptanceResponse (`status: "accepted"`). A 400 names a bad event (or asks for a
 * bisection) only when it is DataStorage's problem+json. Anything else (an HTML page, a 200 of
 * a proxy, a 400 of an ingress or a WAF) is retried and reported as `unexpected`.
 *
 * | answer                                          | action                                 |
 * |-------------------------------------------------|----------------------------------------|
 * | 201 + event_ids (one distinct string per event),| accepted                               |
 * | 202 + status accepted                           |                                        |
 * | other 2xx (200 page, 204, 201/202 other body)   | retry, unexpected (misconfiguration)   |
 * | 1xx as the answer (101 Switching Protocols)     | retry, unexpected                      |
 * | 3xx (never followed: the token stays with url)  | retry, unexpected, names the Location  |
 * | 400 DataStorage problem, `event at index N`     | reject-index N                         |
 * | 400 DataStorage problem, no usable index        | bisect                                 |
 * | 413, 400 `batch-size-exceeded`                  | split                                  |
 * | 400 not DataStorage's                           | retry, unexpected                      |
 * | 429, 503                                        | retry after Retry-After, else backoff  |
 * | 401, 403                                        | retry, re-read the token file          |
 * | other 5xx                                       | retry (server error: poison candidate) |
 * | other 4xx, timeouts, network errors             | retry                                  |
 */

import {
  eventIndexFromProblem,
  isBatchSizeExceeded,
  PROBLEM_CONTENT_TYPE,
  PROBLEM_TYPE_BASE,
} from '@kubernaut/datastorage-contract';
import { parseRetryAfter } from './backoff.ts';
import { allDistinct } from './distinct.ts';
import { MAX_RESPONSE_CHARS, type TransportResult } from './http-transport.ts';

export type Action =
  | { kind: 'accepted'; status: number }
  | { kind: 'reject-index'; status: number; index: number; detail: string }
  | { kind: 'bisect'; status: number; detail: string }
  | { kind: 'split'; status: number; detail: string }
  | {
      kind: 'retry';
      /** Metric reason: the status code, `timeout` or `network`. */
      reason: string;
      status?: number;
      /** Server-requested wait (Retry-After), in ms. */
      retryAfterMillis?: number;
      /** 401/403: refresh credentials before the next attempt. */
      auth?: boolean;
      /** The request had been sent: the server may have committed it. */
      ambiguous?: boolean;
      /** Not DataStorage's answer (a 2xx without its body, a 400 that is not its problem). */
      unexpected?: boolean;
      /** A 5xx answer: with other events accepted meanwhile, a sign of a poisoned event. */
      serverError?: boolean;
      /** Short description for diagnostics (never credentials). */
      detail: string;
    }
  | { kind: 'aborted'; ambiguous: boolean };

/** A short, credential-free description of a problem body. */
export function problemDetail(body: unknown, status: number): string {
  if (body !== null && typeof body === 'object') {
    const { detail, title } = body as { detail?: unknown; title?: unknown };
    if (typeof detail === 'string' && detail) return detail.slice(0, 1000);
    if (typeof title === 'string' && title) return title.slice(0, 1000);
  }
  if (typeof body === 'string' && body) return body.slice(0, 200);
  return `HTTP ${status}`;
}

function mediaType(headers: Record<string, unknown>): string {
  const v = headers['content-type'];
  const text = Array.isArray(v) ? String(v[0] ?? '') : typeof v === 'string' ? v : '';
  return (text.split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * True when an answer is DataStorage's RFC 7807 problem: `application/problem+json` with a
 * `type` under DataStorage's problem base URI and a `title`.
 */
export function isDataStorageProblem(result: TransportResult): boolean {
  if (result.kind !== 'response') return false;
  if (mediaType(result.headers) !== PROBLEM_CONTENT_TYPE) return false;
  const body = result.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return false;
  const { type, title } = body as { type?: unknown; title?: unknown };
  return (
    typeof type === 'string' && type.startsWith(PROBLEM_TYPE_BASE) && typeof title === 'string'
  );
}

/** True for DataStorage's 201 body for `count` events: one distinct id (a string) per event. */
function isCreated(body: unknown, count: number): boolean {
  if (body === null || typeof body !== 'object') return false;
  const ids = (body as { event_ids?: unknown }).event_ids;
  if (!Array.isArray(ids) || ids.length !== count) return false;
  for (const id of ids) if (typeof id !== 'string' || id === '') return false;
  return allDistinct(ids as string[]);
}

/** True for DataStorage's 202 AsyncAcceptanceResponse. */
function isAsyncAccepted(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  return (body as { status?: unknown }).status === 'accepted';
}

/** A description of a body that is not DataStorage's (the start of an HTML page, say). */
function foreignDetail(status: number, body: unknown, truncated = false): string {
  if (body === undefined) return `HTTP ${status} with an empty body`;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const start = text.replace(/\s+/g, ' ').slice(0, 120);
  return truncated
    ? `HTTP ${status} with a body over ${MAX_RESPONSE_CHARS / (1024 * 1024)} MiB (not read as an answer), starting ${start}`
    : `HTTP ${status}: ${start}`;
}

/**
 * A redirect, with where it points (without credentials, 200 characters at most). It is not
 * followed: the request carries the bearer token, which must only go to the configured url.
 */
function redirectDetail(status: number, location: unknown): string {
  const raw = Array.isArray(location) ? location[0] : location;
  let to = 'no Location';
  if (typeof raw === 'string' && raw !== '') {
    try {
      const u = new URL(raw, 'http://relative.invalid');
      u.username = '';
      u.password = '';
      to = u.host === 'relative.invalid' ? `${u.pathname}${u.search}` : u.href;
    } catch {
      to = 'an unreadable Location';
    }
  }
  return `HTTP ${status} redirect to ${to.slice(0, 200)}, not followed (the request carries the credentials): set url to the address DataStorage answers at`;
}

/** Certificate errors of node:tls: DataStorage's certificate is not trusted as configured. */
const CERT_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What a network error code most likely means for an operator (empty when nothing to add). */
export function networkHint(code: string): string {
  if (CERT_ERRORS.has(code)) {
    return ": DataStorage's certificate is not trusted (set the exporter's `ca` to the CA that signed it, or fix the host name in the url)";
  }
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_')) {
    return ': TLS failed: an https url for a server that does not speak TLS, or a TLS version or cipher mismatch';
  }
  if (code.startsWith('HPE_')) {
    return ': the answer is not HTTP/1.1 (an HTTP/2-only or TLS port behind an http url, or another protocol)';
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return ": the url's host name does not resolve";
  if (code === 'ECONNREFUSED')
    return ': nothing listens at the url (DataStorage down or a wrong port)';
  return '';
}

/** Classifies one transport result for a request of `count` events. */
export function classify(result: TransportResult, count: number, now: number = Date.now()): Action {
  if (result.kind === 'error') {
    if (result.reason === 'aborted') return { kind: 'aborted', ambiguous: result.sent };
    return {
      kind: 'retry',
      reason: result.reason,
      ambiguous: result.sent,
      detail:
        result.reason === 'timeout'
          ? 'request timed out'
          : `network error ${result.code}${networkHint(result.code)}`,
    };
  }
  const { status, body } = result;
  if (status < 200) {
    return {
      kind: 'retry',
      reason: String(status),
      status,
      unexpected: true,
      detail: foreignDetail(status, body),
    };
  }
  if (status >= 200 && status < 300) {
    if (status === 201 && isCreated(body, count)) return { kind: 'accepted', status };
    if (status === 202 && isAsyncAccepted(body)) return { kind: 'accepted', status };
    return {
      kind: 'retry',
      reason: String(status),
      status,
      unexpected: true,
      // DataStorage's own success codes may have stored the events.
      ambiguous: status === 201 || status === 202,
      detail: foreignDetail(status, body, result.truncated === true),
    };
  }
  if (status >= 300 && status < 400) {
    return {
      kind: 'retry',
      reason: String(status),
      status,
      unexpected: true,
      detail: redirectDetail(status, result.headers.location),
    };
  }
  const problem = isDataStorageProblem(result);
  const detail = problem
    ? problemDetail(body, status)
    : foreignDetail(status, body, result.truncated === true);
  if (status === 413 || (status === 400 && problem && isBatchSizeExceeded(body))) {
    return { kind: 'split', status, detail };
  }
  if (status === 400) {
    if (!problem) return { kind: 'retry', reason: '400', status, unexpected: true, detail };
    const index = eventIndexFromProblem(body);
    if (index !== undefined && index >= 0 && index < count) {
      return { kind: 'reject-index', status, index, detail };
    }
    return { kind: 'bisect', status, detail };
  }
  const retryAfterMillis =
    status === 429 || status === 503
      ? parseRetryAfter(result.headers['retry-after'], now)
      : undefined;
  return {
    kind: 'retry',
    reason: String(status),
    status,
    detail,
    ...(retryAfterMillis === undefined ? {} : { retryAfterMillis }),
    ...(status === 401 || status === 403 ? { auth: true } : {}),
    ...(status >= 500 ? { serverError: true } : {}),
  };
}

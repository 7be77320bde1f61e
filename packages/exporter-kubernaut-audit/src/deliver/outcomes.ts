// SPDX-License-Identifier: Apache-2.0
/*
 * What to do with each DataStorage answer (DESIGN §6). Pure: a transport result in,
 * an action out.
 *
 * | answer                           | action                                   |
 * |----------------------------------|------------------------------------------|
 * | 201, 202                         | accepted; never resent                   |
 * | 400 with `event at index N`      | dead-letter event N, resend the rest     |
 * | 400 without an index             | bisect; a lone offender is dead-lettered |
 * | 413, `batch-size-exceeded`       | split and resend                         |
 * | 429, 503                         | wait Retry-After when given, else backoff|
 * | 401, 403                         | re-read the token file, back off, retry  |
 * | other 4xx/5xx, timeouts, resets  | back off with jitter, retry              |
 */
import { eventIndexFromProblem, isBatchSizeExceeded } from '@kubernaut/datastorage-contract';
import { parseRetryAfter } from './backoff.ts';
import type { TransportResult } from './http-transport.ts';

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
  if (typeof body === 'string' && body) return body.slice(0, 1000);
  return `HTTP ${status}`;
}

/** Classifies one transport result for a request of `count` events. */
export function classify(result: TransportResult, count: number, now: number = Date.now()): Action {
  if (result.kind === 'error') {
    if (result.reason === 'aborted') return { kind: 'aborted', ambiguous: result.sent };
    return {
      kind: 'retry',
      reason: result.reason,
      ambiguous: result.sent,
      detail: result.reason === 'timeout' ? 'request timed out' : `network error ${result.code}`,
    };
  }
  const { status, body } = result;
  if (status === 201 || status === 202 || (status >= 200 && status < 300)) {
    return { kind: 'accepted', status };
  }
  const detail = problemDetail(body, status);
  if (status === 413 || (status === 400 && isBatchSizeExceeded(body))) {
    return { kind: 'split', status, detail };
  }
  if (status === 400) {
    const index = eventIndexFromProblem(body);
    if (index !== undefined && index >= 0 && index < count) {
      return { kind: 'reject-index', status, index, detail };
    }
    return { kind: 'bisect', status, detail };
  }
  if (status === 429 || status === 503) {
    const retryAfterMillis = parseRetryAfter(result.headers['retry-after'], now);
    return {
      kind: 'retry',
      reason: String(status),
      status,
      detail,
      ...(retryAfterMillis === undefined ? {} : { retryAfterMillis }),
    };
  }
  if (status === 401 || status === 403) {
    return { kind: 'retry', reason: String(status), status, auth: true, detail };
  }
  return { kind: 'retry', reason: String(status), status, detail };
}

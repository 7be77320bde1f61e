// SPDX-License-Identifier: Apache-2.0
/* RFC 7807 problem details of DataStorage answers, and what a client reads from them. */
import type { ProblemDetails } from './types.ts';

/** Problem type URIs used by DataStorage (`https://kubernaut.ai/problems/{type}`). */
export const PROBLEM_TYPE_BASE = 'https://kubernaut.ai/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problem(
  status: number,
  type: string,
  title: string,
  detail?: string,
  extra: Partial<ProblemDetails> = {},
): ProblemDetails {
  return {
    type: `${PROBLEM_TYPE_BASE}${type}`,
    title,
    status,
    ...(detail === undefined ? {} : { detail }),
    ...extra,
  };
}

const INDEX_RE = /\bevent at index (\d+)\b/;

/**
 * The index of the offending event when a 400's detail names one (`event at index N ...`);
 * undefined for schema-validation failures, which do not say which event failed.
 */
export function eventIndexFromProblem(body: unknown): number | undefined {
  const detail =
    body !== null && typeof body === 'object' ? (body as { detail?: unknown }).detail : undefined;
  if (typeof detail !== 'string') return undefined;
  const m = INDEX_RE.exec(detail);
  return m ? Number(m[1]) : undefined;
}

/** True when a problem says the batch had too many events. */
export function isBatchSizeExceeded(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  const { type, detail } = body as { type?: unknown; detail?: unknown };
  return (
    (typeof type === 'string' && type.endsWith('batch-size-exceeded')) ||
    (typeof detail === 'string' && /exceeds maximum allowed batch size/.test(detail))
  );
}

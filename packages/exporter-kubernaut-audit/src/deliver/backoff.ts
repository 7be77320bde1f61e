// SPDX-License-Identifier: Apache-2.0
/*
 * Backoff with jitter and Retry-After. Pure functions.
 *
 * Invariants: no wait is ever longer than a timer can wait (MAX_TIMER_MILLIS, jitter included:
 * a longer setTimeout fires after 1 ms). No wait is ever shorter than the backoff would be for
 * the same retry. A
 * `Retry-After` of 0, a date in the past or anything unparsable counts as absent (it would
 * otherwise make a tight loop); a longer one is honoured up to MAX_RETRY_AFTER_MILLIS.
 */
import type { ResolvedRetry } from '../config/exporter-env.ts';
import { MAX_TIMER_MILLIS } from '../config/option-rules.ts';

/** Longest Retry-After the exporter honours (5 minutes); longer values are capped. */
export const MAX_RETRY_AFTER_MILLIS = 5 * 60 * 1000;

/**
 * Delay before retry number `attempt` (0 for the first retry): exponential from
 * `initialDelayMillis`, capped at `maxDelayMillis`, then spread by ±`jitter`.
 * `random` returns a number in [0, 1).
 */
export function backoffDelay(
  attempt: number,
  retry: ResolvedRetry,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    retry.maxDelayMillis,
    retry.initialDelayMillis * retry.multiplier ** Math.max(0, attempt),
  );
  const spread = base * retry.jitter * (2 * random() - 1);
  return Math.min(MAX_TIMER_MILLIS, Math.max(0, Math.round(base + spread)));
}

/**
 * Milliseconds to wait from a `Retry-After` header: delay-seconds (digits only) or an HTTP
 * date. Undefined when absent, unparsable, zero or in the past. Capped at
 * MAX_RETRY_AFTER_MILLIS.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) {
    ms = Number(v) * 1000;
  } else {
    // An HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") has a weekday and a month name.
    if (!/^[A-Za-z]{3},/.test(v)) return undefined;
    const t = Date.parse(v);
    if (Number.isNaN(t)) return undefined;
    ms = t - now;
  }
  if (!(ms > 0)) return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MILLIS);
}

/**
 * The wait before retry number `attempt`: the server's `retryAfterMillis` when it asks for
 * longer than the backoff, else the backoff.
 */
export function retryDelay(
  attempt: number,
  retryAfterMillis: number | undefined,
  retry: ResolvedRetry,
  random: () => number = Math.random,
): number {
  const backoff = backoffDelay(attempt, retry, random);
  return retryAfterMillis !== undefined && retryAfterMillis > backoff ? retryAfterMillis : backoff;
}

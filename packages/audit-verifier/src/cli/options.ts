// SPDX-License-Identifier: Apache-2.0
/* Option values several commands read, with the same rules and words everywhere. */
import { parseDuration, parseTime } from '@kubernaut/datastorage-contract/config';
import { TokenFile } from '@kubernaut/datastorage-contract/http';
import { UsageError } from './command.ts';

/** The default of `--timeout`: per request to DataStorage. */
export const DEFAULT_TIMEOUT_MILLIS = 30_000;

/** The longest `--timeout`: what a Node.js timer can wait (2^32 - 1 ms, about 49 days). */
export const MAX_TIMEOUT_MILLIS = 2 ** 32 - 1;

/** A `--timeout` value: a duration (`30s`, `500ms`, `2m`) or a number of seconds. */
export function parseTimeoutOption(text: string | undefined, defaultMillis: number): number {
  if (text === undefined) return defaultMillis;
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || !(ms > 0) || !Number.isFinite(ms)) {
    throw new UsageError(
      `--timeout: expected a duration such as 30s or 500ms, got ${JSON.stringify(text)}`,
    );
  }
  if (ms > MAX_TIMEOUT_MILLIS) {
    throw new UsageError(`--timeout: at most ${MAX_TIMEOUT_MILLIS} ms (49 days), got ${text}`);
  }
  return ms;
}

/** The `--url` value: required, http(s). */
export function requireUrl(url: string | undefined): string {
  if (url === undefined || url === '') throw new UsageError('--url is required');
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new UsageError(`--url: not an http(s) URL: ${url}`);
  }
  return url;
}

/** `24h`, `90m`, `7d`, `1h30m` before now, or an RFC 3339 date-time. */
export function parseTimeOption(text: string, now: number, option: string): Date {
  const t = parseTime(text, now);
  if (t !== undefined) return new Date(t);
  throw new UsageError(
    `${option}: expected a duration such as 24h or an RFC 3339 time, got ${JSON.stringify(text)}`,
  );
}

/** The bearer token in `path` (the contract's token-file rules: trimmed, empty is an error here). */
export function readToken(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let t: string | undefined;
  try {
    t = new TokenFile(path).load();
  } catch (err) {
    throw new UsageError(
      `cannot read --bearer-token-file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  if (t === undefined) throw new UsageError(`--bearer-token-file ${path} is empty`);
  return t;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Rules shared by the exporter's and the processor's option resolution, for values users get
 * wrong: a text option of another type, a duration longer than a timer can wait, a path with
 * `~`. Each reports through the caller's `report` (a diag warning that names the setting and
 * the value used instead) and returns what the caller uses; nothing here throws.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ReportInvalid } from '@kubernaut/datastorage-contract/config';

/**
 * The longest delay Node's timers take (2^31-1 ms, about 24.8 days): a longer one fires after
 * 1 ms (TimeoutOverflowWarning), which turns a generous timeout into an immediate one and a
 * long backoff into a tight loop. Durations are capped at this.
 */
export const MAX_TIMER_MILLIS = 2_147_483_647;

/** `a number`, `a string`, `an array`, `null` …: what a value is, never the value (a secret?). */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  return t === 'object' || t === 'undefined' ? `an ${t}` : `a ${t}`;
}

/**
 * A text option: the trimmed string, undefined when absent (undefined, null) or blank; any other
 * type is reported (`invalid url (a number): expected a string`) and treated as absent.
 */
export function textOption(
  name: string,
  value: unknown,
  report: ReportInvalid,
): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    report(`invalid ${name} (${kindOf(value)}): expected a string`);
    return undefined;
  }
  const t = value.trim();
  return t === '' ? undefined : t;
}

/**
 * `value` (already valid) capped at {@link MAX_TIMER_MILLIS}, reported when capped. `shown` is
 * how the setting appears in the message (`timeoutMillis 1e10`, `OTEL_BLRP_EXPORT_TIMEOUT="1e12"`).
 */
export function capTimer(shown: string, value: number, report: ReportInvalid): number {
  if (value <= MAX_TIMER_MILLIS) return value;
  report(`${shown} is longer than a timer can wait; using ${MAX_TIMER_MILLIS}`);
  return MAX_TIMER_MILLIS;
}

/**
 * A directory or file path made absolute once, against the working directory at construction
 * (a later `process.chdir()` does not move it). A leading `~` or `~/`, which only a shell
 * expands (not Kubernetes, Docker or dotenv files), is the home directory, with a warning.
 */
export function absolutePath(name: string, path: string, report: ReportInvalid): string {
  if (path === '~' || path.startsWith('~/')) {
    const expanded = join(homedir(), path.slice(1));
    report(
      `${name}=${JSON.stringify(path)} starts with "~", which only a shell expands; using the home directory: ${expanded}`,
    );
    return expanded;
  }
  return resolve(path);
}

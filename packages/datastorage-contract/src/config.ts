// SPDX-License-Identifier: Apache-2.0
/*
 * One set of rules for configuration values (`@kubernaut/datastorage-contract/config`): numbers
 * given in code, environment variables and command-line flags, durations, booleans and points in
 * time, with messages that name the setting. Each caller decides what an invalid value does (a
 * library warns and keeps its default, a command exits); the rules and the words are the same.
 */
import { parseDateTime } from './datetime.ts';

/** What a numeric setting must be. */
export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  /** Smallest allowed value. */
  min?: number;
  /** Values must be greater than this. */
  above?: number;
  /** Largest allowed value. */
  max?: number;
}

/** Reports an invalid setting; the message names it and says what was expected. */
export type ReportInvalid = (message: string) => void;

/** Words for a rule: `an integer >= 1`, `a number > 0`, `an integer from 0 to 65535`. */
export function describeRule(rule: NumberRule): string {
  const kind = rule.integer ? 'an integer' : 'a number';
  if (rule.min !== undefined && rule.max !== undefined) {
    return `${kind} from ${rule.min} to ${rule.max}`;
  }
  const bounds: string[] = [];
  if (rule.above !== undefined) bounds.push(`> ${rule.above}`);
  if (rule.min !== undefined) bounds.push(`>= ${rule.min}`);
  if (rule.max !== undefined) bounds.push(`<= ${rule.max}`);
  return bounds.length === 0 ? kind : `${kind} ${bounds.join(' and ')}`;
}

/** True when `value` is a finite number that keeps `rule`. */
export function satisfies(value: unknown, rule: NumberRule = {}): value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return false;
  if (rule.integer && !Number.isSafeInteger(value)) return false;
  if (rule.min !== undefined && value < rule.min) return false;
  if (rule.above !== undefined && value <= rule.above) return false;
  return rule.max === undefined || value <= rule.max;
}

// Decimal notation only (no hex, no `Infinity`); surrounding whitespace is ignored.
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number written as text (an environment variable, a flag) that keeps `rule`, or undefined. */
export function parseNumber(text: string, rule: NumberRule = {}): number | undefined {
  const t = text.trim();
  if (!NUMBER_RE.test(t)) return undefined;
  const n = Number(t);
  return satisfies(n, rule) ? n : undefined;
}

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

/**
 * A duration in ms: units `ns us µs ms s m h d`, combinable (`1h30m`, `1.5s`, `7d`), as Go's
 * durations plus days (DataStorage's query API reads them the same way); undefined otherwise.
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(DURATION_PART_RE)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

/** `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case); undefined otherwise. */
export function parseBoolean(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'true' || t === '1' || t === 'yes' || t === 'on') return true;
  if (t === 'false' || t === '0' || t === 'no' || t === 'off') return false;
  return undefined;
}

/**
 * A point in time in ms since the epoch: a duration before `now` (`24h`, `90m`, `7d`) or an
 * RFC 3339 date-time; undefined otherwise.
 */
export function parseTime(text: string, now: number): number | undefined {
  const ago = parseDuration(text);
  if (ago !== undefined) {
    const t = now - ago;
    return Number.isNaN(new Date(t).getTime()) ? undefined : t;
  }
  return parseDateTime(text);
}

/**
 * A numeric option given in code: undefined when absent; when it breaks `rule`, `report` is
 * told (`invalid maxQueueSize (0): expected an integer >= 1`) and the result is undefined, so
 * that the caller falls back to its default.
 */
export function numberOption(
  name: string,
  value: unknown,
  rule: NumberRule,
  report: ReportInvalid,
): number | undefined {
  if (value === undefined) return undefined;
  if (satisfies(value, rule)) return value;
  report(`invalid ${name} (${String(value)}): expected ${describeRule(rule)}`);
  return undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The trimmed value of an environment variable; undefined when absent or blank. */
export function envText(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw ? raw : undefined;
}

/**
 * A numeric environment variable: undefined when absent or blank; when it breaks `rule`,
 * `report` is told (`ignoring OTEL_BLRP_MAX_QUEUE_SIZE="lots": expected an integer >= 1`) and
 * the result is undefined.
 */
export function numberFromEnv(
  env: Env,
  name: string,
  rule: NumberRule,
  report: ReportInvalid,
): number | undefined {
  const raw = envText(env, name);
  if (raw === undefined) return undefined;
  const n = parseNumber(raw, rule);
  if (n === undefined)
    report(`ignoring ${name}=${JSON.stringify(raw)}: expected ${describeRule(rule)}`);
  return n;
}

/** An environment variable that must be one of `choices` (any case); as numberFromEnv. */
export function choiceFromEnv<T extends string>(
  env: Env,
  name: string,
  choices: readonly T[],
  report: ReportInvalid,
): T | undefined {
  const raw = envText(env, name)?.toLowerCase();
  if (raw === undefined) return undefined;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  report(
    `ignoring ${name}=${JSON.stringify(raw)}: expected ${choices.map((c) => `"${c}"`).join(' or ')}`,
  );
  return undefined;
}

/**
 * What went wrong, for a diagnostic line or a violation message: an Error's message, else the
 * value as text, cut to `maxLength` characters (with `…`). Never throws.
 */
export function errorText(err: unknown, maxLength = Number.POSITIVE_INFINITY): string {
  let text: string;
  try {
    const raw: unknown = err instanceof Error ? err.message : err;
    text = typeof raw === 'string' ? raw : String(raw); // a message may be anything, even hostile
  } catch {
    return 'unknown error';
  }
  return text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
}

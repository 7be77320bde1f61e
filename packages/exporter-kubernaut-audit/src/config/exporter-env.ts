// SPDX-License-Identifier: Apache-2.0
/*
 * Exporter configuration: the options of DESIGN §3 merged with the environment.
 * Code options win over environment variables. Invalid values fall back to the default with a
 * warning (OTel JS's rule for its batch processor); durations are capped at what a timer can
 * wait; headers (and a bearer token) an HTTP request cannot carry are dropped with a warning
 * (as the OTLP exporters do) that never shows their value; nothing here throws.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import { envText, type NumberRule, numberOption } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../measure/diag.ts';
import { capTimer, kindOf, MAX_TIMER_MILLIS, textOption } from './option-rules.ts';

/** Environment variable naming the DataStorage base URL. */
export const ENV_KUBERNAUT_AUDIT_ENDPOINT = 'KUBERNAUT_AUDIT_ENDPOINT';
/** Environment variable naming a file holding the bearer token. */
export const ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE = 'KUBERNAUT_AUDIT_BEARER_TOKEN_FILE';

export const DEFAULT_TIMEOUT_MILLIS = 10_000;
/**
 * OTel's OTLP exporters' retry schedule (1 s, ×1.5, at most 5 s, ±20 %): during an outage a
 * lane asks again at least every 6 s, so delivery resumes within seconds of DataStorage's return
 * (and every other lane at once, woken by the first acceptance). A longer cap would leave a
 * recovered DataStorage idle for up to that long while the spool's backlog waits.
 */
export const DEFAULT_RETRY = {
  initialDelayMillis: 1000,
  maxDelayMillis: 5000,
  multiplier: 1.5,
  jitter: 0.2,
} as const;

/** Backoff settings of the exporter. */
export interface RetryOptions {
  initialDelayMillis?: number;
  maxDelayMillis?: number;
  multiplier?: number;
  /** Fraction of each delay added or removed at random, 0..1. */
  jitter?: number;
}

export type ResolvedRetry = Required<RetryOptions>;

export interface ResolvedExporterConfig {
  url: string | undefined;
  headers: Record<string, string>;
  bearerToken: string | undefined;
  bearerTokenFile: string | undefined;
  ca: string | Buffer | undefined;
  cert: string | Buffer | undefined;
  key: string | Buffer | undefined;
  timeoutMillis: number;
  maxBatchSize: number;
  retry: ResolvedRetry;
  openapiSpec: string | undefined;
}

/** The options of KubernautAuditExporter that are configuration (all but the MeterProvider). */
export interface ExporterConfigInput {
  /** DataStorage base URL, e.g. `http://datastorage:8080` [env KUBERNAUT_AUDIT_ENDPOINT]. */
  url?: string;
  /** Extra HTTP headers on every request. */
  headers?: Record<string, string>;
  /** Bearer token sent as `Authorization: Bearer <token>`. */
  bearerToken?: string;
  /**
   * File holding the bearer token, checked every second and re-read when it changes, and at
   * once after a 401/403 [env KUBERNAUT_AUDIT_BEARER_TOKEN_FILE].
   */
  bearerTokenFile?: string;
  /** TLS: trusted CA(s); the server certificate is always verified. */
  ca?: string | Buffer;
  /** TLS client certificate. */
  cert?: string | Buffer;
  /** TLS client key. */
  key?: string | Buffer;
  /** Timeout of one HTTP attempt, and of all attempts of a standalone export [10000]. */
  timeoutMillis?: number;
  /** Events per request, at most 500 [500]; requests also stay below 5 MiB. */
  maxBatchSize?: number;
  /** Backoff between attempts [1000, 5000, 1.5, 0.2] (OTel's OTLP exporters' defaults). */
  retry?: RetryOptions;
  /** Path of a DataStorage OpenAPI file: event_data is validated against it before sending. */
  openapiSpec?: string;
}

const configDiag = new ComponentDiag('KubernautAuditExporter');

const warn = (message: string) => configDiag.warn(message);

/** A numeric option that keeps `rule`, else `def` (with a warning). */
function setting(name: string, v: number | undefined, def: number, rule: NumberRule): number {
  const value = numberOption(name, v, rule, (m) => configDiag.warn(`${m}; using ${def}`));
  return value ?? def;
}

/** A duration option: as {@link setting}, but longer than a timer can wait (Infinity too) → capped. */
function duration(name: string, v: number | undefined, def: number, min: number): number {
  if (typeof v === 'number' && v > MAX_TIMER_MILLIS) return capTimer(`${name} ${v}`, v, warn);
  return setting(name, v, def, AT_LEAST(min));
}

const AT_LEAST = (min: number): NumberRule => ({ min });

/** The headers an HTTP request can carry: others are dropped with a warning (not their value). */
function validHeaders(headers: unknown): Record<string, string> {
  if (headers === undefined || headers === null) return {};
  if (typeof headers !== 'object' || Array.isArray(headers)) {
    warn(`invalid headers (${kindOf(headers)}): expected an object of header names to values`);
    return {};
  }
  const valid: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || value === null) {
      warn(`header ${JSON.stringify(name)} has no value (${kindOf(value)}) and is ignored`);
      continue;
    }
    const text = String(value);
    try {
      validateHeaderName(name);
    } catch {
      warn(`header ${JSON.stringify(name)} is not a valid HTTP header name and is ignored`);
      continue;
    }
    try {
      validateHeaderValue(name, text);
    } catch {
      warn(
        `header ${JSON.stringify(name)} has a value an HTTP header cannot carry (a line break?) and is ignored`,
      );
      continue;
    }
    valid[name] = text;
  }
  return valid;
}

/** The bearer token, unless an Authorization header cannot carry it (then an error, not the token). */
function validToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  try {
    validateHeaderValue('authorization', `Bearer ${token}`);
    return token;
  } catch {
    configDiag.error(
      'bearerToken has characters an HTTP header cannot carry (a line break inside it?); it is not sent',
    );
    return undefined;
  }
}

/** Resolves options against the environment (`env`, default `process.env`). */
export function resolveExporterConfig(
  input: ExporterConfigInput | null = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedExporterConfig {
  const options = input ?? {};
  const url = textOption('url', options.url, warn) ?? envText(env, ENV_KUBERNAUT_AUDIT_ENDPOINT);
  const bearerToken = validToken(textOption('bearerToken', options.bearerToken, warn));
  const bearerTokenFile =
    textOption('bearerTokenFile', options.bearerTokenFile, warn) ??
    (bearerToken === undefined ? envText(env, ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE) : undefined);

  let maxBatchSize = setting('maxBatchSize', options.maxBatchSize, MAX_BATCH_EVENTS, AT_LEAST(1));
  maxBatchSize = Math.floor(maxBatchSize);
  if (maxBatchSize > MAX_BATCH_EVENTS) {
    configDiag.warn(
      `maxBatchSize ${maxBatchSize} is over DataStorage's limit, using ${MAX_BATCH_EVENTS}`,
    );
    maxBatchSize = MAX_BATCH_EVENTS;
  }

  const r = options.retry ?? {};
  const initialDelayMillis = duration(
    'retry.initialDelayMillis',
    r.initialDelayMillis,
    DEFAULT_RETRY.initialDelayMillis,
    0,
  );
  let maxDelayMillis = duration(
    'retry.maxDelayMillis',
    r.maxDelayMillis,
    DEFAULT_RETRY.maxDelayMillis,
    0,
  );
  if (maxDelayMillis < initialDelayMillis) maxDelayMillis = initialDelayMillis;
  const multiplier = setting(
    'retry.multiplier',
    r.multiplier,
    DEFAULT_RETRY.multiplier,
    AT_LEAST(1),
  );
  let jitter = setting('retry.jitter', r.jitter, DEFAULT_RETRY.jitter, AT_LEAST(0));
  if (jitter > 1) jitter = 1;

  return {
    url,
    headers: validHeaders(options.headers),
    bearerToken,
    bearerTokenFile,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    timeoutMillis: duration('timeoutMillis', options.timeoutMillis, DEFAULT_TIMEOUT_MILLIS, 1),
    maxBatchSize,
    retry: { initialDelayMillis, maxDelayMillis, multiplier, jitter },
    openapiSpec: textOption('openapiSpec', options.openapiSpec, warn),
  };
}

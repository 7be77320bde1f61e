// SPDX-License-Identifier: Apache-2.0
/*
 * Exporter configuration: the options of DESIGN §3 merged with the environment.
 * Code options win over environment variables. Invalid numbers fall back to the
 * default with a warning; nothing here throws.
 */

import { MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import { envText, type NumberRule, numberOption } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../measure/diag.ts';

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

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

/** A numeric option that keeps `rule`, else `def` (with a warning). */
function setting(name: string, v: number | undefined, def: number, rule: NumberRule): number {
  const value = numberOption(name, v, rule, (m) => configDiag.warn(`${m}; using ${def}`));
  return value ?? def;
}

const AT_LEAST = (min: number): NumberRule => ({ min });

/** Resolves options against the environment (`env`, default `process.env`). */
export function resolveExporterConfig(
  options: ExporterConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedExporterConfig {
  const url = nonEmpty(options.url) ?? envText(env, ENV_KUBERNAUT_AUDIT_ENDPOINT);
  const bearerToken = nonEmpty(options.bearerToken);
  const bearerTokenFile =
    nonEmpty(options.bearerTokenFile) ??
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
  const initialDelayMillis = setting(
    'retry.initialDelayMillis',
    r.initialDelayMillis,
    DEFAULT_RETRY.initialDelayMillis,
    AT_LEAST(0),
  );
  let maxDelayMillis = setting(
    'retry.maxDelayMillis',
    r.maxDelayMillis,
    DEFAULT_RETRY.maxDelayMillis,
    AT_LEAST(0),
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
    headers: { ...(options.headers ?? {}) },
    bearerToken,
    bearerTokenFile,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    timeoutMillis: setting(
      'timeoutMillis',
      options.timeoutMillis,
      DEFAULT_TIMEOUT_MILLIS,
      AT_LEAST(1),
    ),
    maxBatchSize,
    retry: { initialDelayMillis, maxDelayMillis, multiplier, jitter },
    openapiSpec: nonEmpty(options.openapiSpec),
  };
}

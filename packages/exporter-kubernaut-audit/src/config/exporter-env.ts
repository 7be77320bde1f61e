/*
 * Exporter configuration: the options of DESIGN §3 merged with the environment.
 * Code options win over environment variables. Invalid numbers fall back to the
 * default with a warning; nothing here throws.
 */

import { MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import { diag } from '@opentelemetry/api';

/** Environment variable naming the DataStorage base URL. */
export const ENV_KUBERNAUT_AUDIT_ENDPOINT = 'KUBERNAUT_AUDIT_ENDPOINT';
/** Environment variable naming a file holding the bearer token. */
export const ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE = 'KUBERNAUT_AUDIT_BEARER_TOKEN_FILE';

export const DEFAULT_TIMEOUT_MILLIS = 10_000;
export const DEFAULT_RETRY = {
  initialDelayMillis: 1000,
  maxDelayMillis: 30_000,
  multiplier: 2,
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

/** The subset of KubernautAuditExporterOptions that is configuration (no objects). */
export interface ExporterConfigInput {
  url?: string;
  headers?: Record<string, string>;
  bearerToken?: string;
  bearerTokenFile?: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  timeoutMillis?: number;
  maxBatchSize?: number;
  retry?: RetryOptions;
  openapiSpec?: string;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

function positive(name: string, v: number | undefined, def: number, min = 0): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    diag.warn(`KubernautAuditExporter: invalid ${name} (${String(v)}), using ${def}`);
    return def;
  }
  return v;
}

/** Resolves options against the environment (`env`, default `process.env`). */
export function resolveExporterConfig(
  options: ExporterConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedExporterConfig {
  const url = nonEmpty(options.url) ?? nonEmpty(env[ENV_KUBERNAUT_AUDIT_ENDPOINT]);
  const bearerToken = nonEmpty(options.bearerToken);
  const bearerTokenFile =
    nonEmpty(options.bearerTokenFile) ??
    (bearerToken === undefined ? nonEmpty(env[ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE]) : undefined);

  let maxBatchSize = positive('maxBatchSize', options.maxBatchSize, MAX_BATCH_EVENTS, 1);
  maxBatchSize = Math.floor(maxBatchSize);
  if (maxBatchSize > MAX_BATCH_EVENTS) {
    diag.warn(
      `KubernautAuditExporter: maxBatchSize ${maxBatchSize} is over DataStorage's limit, using ${MAX_BATCH_EVENTS}`,
    );
    maxBatchSize = MAX_BATCH_EVENTS;
  }

  const r = options.retry ?? {};
  const initialDelayMillis = positive(
    'retry.initialDelayMillis',
    r.initialDelayMillis,
    DEFAULT_RETRY.initialDelayMillis,
  );
  let maxDelayMillis = positive(
    'retry.maxDelayMillis',
    r.maxDelayMillis,
    DEFAULT_RETRY.maxDelayMillis,
  );
  if (maxDelayMillis < initialDelayMillis) maxDelayMillis = initialDelayMillis;
  const multiplier = positive('retry.multiplier', r.multiplier, DEFAULT_RETRY.multiplier, 1);
  let jitter = positive('retry.jitter', r.jitter, DEFAULT_RETRY.jitter);
  if (jitter > 1) jitter = 1;

  return {
    url,
    headers: { ...(options.headers ?? {}) },
    bearerToken,
    bearerTokenFile,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    timeoutMillis: positive('timeoutMillis', options.timeoutMillis, DEFAULT_TIMEOUT_MILLIS, 1),
    maxBatchSize,
    retry: { initialDelayMillis, maxDelayMillis, multiplier, jitter },
    openapiSpec: nonEmpty(options.openapiSpec),
  };
}

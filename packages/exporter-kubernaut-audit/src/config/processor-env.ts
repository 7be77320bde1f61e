// SPDX-License-Identifier: Apache-2.0
/*
 * Environment configuration of AuditLogRecordProcessor (DESIGN §3). Code options win over
 * these values; an invalid value is reported through `diag` and replaced by the default; a
 * duration longer than a timer can wait is reported and capped (MAX_TIMER_MILLIS).
 */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  choiceFromEnv,
  envText,
  type NumberRule,
  numberFromEnv,
} from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../measure/diag.ts';
import { DEFAULT_SPOOL_MAX_BYTES } from '../spool/spool.ts';
import { capTimer } from './option-rules.ts';

/** OTel defaults of the batch log record processor. */
export const DEFAULT_MAX_QUEUE_SIZE = 2048;
export const DEFAULT_MAX_EXPORT_BATCH_SIZE = 512;
export const DEFAULT_SCHEDULED_DELAY_MILLIS = 1000;
export const DEFAULT_EXPORT_TIMEOUT_MILLIS = 30000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MILLIS = 30000;
export const DEFAULT_SLOW_EXPORT_THRESHOLD_MILLIS = 2000;
/** Records per provenance block reservation, at least. */
export const MIN_PROVENANCE_BLOCK = 512;

export type SpoolDurability = 'batch' | 'sync';
const DURABILITIES: readonly SpoolDurability[] = ['batch', 'sync'];
/** The rule of counts and sizes: an integer >= 1. */
export const POSITIVE_INTEGER: NumberRule = { integer: true, min: 1 };

const envDiag = new ComponentDiag('AuditLogRecordProcessor');

/** Processor settings found in the environment; absent or invalid variables are undefined. */
export interface ProcessorEnvConfig {
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  scheduledDelayMillis?: number;
  exportTimeoutMillis?: number;
  spoolDirectory?: string;
  spoolMaxBytes?: number;
  spoolDurability?: SpoolDurability;
  serviceName?: string;
  signingKeyFile?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reports an invalid variable, naming the default used instead. */
const warn = (def: number | string) => (message: string) =>
  envDiag.warn(`${message}; using the default (${def})`);

/** A duration variable (integer ms >= `min`), capped at what a timer can wait. */
function durationFromEnv(env: Env, name: string, min: number, def: number): number | undefined {
  const value = numberFromEnv(env, name, { integer: true, min }, warn(def));
  if (value === undefined) return undefined;
  const shown = `${name}=${JSON.stringify(envText(env, name))}`;
  return capTimer(shown, value, (m) => envDiag.warn(m));
}

/** Reads OTEL_BLRP_* and KUBERNAUT_AUDIT_SPOOL_* (invalid values → diag warning naming the default). */
export function readProcessorEnv(env: Env = process.env): ProcessorEnvConfig {
  const cfg: ProcessorEnvConfig = {
    maxQueueSize: numberFromEnv(
      env,
      'OTEL_BLRP_MAX_QUEUE_SIZE',
      POSITIVE_INTEGER,
      warn(DEFAULT_MAX_QUEUE_SIZE),
    ),
    maxExportBatchSize: numberFromEnv(
      env,
      'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE',
      POSITIVE_INTEGER,
      warn(DEFAULT_MAX_EXPORT_BATCH_SIZE),
    ),
    scheduledDelayMillis: durationFromEnv(
      env,
      'OTEL_BLRP_SCHEDULE_DELAY',
      0,
      DEFAULT_SCHEDULED_DELAY_MILLIS,
    ),
    exportTimeoutMillis: durationFromEnv(
      env,
      'OTEL_BLRP_EXPORT_TIMEOUT',
      1,
      DEFAULT_EXPORT_TIMEOUT_MILLIS,
    ),
    spoolMaxBytes: numberFromEnv(
      env,
      'KUBERNAUT_AUDIT_SPOOL_MAX_BYTES',
      POSITIVE_INTEGER,
      warn(DEFAULT_SPOOL_MAX_BYTES),
    ),
  };
  const dir = envText(env, 'KUBERNAUT_AUDIT_SPOOL_DIR');
  if (dir) cfg.spoolDirectory = dir;
  const durability = choiceFromEnv(
    env,
    'KUBERNAUT_AUDIT_SPOOL_DURABILITY',
    DURABILITIES,
    warn('batch'),
  );
  if (durability) cfg.spoolDurability = durability;
  const keyFile = envText(env, 'KUBERNAUT_AUDIT_SIGNING_KEY_FILE');
  if (keyFile) cfg.signingKeyFile = keyFile;
  const service = envText(env, 'OTEL_SERVICE_NAME');
  if (service) cfg.serviceName = service;
  return cfg;
}

/** Longest `<service>` part of a default spool directory's name (ASCII after sanitising). */
const MAX_SERVICE_PART = 240;

/**
 * The default spool directory: `<os tmpdir>/kubernaut-audit/<service>-<8 hex>`, where
 * `<service>` is OTEL_SERVICE_NAME (path-safe) or "default" and the hex digits are the start of
 * the SHA-256 of the normalised DataStorage URL: programs of one service name with different
 * DataStorages never share a spool. `n` ≥ 2 gives the fallback `…-<n>` used when the directory
 * is held by another live process.
 */
export function defaultSpoolDirectory(
  serviceName: string | undefined,
  destination: string | undefined,
  n = 1,
): string {
  // Cut to what a file name can hold with `-<8 hex>-<n>` (255 bytes); shorter names are kept
  // whole, so that a spool left by an earlier version is found again.
  const safe =
    (serviceName ?? 'default').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, MAX_SERVICE_PART) ||
    'default';
  const service = safe === '.' || safe === '..' ? 'default' : safe;
  const hex = createHash('sha256')
    .update(destination ?? '')
    .digest('hex')
    .slice(0, 8);
  return join(tmpdir(), 'kubernaut-audit', `${service}-${hex}${n > 1 ? `-${n}` : ''}`);
}

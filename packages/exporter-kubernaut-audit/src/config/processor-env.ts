// SPDX-License-Identifier: Apache-2.0
/*
 * Environment configuration of AuditLogRecordProcessor (DESIGN §3). Code options win over
 * these values; an invalid value is reported through `diag` and replaced by the default.
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
}

type Env = Readonly<Record<string, string | undefined>>;

const warn = (message: string) => envDiag.warn(`${message}; using the default`);

/** Reads OTEL_BLRP_* and KUBERNAUT_AUDIT_SPOOL_* (invalid values → diag warning, default). */
export function readProcessorEnv(env: Env = process.env): ProcessorEnvConfig {
  const cfg: ProcessorEnvConfig = {
    maxQueueSize: numberFromEnv(env, 'OTEL_BLRP_MAX_QUEUE_SIZE', POSITIVE_INTEGER, warn),
    maxExportBatchSize: numberFromEnv(
      env,
      'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE',
      POSITIVE_INTEGER,
      warn,
    ),
    scheduledDelayMillis: numberFromEnv(
      env,
      'OTEL_BLRP_SCHEDULE_DELAY',
      { integer: true, min: 0 },
      warn,
    ),
    exportTimeoutMillis: numberFromEnv(env, 'OTEL_BLRP_EXPORT_TIMEOUT', POSITIVE_INTEGER, warn),
    spoolMaxBytes: numberFromEnv(env, 'KUBERNAUT_AUDIT_SPOOL_MAX_BYTES', POSITIVE_INTEGER, warn),
  };
  const dir = envText(env, 'KUBERNAUT_AUDIT_SPOOL_DIR');
  if (dir) cfg.spoolDirectory = dir;
  const durability = choiceFromEnv(env, 'KUBERNAUT_AUDIT_SPOOL_DURABILITY', DURABILITIES, warn);
  if (durability) cfg.spoolDurability = durability;
  const service = envText(env, 'OTEL_SERVICE_NAME');
  if (service) cfg.serviceName = service;
  return cfg;
}

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
  const safe = (serviceName ?? 'default').replace(/[^A-Za-z0-9._-]/g, '_') || 'default';
  const service = safe === '.' || safe === '..' ? 'default' : safe;
  const hex = createHash('sha256')
    .update(destination ?? '')
    .digest('hex')
    .slice(0, 8);
  return join(tmpdir(), 'kubernaut-audit', `${service}-${hex}${n > 1 ? `-${n}` : ''}`);
}

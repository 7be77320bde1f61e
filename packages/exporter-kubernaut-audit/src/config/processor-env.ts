/*
 * Environment configuration of AuditLogRecordProcessor (DESIGN §3). Code options win over
 * these values; an invalid value is reported through `diag` and replaced by the default.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diag } from '@opentelemetry/api';

/** OTel defaults of the batch log record processor. */
export const DEFAULT_MAX_QUEUE_SIZE = 2048;
export const DEFAULT_MAX_EXPORT_BATCH_SIZE = 512;
export const DEFAULT_SCHEDULED_DELAY_MILLIS = 1000;
export const DEFAULT_EXPORT_TIMEOUT_MILLIS = 30000;
/** Spool bound [1 GiB]. */
export const DEFAULT_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;
/** Dead-letter file bound [100 MiB]. */
export const DEFAULT_DEAD_LETTER_MAX_BYTES = 100 * 1024 * 1024;
export const DEFAULT_SHUTDOWN_TIMEOUT_MILLIS = 30000;
export const DEFAULT_SLOW_EXPORT_THRESHOLD_MILLIS = 2000;

export type SpoolDurability = 'batch' | 'sync';

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

function readInt(env: Env, name: string, min: number): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    diag.warn(
      `AuditLogRecordProcessor: ignoring ${name}=${JSON.stringify(raw)}: expected an integer >= ${min}; using the default`,
    );
    return undefined;
  }
  return n;
}

/** Reads OTEL_BLRP_* and KUBERNAUT_AUDIT_SPOOL_* (invalid values → diag warning, default). */
export function readProcessorEnv(env: Env = process.env): ProcessorEnvConfig {
  const cfg: ProcessorEnvConfig = {
    maxQueueSize: readInt(env, 'OTEL_BLRP_MAX_QUEUE_SIZE', 1),
    maxExportBatchSize: readInt(env, 'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', 1),
    scheduledDelayMillis: readInt(env, 'OTEL_BLRP_SCHEDULE_DELAY', 0),
    exportTimeoutMillis: readInt(env, 'OTEL_BLRP_EXPORT_TIMEOUT', 1),
    spoolMaxBytes: readInt(env, 'KUBERNAUT_AUDIT_SPOOL_MAX_BYTES', 1),
  };
  const dir = env.KUBERNAUT_AUDIT_SPOOL_DIR?.trim();
  if (dir) cfg.spoolDirectory = dir;
  const durability = env.KUBERNAUT_AUDIT_SPOOL_DURABILITY?.trim().toLowerCase();
  if (durability) {
    if (durability === 'batch' || durability === 'sync') cfg.spoolDurability = durability;
    else
      diag.warn(
        `AuditLogRecordProcessor: ignoring KUBERNAUT_AUDIT_SPOOL_DURABILITY=${JSON.stringify(durability)}: expected "batch" or "sync"; using "batch"`,
      );
  }
  const service = env.OTEL_SERVICE_NAME?.trim();
  if (service) cfg.serviceName = service;
  return cfg;
}

/** `<os tmpdir>/kubernaut-audit/<service name or "default">`, with a path-safe service name. */
export function defaultSpoolDirectory(serviceName?: string): string {
  const safe = (serviceName ?? 'default').replace(/[^A-Za-z0-9._-]/g, '_') || 'default';
  return join(tmpdir(), 'kubernaut-audit', safe === '.' || safe === '..' ? 'default' : safe);
}

// SPDX-License-Identifier: Apache-2.0
/*
 * config/: the processor's options (DESIGN §3) resolved against the environment, once, by one
 * rule set: code options win over environment variables; an invalid value is reported through
 * diag and the next source (environment, then default) is used. Nothing here throws.
 */
import { numberOption } from '@kubernaut/datastorage-contract/config';
import type { MeterProvider } from '@opentelemetry/api';
import type { KubernautAuditExporter } from '../exporter/kubernaut-audit-exporter.ts';
import { ComponentDiag } from '../measure/diag.ts';
import { DEFAULT_DEAD_LETTER_MAX_BYTES } from '../spool/dead-letter.ts';
import { DEFAULT_LANES, DEFAULT_SPOOL_MAX_BYTES } from '../spool/spool.ts';
import {
  DEFAULT_EXPORT_TIMEOUT_MILLIS,
  DEFAULT_MAX_EXPORT_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  DEFAULT_SCHEDULED_DELAY_MILLIS,
  DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
  DEFAULT_SLOW_EXPORT_THRESHOLD_MILLIS,
  readProcessorEnv,
  type SpoolDurability,
} from './processor-env.ts';

export interface AuditLogRecordProcessorOptions {
  /** Sends spooled events to DataStorage [a KubernautAuditExporter built from the environment]. */
  exporter?: KubernautAuditExporter;
  /** Inner batch queue bound [env OTEL_BLRP_MAX_QUEUE_SIZE, 2048]. Overflow is spooled, not lost. */
  maxQueueSize?: number;
  /** Records per spool write [env OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, 512]. */
  maxExportBatchSize?: number;
  /** Longest time a record waits before it is written to the spool [env OTEL_BLRP_SCHEDULE_DELAY, 1000]. */
  scheduledDelayMillis?: number;
  /** Timeout of one inner export (a spool write) [env OTEL_BLRP_EXPORT_TIMEOUT, 30000]. */
  exportTimeoutMillis?: number;
  /** The write-ahead log; `false` keeps records in memory only (lost on exit). */
  spool?:
    | false
    | {
        /**
         * [env KUBERNAUT_AUDIT_SPOOL_DIR, else <os tmpdir>/kubernaut-audit/<OTEL_SERVICE_NAME or
         * "default">-<8 hex of the SHA-256 of the DataStorage URL>]
         */
        directory?: string;
        /** Bound of live frame bytes; records that do not fit are dropped and counted [2 GiB]. */
        maxBytes?: number;
        /** `batch`: spooled within scheduledDelayMillis of emit; `sync`: before emit() returns ['batch']. */
        durability?: SpoolDurability;
      };
  /** Records that can never be accepted [<spool directory>/dead-letter.jsonl, 100 MiB]. */
  deadLetter?: { path?: string; maxBytes?: number };
  /** How long shutdown() keeps delivering before leaving the rest in the spool [30000]. */
  shutdownTimeoutMillis?: number;
  /** Spool writes and deliveries slower than this are counted and reported [2000]. */
  slowExportThresholdMillis?: number;
  /** Where the processor's metrics go [the global MeterProvider, resolved at first use]. */
  meterProvider?: MeterProvider;
  /**
   * Stamps every accepted record with provenance in `event_data.audit_provenance` (producer
   * id, session id, seq, hash chain) so that `kubernaut-audit verify` can prove the trail
   * complete (DESIGN §11) [true].
   */
  provenance?: boolean;
  /**
   * Parallel delivery lanes (partitions by correlation id hash) of a new spool [4].
   * @experimental
   */
  senderLanes?: number;
  /**
   * Keeps event timestamps strictly increasing per correlation id (a timestamp not later than
   * the previous one of its correlation becomes that one + 1 µs; the original is kept in the
   * provenance as `original_timestamp`), so that DataStorage's verify-chain, which walks a
   * correlation in timestamp order, never reads reordered events as tampered [false].
   * @experimental
   */
  monotonicTimestamps?: boolean;
}

/** Every option resolved. */
export interface ResolvedProcessorConfig {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  shutdownTimeoutMillis: number;
  slowExportThresholdMillis: number;
  durability: SpoolDurability;
  /** undefined: memory only (`spool: false`). */
  spool: { directory: string | undefined; maxBytes: number } | undefined;
  deadLetter: { path: string | undefined; maxBytes: number };
  provenance: boolean;
  lanes: number;
  monotonicTimestamps: boolean;
  serviceName: string | undefined;
}

const log = new ComponentDiag('AuditLogRecordProcessor');

/** The code option when valid (floored), else the environment's value, else `def`. */
function pick(
  name: string,
  code: number | undefined,
  env: number | undefined,
  def: number,
  min: number,
): number {
  const valid = numberOption(name, code, { min }, (m) => log.warn(`${m}; using ${env ?? def}`));
  return valid === undefined ? (env ?? def) : Math.floor(valid);
}

/** Resolves the processor's options (see the module comment). */
export function resolveProcessorConfig(
  options: AuditLogRecordProcessorOptions,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedProcessorConfig {
  const e = readProcessorEnv(env);
  const maxQueueSize = pick(
    'maxQueueSize',
    options.maxQueueSize,
    e.maxQueueSize,
    DEFAULT_MAX_QUEUE_SIZE,
    1,
  );
  const spoolOpt = options.spool === false ? undefined : (options.spool ?? {});
  let durability = spoolOpt?.durability ?? e.spoolDurability ?? 'batch';
  if (durability !== 'batch' && durability !== 'sync') {
    log.warn(`unknown spool durability ${String(durability)}; using "batch"`);
    durability = 'batch';
  }
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(
      maxQueueSize,
      pick(
        'maxExportBatchSize',
        options.maxExportBatchSize,
        e.maxExportBatchSize,
        DEFAULT_MAX_EXPORT_BATCH_SIZE,
        1,
      ),
    ),
    scheduledDelayMillis: pick(
      'scheduledDelayMillis',
      options.scheduledDelayMillis,
      e.scheduledDelayMillis,
      DEFAULT_SCHEDULED_DELAY_MILLIS,
      0,
    ),
    exportTimeoutMillis: pick(
      'exportTimeoutMillis',
      options.exportTimeoutMillis,
      e.exportTimeoutMillis,
      DEFAULT_EXPORT_TIMEOUT_MILLIS,
      1,
    ),
    shutdownTimeoutMillis: pick(
      'shutdownTimeoutMillis',
      options.shutdownTimeoutMillis,
      undefined,
      DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
      0,
    ),
    slowExportThresholdMillis: pick(
      'slowExportThresholdMillis',
      options.slowExportThresholdMillis,
      undefined,
      DEFAULT_SLOW_EXPORT_THRESHOLD_MILLIS,
      0,
    ),
    durability,
    spool:
      spoolOpt === undefined
        ? undefined
        : {
            directory: spoolOpt.directory ?? e.spoolDirectory,
            maxBytes: pick(
              'spool.maxBytes',
              spoolOpt.maxBytes,
              e.spoolMaxBytes,
              DEFAULT_SPOOL_MAX_BYTES,
              1,
            ),
          },
    deadLetter: {
      path: options.deadLetter?.path,
      maxBytes: pick(
        'deadLetter.maxBytes',
        options.deadLetter?.maxBytes,
        undefined,
        DEFAULT_DEAD_LETTER_MAX_BYTES,
        1,
      ),
    },
    provenance: options.provenance !== false,
    lanes: Math.min(64, pick('senderLanes', options.senderLanes, undefined, DEFAULT_LANES, 1)),
    monotonicTimestamps: options.monotonicTimestamps === true,
    serviceName: e.serviceName,
  };
}

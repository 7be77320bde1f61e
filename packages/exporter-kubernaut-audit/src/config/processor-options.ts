// SPDX-License-Identifier: Apache-2.0
/*
 * config/: the processor's options (DESIGN §3) resolved against the environment, once, by one
 * rule set: code options win over environment variables; an invalid value (a wrong type, a
 * `spool` or `deadLetter` that is not an object) is reported through diag and the next source
 * (environment, then default) is used; durations are capped at what a timer can wait;
 * maxExportBatchSize > maxQueueSize is clamped with OTel's BatchLogRecordProcessor's warning;
 * paths are made absolute once (`~` expanded, with a warning). Nothing here throws.
 */
import { numberOption } from '@kubernaut/datastorage-contract/config';
import type { Logger, MeterProvider } from '@opentelemetry/api';
import type { KubernautAuditExporter } from '../exporter/kubernaut-audit-exporter.ts';
import { ComponentDiag } from '../measure/diag.ts';
import { DEFAULT_DEAD_LETTER_MAX_BYTES } from '../spool/dead-letter.ts';
import { DEFAULT_LANES, DEFAULT_SPOOL_MAX_BYTES } from '../spool/spool.ts';
import { absolutePath, capTimer, MAX_TIMER_MILLIS, textOption } from './option-rules.ts';
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
   * An Ed25519 private key (PEM, PKCS#8) with which the head of the provenance chain is signed
   * once per spool write and on shutdown; the signature travels in the stamp of the write's
   * last record and the signed heads are appended to `<spool directory>/digest.log`, so that
   * `kubernaut-audit verify --public-key` can tell records the producer wrote from records
   * rewritten with every hash recomputed. A key that cannot be used is a diag error and the
   * processor runs unsigned [env KUBERNAUT_AUDIT_SIGNING_KEY_FILE, none: unsigned].
   */
  signingKeyFile?: string;
  /**
   * A second destination of the signed chain heads (with `signingKeyFile`), besides
   * `<spool directory>/digest.log`: each head is emitted as a log record (event name
   * `kubernaut.audit.chain_head`, the head as its body) to this logger — e.g. one of a
   * LoggerProvider of its own with a BatchLogRecordProcessor and an OTLPLogExporter to an
   * endpoint outside DataStorage's reach. Shut that provider down after this processor.
   * @experimental
   */
  digestLogger?: Logger;
  /**
   * Sets the OTEP 0267 names `audit.sequence.number` (the provenance seq) and `audit.record.id`
   * (`<producer_id>/<seq>`) on each audit record at emit, when absent, so that processors and
   * exporters reading the record after this one carry them. Costs ~0.25 µs per emit [false].
   * @experimental
   */
  recordAttributes?: boolean;
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
  /** Path of the chain-head signing key; undefined: unsigned. */
  signingKeyFile: string | undefined;
  recordAttributes: boolean;
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

/** As {@link pick}, for a duration: longer than a timer can wait (Infinity too) → capped. */
function pickDuration(
  name: string,
  code: number | undefined,
  env: number | undefined,
  def: number,
  min: number,
): number {
  if (typeof code === 'number' && code > MAX_TIMER_MILLIS) {
    return capTimer(`${name} ${code}`, code, (m) => log.warn(m));
  }
  return pick(name, code, env, def, min);
}

/** An object-valued option; anything else but absence is reported and ignored. */
function shape<T extends object>(name: string, value: unknown, expected: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) return value as T;
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  log.warn(`invalid ${name} (${shown}): expected ${expected}; using the default`);
  return undefined;
}

/** A path option (code, else environment) made absolute; undefined when neither is set. */
function pathOption(name: string, code: unknown, envName: string, env: string | undefined) {
  const fromCode = textOption(name, code, (m) => log.warn(`${m}; using the default`));
  if (fromCode !== undefined) return absolutePath(name, fromCode, (m) => log.warn(m));
  return env === undefined ? undefined : absolutePath(envName, env, (m) => log.warn(m));
}

/** Default of forceFlush()'s `timeoutMillis`. */
export const DEFAULT_FLUSH_TIMEOUT_MILLIS = 30_000;

/**
 * forceFlush()'s `timeoutMillis`: absent → 30000; a number >= 0 as given, capped at what a timer
 * can wait (so `Infinity` waits as long as a timer can); anything else (NaN, negative, a string)
 * is reported and the default used.
 */
export function flushTimeoutMillis(value: unknown): number {
  if (value === undefined) return DEFAULT_FLUSH_TIMEOUT_MILLIS;
  if (typeof value === 'number' && value >= 0) return Math.min(value, MAX_TIMER_MILLIS);
  log.warn(
    `invalid forceFlush timeoutMillis (${typeof value === 'string' ? JSON.stringify(value) : String(value)}): expected a number >= 0; using ${DEFAULT_FLUSH_TIMEOUT_MILLIS}`,
  );
  return DEFAULT_FLUSH_TIMEOUT_MILLIS;
}

/** Resolves the processor's options (see the module comment). */
export function resolveProcessorConfig(
  input: AuditLogRecordProcessorOptions | null,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedProcessorConfig {
  const options = input ?? {};
  const e = readProcessorEnv(env);
  const maxQueueSize = pick(
    'maxQueueSize',
    options.maxQueueSize,
    e.maxQueueSize,
    DEFAULT_MAX_QUEUE_SIZE,
    1,
  );
  let maxExportBatchSize = pick(
    'maxExportBatchSize',
    options.maxExportBatchSize,
    e.maxExportBatchSize,
    DEFAULT_MAX_EXPORT_BATCH_SIZE,
    1,
  );
  if (maxExportBatchSize > maxQueueSize) {
    // OTel's BatchLogRecordProcessor's words and rule.
    log.warn(
      `maxExportBatchSize must be smaller or equal to maxQueueSize, setting maxExportBatchSize to match maxQueueSize (${maxQueueSize})`,
    );
    maxExportBatchSize = maxQueueSize;
  }
  type SpoolOption = Exclude<AuditLogRecordProcessorOptions['spool'], false | undefined>;
  const spoolOpt =
    options.spool === false
      ? undefined
      : (shape<SpoolOption>(
          'spool',
          options.spool,
          'false or { directory, maxBytes, durability }',
        ) ?? {});
  const deadLetterOpt = shape<NonNullable<AuditLogRecordProcessorOptions['deadLetter']>>(
    'deadLetter',
    options.deadLetter,
    '{ path, maxBytes }',
  );
  let durability = spoolOpt?.durability ?? e.spoolDurability ?? 'batch';
  if (durability !== 'batch' && durability !== 'sync') {
    log.warn(`unknown spool durability ${String(durability)}; using "batch"`);
    durability = 'batch';
  }
  return {
    maxQueueSize,
    maxExportBatchSize,
    scheduledDelayMillis: pickDuration(
      'scheduledDelayMillis',
      options.scheduledDelayMillis,
      e.scheduledDelayMillis,
      DEFAULT_SCHEDULED_DELAY_MILLIS,
      0,
    ),
    exportTimeoutMillis: pickDuration(
      'exportTimeoutMillis',
      options.exportTimeoutMillis,
      e.exportTimeoutMillis,
      DEFAULT_EXPORT_TIMEOUT_MILLIS,
      1,
    ),
    shutdownTimeoutMillis: pickDuration(
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
            directory: pathOption(
              'spool.directory',
              spoolOpt.directory,
              'KUBERNAUT_AUDIT_SPOOL_DIR',
              e.spoolDirectory,
            ),
            maxBytes: pick(
              'spool.maxBytes',
              spoolOpt.maxBytes,
              e.spoolMaxBytes,
              DEFAULT_SPOOL_MAX_BYTES,
              1,
            ),
          },
    deadLetter: {
      path: pathOption('deadLetter.path', deadLetterOpt?.path, '', undefined),
      maxBytes: pick(
        'deadLetter.maxBytes',
        deadLetterOpt?.maxBytes,
        undefined,
        DEFAULT_DEAD_LETTER_MAX_BYTES,
        1,
      ),
    },
    provenance: options.provenance !== false,
    signingKeyFile:
      textOption('signingKeyFile', options.signingKeyFile, (m) =>
        log.warn(`${m}; using ${e.signingKeyFile ?? 'none (unsigned)'}`),
      ) ?? e.signingKeyFile,
    recordAttributes: options.recordAttributes === true && options.provenance !== false,
    lanes: Math.min(64, pick('senderLanes', options.senderLanes, undefined, DEFAULT_LANES, 1)),
    monotonicTimestamps: options.monotonicTimestamps === true,
    serviceName: e.serviceName,
  };
}

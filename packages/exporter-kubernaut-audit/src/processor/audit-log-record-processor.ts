// SPDX-License-Identifier: Apache-2.0
/*
 * AuditLogRecordProcessor (DESIGN §3, §6, §7): picks audit records out of the OTel log
 * stream, maps and validates them at emit, and makes their delivery durable:
 *
 *   onEmit ─▶ map ─▶ inner OTel BatchLogRecordProcessor ─▶ spool (write-ahead log) ─▶ sender ─▶ DataStorage
 *
 * The inner BatchLogRecordProcessor is composed, not copied: its batch size, timer and queue
 * limit decide when records are written to the spool. Its exporter writes to the spool and
 * succeeds once written. Records it would drop because its queue is full are detected
 * through its self-observability tap and written to the spool by this processor, in emit
 * order (pending records are written as one ordered FIFO, so a spool write always takes a
 * prefix of what was emitted).
 */

import { join } from 'node:path';
import type { AuditEventRequest, ContractViolation } from '@kubernaut/datastorage-contract';
import { errorText, numberOption } from '@kubernaut/datastorage-contract/config';
import type { Context, MeterProvider } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import {
  BatchLogRecordProcessor,
  type ForceFlushOptions,
  type LogRecordExporter,
  type LogRecordProcessor,
  type ReadableLogRecord,
  type ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import {
  DEFAULT_EXPORT_TIMEOUT_MILLIS,
  DEFAULT_MAX_EXPORT_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  DEFAULT_SCHEDULED_DELAY_MILLIS,
  DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
  DEFAULT_SLOW_EXPORT_THRESHOLD_MILLIS,
  defaultSpoolDirectory,
  readProcessorEnv,
  type SpoolDurability,
} from '../config/processor-env.ts';
import {
  DEFAULT_DEAD_LETTER_MAX_BYTES,
  DeadLetterWriter,
} from '../dead-letter/dead-letter-writer.ts';
import { ComponentDiag, type DiagLevel } from '../diag/component-diag.ts';
import {
  deliverEvents,
  isKubernautAuditExporter,
  KubernautAuditExporter,
  openApiValidatorOf,
  useDeadLetterWriter,
} from '../exporter/kubernaut-audit-exporter.ts';
import { isAuditRecord, type MapOptions, mapLogRecord } from '../mapping/index.ts';
import { ProcessorMetrics } from '../metrics/processor-metrics.ts';
import { ProvenanceStamper } from '../provenance/stamper.ts';
import { SpoolSender } from '../sender/spool-sender.ts';
import {
  auditRecordReceived,
  processorCreated,
  processorShuttingDown,
} from '../setup-checks/index.ts';
import { DEFAULT_SPOOL_MAX_BYTES, MemorySpool, openSpool } from '../spool/index.ts';
import { encodeSpooled } from '../spool/spooled-record.ts';
import type { AuditSpool, SpoolEntry } from '../spool/types.ts';
import { createDropTap } from './drop-tap.ts';

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
        /** [env KUBERNAUT_AUDIT_SPOOL_DIR, else <os tmpdir>/kubernaut-audit/<OTEL_SERVICE_NAME or "default">] */
        directory?: string;
        /** Bound of unacknowledged bytes; records that do not fit are dropped and counted [1 GiB]. */
        maxBytes?: number;
        /** `batch`: spooled within scheduledDelayMillis; `sync`: spooled before emit() returns ['batch']. */
        durability?: SpoolDurability;
      };
  /** Records that can never be accepted [<spool directory>/dead-letter.jsonl, 100 MiB]. */
  deadLetter?: { path?: string; maxBytes?: number };
  /** How long shutdown() keeps delivering before leaving the rest in the spool [30000]. */
  shutdownTimeoutMillis?: number;
  /** Exports slower than this are counted and reported [2000]. */
  slowExportThresholdMillis?: number;
  /** Where the processor's metrics go [the global MeterProvider, resolved at first use]. */
  meterProvider?: MeterProvider;
  /**
   * Stamps every accepted record with provenance in `event_data.audit_provenance` (producer
   * id, session id, gap-free seq, hash chain) so that `kubernaut-audit verify` can prove the
   * trail complete (DESIGN §11) [true].
   */
  provenance?: boolean;
  /**
   * Parallel delivery lanes (partitions by correlation id hash) [4].
   * @experimental
   */
  senderLanes?: number;
}

/** Rejection of forceFlush() when its timeout passes first. */
export class AuditFlushTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** One mapped record between emit() and the spool. */
interface PendingRecord {
  event: AuditEventRequest | undefined;
  emittedAt: number;
  written: boolean;
  overflow: boolean;
  /** What the inner BatchLogRecordProcessor reads of a record (async resource attributes). */
  resource: ReadableLogRecord['resource'];
}

interface FlushWaiter {
  target: number | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
}

const PREFIX = 'AuditLogRecordProcessor';

/** The code option when valid (floored), else the environment's value, else `def`. */
function pickInt(
  name: string,
  code: number | undefined,
  env: number | undefined,
  def: number,
  min: number,
  log: ComponentDiag,
): number {
  const valid = numberOption(name, code, { min }, (m) => log.warn(`${m}; using ${env ?? def}`));
  return valid === undefined ? (env ?? def) : Math.floor(valid);
}

/**
 * A LogRecordProcessor that delivers audit records (attribute `audit.event.category`) to
 * Kubernaut DataStorage, durably: through a local spool, at least once, in emit order per
 * correlation id. Other records are left untouched. Never throws into application code.
 */
export class AuditLogRecordProcessor implements LogRecordProcessor {
  private readonly _exporter: KubernautAuditExporter;
  private readonly _spool: AuditSpool;
  private readonly _memoryOnly: boolean;
  private readonly _durability: SpoolDurability;
  private readonly _inner: BatchLogRecordProcessor | undefined;
  private readonly _sender: SpoolSender;
  private readonly _deadLetters: DeadLetterWriter;
  private readonly _metrics: ProcessorMetrics;
  private readonly _provenance: ProvenanceStamper | undefined;
  private readonly _diag = new ComponentDiag(PREFIX);
  private readonly _maxQueueSize: number;
  private readonly _maxExportBatchSize: number;
  private readonly _scheduledDelayMillis: number;
  private readonly _shutdownTimeoutMillis: number;
  private readonly _slowMillis: number;

  // Ordered FIFO of records emitted and not yet written to the spool.
  private _pending: Array<PendingRecord | undefined> = [];
  private _head = 0;
  private _overflowUnwritten = 0;
  private _overflowTimer: NodeJS.Timeout | undefined;
  private _queueFullSignal = 0;
  private _innerOutstanding = 0;
  private _timerArmedAt: number | undefined;
  private _innerFlushing = 0;

  private _lastSeq: number | undefined;
  private _waiters: FlushWaiter[] = [];
  private _startupCorrupted: number;
  private _metricsStarted = false;
  private _shutdownStarted = false;
  private _spoolClosed = false;
  private _shutdownPromise: Promise<void> | undefined;
  private readonly _deadLetterWrites = new Set<Promise<unknown>>();
  private _mapOpts: MapOptions | undefined;

  constructor(options: AuditLogRecordProcessorOptions = {}) {
    processorCreated(this._diag);
    const env = readProcessorEnv();
    this._maxQueueSize = pickInt(
      'maxQueueSize',
      options.maxQueueSize,
      env.maxQueueSize,
      DEFAULT_MAX_QUEUE_SIZE,
      1,
      this._diag,
    );
    this._maxExportBatchSize = Math.min(
      this._maxQueueSize,
      pickInt(
        'maxExportBatchSize',
        options.maxExportBatchSize,
        env.maxExportBatchSize,
        DEFAULT_MAX_EXPORT_BATCH_SIZE,
        1,
        this._diag,
      ),
    );
    this._scheduledDelayMillis = pickInt(
      'scheduledDelayMillis',
      options.scheduledDelayMillis,
      env.scheduledDelayMillis,
      DEFAULT_SCHEDULED_DELAY_MILLIS,
      0,
      this._diag,
    );
    const exportTimeoutMillis = pickInt(
      'exportTimeoutMillis',
      options.exportTimeoutMillis,
      env.exportTimeoutMillis,
      DEFAULT_EXPORT_TIMEOUT_MILLIS,
      1,
      this._diag,
    );
    this._shutdownTimeoutMillis = pickInt(
      'shutdownTimeoutMillis',
      options.shutdownTimeoutMillis,
      undefined,
      DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
      0,
      this._diag,
    );
    this._slowMillis = pickInt(
      'slowExportThresholdMillis',
      options.slowExportThresholdMillis,
      undefined,
      DEFAULT_SLOW_EXPORT_THRESHOLD_MILLIS,
      0,
      this._diag,
    );

    const spoolOpt = options.spool === false ? undefined : (options.spool ?? {});
    const directory =
      spoolOpt?.directory ?? env.spoolDirectory ?? defaultSpoolDirectory(env.serviceName);
    const maxBytes = pickInt(
      'spool.maxBytes',
      spoolOpt?.maxBytes,
      env.spoolMaxBytes,
      DEFAULT_SPOOL_MAX_BYTES,
      1,
      this._diag,
    );
    this._durability = spoolOpt?.durability ?? env.spoolDurability ?? 'batch';
    if (this._durability !== 'batch' && this._durability !== 'sync') {
      this._diag.warn(`unknown spool durability ${String(this._durability)}; using "batch"`);
      this._durability = 'batch';
    }

    let fellBack = false;
    if (spoolOpt === undefined) {
      this._spool = new MemorySpool({ maxBytes });
    } else {
      this._spool = openSpool({ directory, maxBytes, durability: this._durability }, (err) => {
        fellBack = true;
        this._diag.warn(
          `cannot open the spool in ${directory} (${err.message}); audit records are kept in memory only and are lost if the process exits before delivery`,
        );
      });
    }
    this._memoryOnly = fellBack || this._spool.kind === 'memory';
    // Provenance state lives beside the spool (its lock covers it); in memory when the spool does.
    this._provenance =
      options.provenance === false
        ? undefined
        : ProvenanceStamper.open({
            producerId: this._spool.producerId,
            ...(this._memoryOnly ? {} : { directory }),
          });
    this._startupCorrupted = safeStats(this._spool)?.corruptedSkipped ?? 0;

    this._metrics = new ProcessorMetrics({
      meterProvider: options.meterProvider,
      observations: {
        queueSize: () => this._pending.length - this._head,
        queueCapacity: () => this._maxQueueSize,
        spoolBytes: () => safeStats(this._spool)?.bytes ?? 0,
        spoolOldestAgeMillis: () => {
          const oldest = safeStats(this._spool)?.oldestAppendedAt;
          return oldest === undefined ? undefined : Math.max(0, Date.now() - oldest);
        },
        memoryOnly: () => this._memoryOnly,
      },
    });
    if (options.meterProvider) this._startMetrics();
    else if (this._startupCorrupted > 0) {
      // Report start-up corruption once the application had a chance to register its
      // global MeterProvider (NodeSDK.start() runs after the processors are constructed).
      setImmediate(() => this._startMetrics()).unref();
    }
    if (fellBack) this._report('warn', 'spool open failures (memory-only)', 1);

    this._deadLetters = new DeadLetterWriter({
      path: options.deadLetter?.path ?? join(directory, 'dead-letter.jsonl'),
      maxBytes: options.deadLetter?.maxBytes ?? DEFAULT_DEAD_LETTER_MAX_BYTES,
      meterProvider: options.meterProvider,
    });
    this._exporter =
      options.exporter ?? new KubernautAuditExporter({ meterProvider: options.meterProvider });
    if (isKubernautAuditExporter(this._exporter)) {
      useDeadLetterWriter(this._exporter, this._deadLetters);
    } else {
      this._diag.error(
        `the exporter option is not a KubernautAuditExporter of this copy of @kubernaut/exporter-kubernaut-audit (an ESM and a CommonJS copy loaded side by side?); audit records stay in the spool undelivered`,
      );
    }
    const exporter = this._exporter;

    this._sender = new SpoolSender({
      spool: this._spool,
      deliverer: { deliver: (events, opts) => deliverEvents(exporter, events, opts) },
      lanes: options.senderLanes,
      onAccepted: (emittedAt) => this._metrics.deliveryLatency(Date.now() - emittedAt),
      onUndecodable: (entry) => this._onUndecodable(entry),
      onDeliverDuration: (millis, events) => {
        if (millis > this._slowMillis) {
          this._metrics.slowExport('deliver');
          this._report(
            'warn',
            'slow deliveries to DataStorage',
            1,
            `last took ${Math.round(millis)} ms for ${events} events (threshold ${this._slowMillis} ms)`,
          );
        }
      },
      onSettled: () => this._checkWaiters(),
      onError: (err) => this._report('error', 'sender errors', 1, errorText(err)),
    });

    if (this._durability === 'batch') {
      this._inner = new BatchLogRecordProcessor({
        exporter: this._createSpoolingExporter(),
        maxQueueSize: this._maxQueueSize,
        maxExportBatchSize: this._maxExportBatchSize,
        scheduledDelayMillis: this._scheduledDelayMillis,
        exportTimeoutMillis,
        selfObsMeterProvider: createDropTap((n) => {
          this._queueFullSignal += n;
        }),
      });
    }

    // Deliver what a predecessor left in the spool.
    if ((safeStats(this._spool)?.records ?? 0) > 0) this._sender.wake();
  }

  /**
   * Where records wait for delivery: `'file'` (durable: survives a crash) or `'memory'` (when
   * `spool: false`, or when the spool directory could not be opened).
   * @experimental
   */
  get spoolKind(): 'file' | 'memory' {
    return this._memoryOnly ? 'memory' : 'file';
  }

  /** Maps and spools audit records; leaves every other record untouched. Never throws. */
  onEmit(logRecord: ReadWriteLogRecord, _context?: Context): void {
    try {
      if (!isAuditRecord(logRecord)) return;
      auditRecordReceived(logRecord, this._diag);
      if (!this._metricsStarted) this._startMetrics();
      const emittedAt = Date.now();
      const mapped = mapLogRecord(logRecord, this._mapOptions());
      if (!mapped.ok) {
        this._rejectInvalid(logRecord, mapped.violations);
        return;
      }
      if (mapped.omitted.length > 0) {
        for (const v of mapped.omitted) this._metrics.invalid(v.reason);
        this._report(
          'warn',
          'invalid optional fields left out of audit events',
          mapped.omitted.length,
          describe(mapped.omitted),
        );
      }
      const rec: PendingRecord = {
        event: this._provenance ? this._provenance.stamp(mapped.event) : mapped.event,
        emittedAt,
        written: false,
        overflow: false,
        resource: logRecord.resource,
      };
      this._pending.push(rec);
      if (this._inner === undefined || this._shutdownStarted) {
        // durability 'sync' (or shutting down): written, in order, before emit() returns.
        this._writeThrough(rec);
        return;
      }
      const before = this._queueFullSignal;
      this._inner.onEmit(rec as unknown as ReadWriteLogRecord);
      if (this._queueFullSignal !== before) {
        // The inner queue is full: the record is ours to spool (in order, with what precedes it).
        rec.overflow = true;
        this._overflowUnwritten++;
        this._metrics.processedError(1, 'queue_full');
        this._report(
          'warn',
          'audit records overflowed the batch queue (written to the spool directly, not lost)',
          1,
          `maxQueueSize ${this._maxQueueSize}`,
        );
        if (this._overflowUnwritten >= this._maxExportBatchSize) this._writeThrough(rec);
        else this._armOverflowTimer();
      } else {
        if (this._innerOutstanding === 0) this._timerArmedAt = performance.now();
        this._innerOutstanding++;
      }
    } catch (err) {
      this._report('error', 'internal errors in onEmit', 1, errorText(err));
    }
  }

  /**
   * Full OpenAPI validation at emit when the exporter was given `openapiSpec` (once its
   * validator is loaded).
   */
  private _mapOptions(): MapOptions {
    if (this._mapOpts === undefined) {
      try {
        const spec = openApiValidatorOf(this._exporter);
        const opts: MapOptions = spec.validator ? { openApi: spec.validator } : {};
        // While the spec is still loading, records are checked against the contract rules.
        if (!spec.settled) return opts;
        this._mapOpts = opts;
      } catch (err) {
        this._diag.warn(`OpenAPI validator unavailable: ${errorText(err)}`);
        this._mapOpts = {};
      }
    }
    return this._mapOpts;
  }

  /**
   * Resolves when every record emitted before the call, and everything already in the
   * spool, is settled (accepted, dead-lettered, or dropped and counted). Rejects with a
   * TimeoutError when `timeoutMillis` [30000] passes first.
   */
  forceFlush(options?: ForceFlushOptions): Promise<void> {
    const timeout = options?.timeoutMillis ?? 30_000;
    return withTimeout(this._flush(), timeout, () => {
      const left = safeStats(this._spool)?.records ?? 0;
      return new AuditFlushTimeoutError(
        `${PREFIX}.forceFlush timed out after ${timeout} ms with ${left} record(s) not yet delivered (kept in the spool)`,
      );
    });
  }

  /**
   * Writes what is queued to the spool and delivers until the spool is empty or
   * shutdownTimeoutMillis passes; what is left stays in the spool for the next process.
   */
  shutdown(): Promise<void> {
    this._shutdownPromise ??= this._shutdown();
    return this._shutdownPromise;
  }

  private async _shutdown(): Promise<void> {
    try {
      processorShuttingDown();
      // From here on, emit() writes to the spool directly (the inner processor stops taking records).
      this._shutdownStarted = true;
      if (this._inner) {
        this._innerFlushing++;
        try {
          await this._inner.shutdown();
        } finally {
          this._innerFlushing--;
        }
      }
      this._writeThrough(undefined);
      try {
        await withTimeout(this._waitSettled(this._lastSeq), this._shutdownTimeoutMillis, () => {
          return new AuditFlushTimeoutError('shutdown timeout');
        });
      } catch {
        const left = safeStats(this._spool)?.records ?? 0;
        this._diag.warn(
          `shutdown after ${this._shutdownTimeoutMillis} ms with ${left} audit record(s) undelivered; they stay in the spool and the next process on it delivers them`,
        );
      }
      await this._sender.stop();
      this._writeThrough(undefined);
      // Flushes still waiting: settled ones resolve, the others learn that the rest stays in the spool.
      this._checkWaiters();
      const left = safeStats(this._spool)?.records ?? 0;
      for (const w of this._waiters) {
        w.reject(
          new Error(
            `${PREFIX} was shut down with ${left} record(s) undelivered (kept in the spool)`,
          ),
        );
      }
      this._waiters = [];
      this._spoolClosed = true;
      try {
        this._spool.close();
      } catch (err) {
        this._diag.error(`closing the spool failed: ${errorText(err)}`);
      }
      this._provenance?.close();
      await this._exporter.shutdown().catch((err: unknown) => {
        this._diag.warn(`exporter shutdown failed: ${errorText(err)}`);
      });
      await this._deadLetters.close();
    } catch (err) {
      this._diag.error(`shutdown failed: ${errorText(err)}`);
    } finally {
      this._diag.flush();
    }
  }

  private async _flush(): Promise<void> {
    if (this._spoolClosed) return;
    if (this._inner) {
      this._innerFlushing++;
      try {
        await this._inner.forceFlush();
      } finally {
        this._innerFlushing--;
      }
    }
    this._writeThrough(undefined);
    await this._waitSettled(this._lastSeq);
    await Promise.allSettled([...this._deadLetterWrites]);
  }

  private _writeDeadLetter(entry: Parameters<DeadLetterWriter['write']>[0][number]): void {
    const p = this._deadLetters.write([entry]);
    this._deadLetterWrites.add(p);
    void p.finally(() => this._deadLetterWrites.delete(p));
  }

  /** Resolves once no unacknowledged spool record has a seq ≤ target (all, when undefined). */
  private _waitSettled(target: number | undefined): Promise<void> {
    if (this._spoolClosed || this._settledThrough(target)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this._waiters.push({ target, resolve, reject });
      this._sender.wake();
    });
  }

  private _settledThrough(target: number | undefined): boolean {
    try {
      if (target === undefined) return this._spool.stats().records === 0;
      const oldest = this._spool.readUnacked(1)[0];
      return oldest === undefined || oldest.seq > target;
    } catch {
      return false;
    }
  }

  private _checkWaiters(): void {
    if (this._waiters.length === 0) return;
    const still: FlushWaiter[] = [];
    for (const w of this._waiters) {
      if (this._settledThrough(w.target)) w.resolve();
      else still.push(w);
    }
    this._waiters = still;
  }

  /** The exporter of the inner BatchLogRecordProcessor: writes its batches to the spool. */
  private _createSpoolingExporter(): LogRecordExporter {
    return {
      export: (records: ReadableLogRecord[], resultCallback: (result: ExportResult) => void) => {
        try {
          this._onInnerBatch(records as unknown as PendingRecord[]);
        } catch (err) {
          this._report('error', 'internal errors writing to the spool', 1, errorText(err));
        }
        resultCallback({ code: ExportResultCode.SUCCESS });
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
  }

  private _onInnerBatch(batch: PendingRecord[]): void {
    if (batch.length === 0) return;
    const now = performance.now();
    this._innerOutstanding = Math.max(0, this._innerOutstanding - batch.length);
    if (
      this._innerFlushing === 0 &&
      batch.length < this._maxExportBatchSize &&
      this._timerArmedAt !== undefined
    ) {
      // A timer-driven export: how late did it start?
      const drift = now - this._timerArmedAt - this._scheduledDelayMillis;
      this._metrics.timerDrift(drift);
      if (drift > Math.max(100, this._scheduledDelayMillis)) {
        this._report(
          'warn',
          'late batch timers (event loop blocked?)',
          1,
          `last started ${Math.round(drift)} ms late`,
        );
      }
    }
    const last = batch[batch.length - 1] as PendingRecord;
    if (!last.written) this._writeThrough(last);
    this._timerArmedAt = this._innerOutstanding > 0 ? now : undefined;
  }

  private _armOverflowTimer(): void {
    if (this._overflowTimer !== undefined) return;
    this._overflowTimer = setTimeout(() => {
      this._overflowTimer = undefined;
      try {
        this._writeThrough(undefined);
      } catch (err) {
        this._report('error', 'internal errors writing to the spool', 1, errorText(err));
      }
    }, this._scheduledDelayMillis);
    this._overflowTimer.unref();
  }

  /** Writes the pending FIFO to the spool up to and including `last` (everything when undefined). */
  private _writeThrough(last: PendingRecord | undefined): void {
    if (this._head >= this._pending.length) return;
    const payloads: string[] = [];
    let overflow = 0;
    while (this._head < this._pending.length) {
      const rec = this._pending[this._head] as PendingRecord;
      this._pending[this._head] = undefined;
      this._head++;
      rec.written = true;
      if (rec.overflow) overflow++;
      payloads.push(encodeSpooled(rec.event as AuditEventRequest, rec.emittedAt));
      rec.event = undefined;
      if (rec === last) break;
    }
    if (this._head === this._pending.length) {
      this._pending = [];
      this._head = 0;
    } else if (this._head > 4096 && this._head * 2 > this._pending.length) {
      this._pending = this._pending.slice(this._head);
      this._head = 0;
    }
    this._overflowUnwritten = Math.max(0, this._overflowUnwritten - overflow);
    if (this._overflowUnwritten === 0 && this._overflowTimer !== undefined) {
      clearTimeout(this._overflowTimer);
      this._overflowTimer = undefined;
    }
    this._append(payloads);
  }

  /** Appends to the spool; drops are counted and reported. Never throws. */
  private _append(payloads: string[]): void {
    if (payloads.length === 0) return;
    if (this._spoolClosed) {
      this._metrics.spoolDropped(payloads.length, 'closed');
      this._metrics.processedError(payloads.length, 'shutdown');
      this._report('error', 'audit records dropped: emitted after shutdown', payloads.length);
      return;
    }
    const started = performance.now();
    let appended = 0;
    let dropped = payloads.length;
    let error: Error | undefined;
    try {
      const r = this._spool.append(payloads);
      appended = r.appended;
      dropped = r.dropped;
      error = r.error;
      if (r.appended > 0 && r.firstSeq !== undefined) {
        const last = r.firstSeq + r.appended - 1;
        if (this._lastSeq === undefined || last > this._lastSeq) this._lastSeq = last;
      }
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    const took = performance.now() - started;
    if (took > this._slowMillis) {
      this._metrics.slowExport('spool');
      this._report('warn', 'slow spool writes', 1, `last took ${Math.round(took)} ms`);
    }
    this._metrics.processed(appended);
    if (dropped > 0) {
      const reason = error ? 'error' : 'full';
      this._metrics.spoolDropped(dropped, reason);
      this._metrics.processedError(dropped, reason === 'full' ? 'spool_full' : 'spool_error');
      this._report(
        'error',
        reason === 'full'
          ? 'audit records dropped: the spool is full (maxBytes)'
          : 'audit records dropped: the spool write failed',
        dropped,
        error ? errorText(error) : '',
      );
      this._checkWaiters();
    }
    if (appended > 0) this._sender.wake();
  }

  private _rejectInvalid(record: ReadableLogRecord, violations: ContractViolation[]): void {
    const reason = violations[0]?.reason ?? 'invalid';
    for (const v of violations) this._metrics.invalid(v.reason);
    this._metrics.processedError(1, 'invalid');
    const detail = describe(violations);
    this._report('warn', 'invalid audit records dead-lettered', 1, detail);
    // The record as emitted (what could not be mapped), so that nothing is lost.
    this._writeDeadLetter({
      reason,
      detail,
      event: {
        record: {
          eventName: record.eventName,
          timestamp: record.hrTime,
          observedTimestamp: record.hrTimeObserved,
          attributes: record.attributes,
          body: record.body,
        },
        violations: violations.map((v) => ({ ...v })),
        // The seq it consumed: the verifier counts it as rejected, not lost.
        ...(this._provenance ? { audit_provenance: this._provenance.reserveRejected(reason) } : {}),
      },
    });
  }

  private _onUndecodable(entry: SpoolEntry): void {
    this._metrics.spoolCorrupted(1);
    this._report('error', 'undecodable spool records dead-lettered', 1, `seq ${entry.seq}`);
    this._writeDeadLetter({
      reason: 'corrupted',
      detail: `spool record ${entry.seq} is not a spooled event`,
      event: entry.payload,
    });
  }

  /** Reports `count` occurrences of `kind` (rate-limited): `<count> <kind>: <detail>`. */
  private _report(level: DiagLevel, kind: string, count: number, detail = ''): void {
    if (count <= 0) return;
    this._diag.report(level, kind, `${count} ${kind}${detail ? `: ${detail}` : ''}`, count);
  }

  private _startMetrics(): void {
    if (this._metricsStarted) return;
    this._metricsStarted = true;
    try {
      this._metrics.resolve();
      if (this._startupCorrupted > 0) {
        this._metrics.spoolCorrupted(this._startupCorrupted);
        this._report('warn', 'corrupted spool regions skipped at start-up', this._startupCorrupted);
        this._startupCorrupted = 0;
      }
    } catch (err) {
      this._diag.warn(`metrics unavailable: ${errorText(err)}`);
    }
  }
}

function safeStats(spool: AuditSpool): ReturnType<AuditSpool['stats']> | undefined {
  try {
    return spool.stats();
  } catch {
    return undefined;
  }
}

function describe(violations: readonly ContractViolation[]): string {
  return violations
    .slice(0, 5)
    .map((v) => `${v.field}: ${v.reason} (${v.message})`)
    .join('; ');
}

function withTimeout<T>(work: Promise<T>, millis: number, makeError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // Not unref'd: a process awaiting a flush or shutdown stays alive until it settles.
    const timer = setTimeout(() => reject(makeError()), millis);
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

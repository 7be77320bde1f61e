// SPDX-License-Identifier: Apache-2.0
/*
 * processor/: AuditLogRecordProcessor, the composer (DESIGN §3, §6):
 *
 *   onEmit ─ select ─ intake (FIFO + OTel BatchLogRecordProcessor) ─ drain (map, stamp, encode)
 *          ─ spool ─ sender ─ deliverer ─ DataStorage;   measure/ observes every stage
 *
 * Invariants: the processor holds no per-record logic of its own (each stage states its own
 * invariant); settlement has ONE rule (settlement.ts); nothing throws into application code;
 * nothing the core owns keeps the event loop alive (pending records reach the spool on `exit`);
 * a user's exporter is never modified nor shut down (one the processor built, it shuts down).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { Context } from '@opentelemetry/api';
import type {
  ForceFlushOptions,
  LogRecordProcessor,
  ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import {
  type AuditLogRecordProcessorOptions,
  type ResolvedProcessorConfig,
  resolveProcessorConfig,
} from '../config/processor-options.ts';
import {
  isKubernautAuditExporter,
  KubernautAuditExporter,
  openApiValidatorOf,
} from '../exporter/kubernaut-audit-exporter.ts';
import { Drain, type DrainResult } from '../intake/drain.ts';
import { Intake } from '../intake/intake.ts';
import { TimestampOrder } from '../map/index.ts';
import { ComponentDiag, type DiagLevel } from '../measure/diag.ts';
import { ProcessorMetrics } from '../measure/processor-metrics.ts';
import { ProvenanceStamper } from '../provenance/index.ts';
import { isAuditRecord } from '../select/index.ts';
import { AuditSender } from '../send/sender.ts';
import {
  auditRecordReceived,
  processorCreated,
  processorShuttingDown,
} from '../setup-checks/index.ts';
import { chooseSpool } from '../spool/choose.ts';
import { DEAD_LETTER_FILE, DeadLetterFile } from '../spool/dead-letter.ts';
import { openSpool, type Spool } from '../spool/spool.ts';
import { onProcessExit } from './exit.ts';
import { takeProcessorInternals } from './internals.ts';
import { Settlement } from './settlement.ts';
import { deadLetterPathFor, delivererFor, spoolTailOf } from './wiring.ts';

export type { AuditLogRecordProcessorOptions } from '../config/processor-options.ts';

/** Rejection of forceFlush() when its timeout passes first. */
export class AuditFlushTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

const PREFIX = 'AuditLogRecordProcessor';

/** The spool of each processor, for {@link spoolUsageOf}. */
const spools = new WeakMap<object, Spool>();

/**
 * What the spool of `processor` holds now, O(1): frame bytes of unacknowledged records plus
 * reservations, against its bound; undefined for anything else (e.g. the audit OTLP bridge's
 * admission).
 * @experimental
 */
export function spoolUsageOf(
  processor: unknown,
): { bytes: number; maxBytes: number; kind: 'file' | 'memory' } | undefined {
  const spool = typeof processor === 'object' && processor !== null && spools.get(processor);
  if (!spool) return undefined;
  const s = spool.stats();
  return { bytes: s.bytes + s.reservedBytes, maxBytes: s.maxBytes, kind: spool.kind };
}

/**
 * A LogRecordProcessor that delivers audit records (attribute `audit.event.category`) to
 * Kubernaut DataStorage, durably: through a local spool, at least once, in emit order per
 * correlation id. Other records are left untouched. Never throws into application code.
 */
export class AuditLogRecordProcessor implements LogRecordProcessor {
  private readonly _cfg: ResolvedProcessorConfig;
  private readonly _exporter: KubernautAuditExporter;
  private readonly _ownsExporter: boolean;
  private readonly _destination: string | undefined;
  private readonly _spool: Spool;
  private readonly _stamper: ProvenanceStamper | undefined;
  private readonly _deadLetters: DeadLetterFile;
  private readonly _metrics: ProcessorMetrics;
  private readonly _intake: Intake;
  private readonly _sender: AuditSender;
  private readonly _settlement: Settlement;
  private readonly _diag = new ComponentDiag(PREFIX);
  private readonly _removeExitHook: () => void;
  private _closing = false;
  private _metricsStarted = false;
  private _startupCorrupted = 0;
  private _closed = false;
  private _shutdown: Promise<void> | undefined;

  constructor(options: AuditLogRecordProcessorOptions = {}) {
    processorCreated(this._diag);
    const internals = takeProcessorInternals();
    const cfg = resolveProcessorConfig(options);
    this._cfg = cfg;
    this._ownsExporter = options.exporter === undefined;
    this._exporter =
      options.exporter ?? new KubernautAuditExporter({ meterProvider: options.meterProvider });
    const usable = isKubernautAuditExporter(this._exporter);
    if (!usable) {
      this._diag.error(
        'the exporter option is not a KubernautAuditExporter of this copy of @kubernaut/exporter-kubernaut-audit (an ESM and a CommonJS copy loaded side by side?); audit records stay in the spool undelivered',
      );
    }
    const deliverer = delivererFor(this._exporter, usable, () => this._deadLetters);
    this._destination = deliverer.destination;
    const metrics = new ProcessorMetrics({
      meterProvider: options.meterProvider,
      observations: {
        queueSize: () => this._intake.pending,
        queueCapacity: () => cfg.maxQueueSize,
        spoolBytes: () => this._spool.stats().bytes,
        spoolCapacity: () => this._spool.stats().maxBytes,
        spoolOldestAgeSeconds: () => {
          const t = this._spool.stats().oldestAppendedAt;
          return t === undefined ? undefined : Math.max(0, Date.now() - t) / 1000;
        },
        memoryOnly: () => this._spool.kind === 'memory' || this._spool.holdsUnwritten,
      },
    });
    this._metrics = metrics;
    const session = randomUUID();
    const spoolOptions = {
      ...(internals.fs === undefined ? {} : { fs: internals.fs }),
      lanes: cfg.lanes,
      destination: this._destination,
      service: cfg.serviceName,
      session,
      onOpen: (s: Spool) => this._onSpoolOpen(s),
      onUnavailable: (err: Error) => {
        this._report(
          'warn',
          'spool unavailable: audit records are held in memory only (lost if the process exits) until it can be written; retried in the background',
          1,
          err.message,
        );
      },
    };
    this._spool =
      cfg.spool === undefined
        ? openSpool({ ...spoolOptions, directory: undefined })
        : chooseSpool(cfg.spool.directory, cfg.serviceName, {
            ...spoolOptions,
            maxBytes: cfg.spool.maxBytes,
          });
    spools.set(this, this._spool);
    this._startupCorrupted = this._spool.stats().corrupted;
    this._spool.onCorrupted((n) => metrics.spoolCorrupted(n));
    const opened = this._spool.kind === 'file';
    this._stamper = cfg.provenance
      ? ProvenanceStamper.open({
          producerId: this._spool.meta.producerId,
          blockSize: cfg.maxExportBatchSize,
          ...(opened
            ? { directory: this._spool.directory, spoolTail: spoolTailOf(this._spool) }
            : {}),
          ...(internals.fs === undefined ? {} : { fs: internals.fs }),
        })
      : undefined;
    this._deadLetters = new DeadLetterFile({
      ...(internals.fs === undefined ? {} : { fs: internals.fs }),
      path: deadLetterPathFor(cfg, this._spool, session),
      maxBytes: cfg.deadLetter.maxBytes,
      onDropped: (n, reason) => metrics.deadLetterDropped(reason, n),
    });
    if (opened) this._adoptDestination();
    this._settlement = new Settlement(this._spool);
    this._sender = new AuditSender({
      spool: this._spool,
      deliverer,
      ...(internals.laneBudgetBytes === undefined
        ? {}
        : { laneBudgetBytes: internals.laneBudgetBytes }),
      ...(options.meterProvider === undefined ? {} : { meterProvider: options.meterProvider }),
      deferMetrics: true,
      onSettled: () => this._settlement.check(),
      onAccepted: (emittedAt) => metrics.deliveryLatency((Date.now() - emittedAt) / 1000),
      onDelivered: (millis, events) => {
        if (millis <= cfg.slowExportThresholdMillis) return;
        metrics.slowExport('deliver');
        this._report(
          'warn',
          'slow deliveries to DataStorage',
          1,
          `last took ${(millis / 1000).toFixed(1)} s for ${events} events`,
        );
      },
    });
    const drain = new Drain({
      spool: this._spool,
      stamper: this._stamper,
      deadLetters: this._deadLetters,
      order: new TimestampOrder({ monotonic: cfg.monotonicTimestamps }),
      openApi: () => (usable ? openApiValidatorOf(this._exporter).validator : undefined),
    });
    this._intake = new Intake({
      durability: cfg.durability,
      maxQueueSize: cfg.maxQueueSize,
      maxExportBatchSize: cfg.maxExportBatchSize,
      scheduledDelayMillis: cfg.scheduledDelayMillis,
      exportTimeoutMillis: cfg.exportTimeoutMillis,
      drain,
      stamper: this._stamper,
      onDrained: (r, took) => this._afterDrain(r, took),
      onTimerDrift: (s) => {
        metrics.timerDrift(s);
        if (s * 1000 > Math.max(100, cfg.scheduledDelayMillis)) {
          this._report(
            'warn',
            'late batch timers (event loop blocked?)',
            1,
            `last started ${s.toFixed(2)} s late`,
          );
        }
      },
      onOverflow: (n) => metrics.overflowed(n),
    });
    this._removeExitHook = onProcessExit(() => this._intake.drainAll());
    if (options.meterProvider !== undefined) this._startMetrics();
    this._sender.start(); // what a predecessor left in the spool
  }

  /** Where records wait: `'file'` (survives a crash) or `'memory'`. @experimental */
  get spoolKind(): 'file' | 'memory' {
    return this._spool.kind;
  }

  /** Takes audit records into the pipeline; leaves every other record untouched. Never throws. */
  onEmit(logRecord: ReadWriteLogRecord, _context?: Context): void {
    try {
      if (!isAuditRecord(logRecord)) return;
      auditRecordReceived(logRecord, this._diag);
      if (!this._metricsStarted) this._startMetrics();
      if (this._closed) {
        this._metrics.spoolDropped(1, 'closed');
        this._metrics.processedError(1, 'shutdown');
        this._report('error', 'audit records dropped: emitted after shutdown', 1);
        return;
      }
      this._intake.offer(logRecord);
      if (this._closing) this._intake.drainAll(); // the inner processor is shut down already
    } catch (err) {
      this._report('error', 'internal errors in onEmit', 1, errorText(err));
    }
  }

  /**
   * Resolves when every record emitted before the call, and everything already in the spool,
   * is settled (accepted, dead-lettered, or dropped and counted). Rejects with a TimeoutError
   * when `timeoutMillis` [30000] passes first.
   */
  forceFlush(options?: ForceFlushOptions): Promise<void> {
    if (this._closed) return Promise.resolve();
    const timeout = options?.timeoutMillis ?? 30_000;
    try {
      this._intake.drainAll();
      return this._settlement.wait(this._spool.lastSeq(), timeout, () => {
        return new AuditFlushTimeoutError(
          `${PREFIX}.forceFlush timed out after ${timeout} ms with ${this._spool.stats().records} record(s) not yet delivered (kept in the spool)`,
        );
      });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Writes what is pending to the spool and delivers until the spool is empty or
   * shutdownTimeoutMillis passes; what is left stays in the spool for the next process.
   */
  shutdown(): Promise<void> {
    this._shutdown ??= this._doShutdown().catch((err: unknown) => {
      this._diag.error(`shutdown failed: ${errorText(err)}`);
    });
    return this._shutdown;
  }

  private async _doShutdown(): Promise<void> {
    processorShuttingDown();
    this._closing = true;
    await this._intake.shutdown();
    try {
      await this._settlement.wait(
        this._spool.lastSeq(),
        this._cfg.shutdownTimeoutMillis,
        () => new Error('timeout'),
      );
    } catch {
      this._diag.warn(
        `shutdown after ${this._cfg.shutdownTimeoutMillis} ms with ${this._spool.stats().records} audit record(s) undelivered; they stay in the spool and the next process on it delivers them`,
      );
    }
    this._intake.drainAll();
    this._closed = true;
    this._removeExitHook();
    await this._sender.stop();
    this._settlement.check();
    const left = this._spool.stats().records;
    this._settlement.rejectAll(
      () =>
        new Error(`${PREFIX} was shut down with ${left} record(s) undelivered (kept in the spool)`),
    );
    this._stamper?.close(this._intake.pending === 0);
    this._spool.close();
    this._deadLetters.close();
    this._metrics.shutdown();
    if (this._ownsExporter) await this._exporter.shutdown().catch(() => undefined);
    this._diag.flush();
  }

  private _afterDrain(r: DrainResult, took: number): void {
    const m = this._metrics;
    m.processed(r.appended);
    if (r.deadLettered > 0) {
      m.processedError(r.deadLettered, 'invalid');
      for (const [reason, n] of r.invalid) {
        m.invalid(reason, n);
        m.deadLettered(reason, n);
      }
      this._report('warn', 'invalid audit records dead-lettered', r.deadLettered, r.lastProblem);
    }
    for (const [reason, n] of r.omitted) m.invalid(reason, n);
    if (r.omitted.size > 0)
      this._report('warn', 'invalid optional fields left out of audit events', 1);
    if (r.regressed > 0) {
      m.regressed(r.regressed);
      this._report(
        'warn',
        "audit records with a timestamp earlier than their correlation's previous one (DataStorage's verify-chain reads such a correlation as reordered; see monotonicTimestamps)",
        r.regressed,
      );
    }
    for (const d of r.outcome.dropped) {
      const n = d.events.length;
      m.spoolDropped(n, d.reason);
      m.processedError(
        n,
        d.reason === 'full' ? 'spool_full' : d.reason === 'closed' ? 'shutdown' : 'spool_error',
      );
      this._report(
        'error',
        d.reason === 'full'
          ? 'audit records dropped: the spool is full (maxBytes)'
          : 'audit records dropped: the spool could not keep them',
        n,
        d.error?.message,
      );
    }
    if (took > this._cfg.slowExportThresholdMillis) {
      m.slowExport('spool');
      this._report('warn', 'slow spool writes', 1, `last took ${Math.round(took)} ms`);
    }
    if (r.outcome.frames.length > 0) this._sender.enqueue(r.outcome.frames);
  }

  /** Resolves the meter (at first use: NodeSDK registers its provider after the processors). */
  private _startMetrics(): void {
    this._metricsStarted = true;
    this._metrics.resolve();
    this._sender.startMetrics(this._metrics.attributes);
    const corrupted = this._startupCorrupted;
    this._startupCorrupted = 0;
    if (corrupted > 0) {
      this._metrics.spoolCorrupted(corrupted);
      this._report('warn', 'damaged spool regions skipped at start-up', corrupted);
    }
  }

  private _adoptDestination(): void {
    if (this._destination !== undefined) this._spool.adoptDestination(this._destination);
  }

  /** The spool directory opened late: the dead-letter file and the destination follow it. */
  private _onSpoolOpen(spool: Spool): void {
    if (this._deadLetters === undefined) return; // during construction: handled there
    this._deadLetters.moveTo(
      this._cfg.deadLetter.path ?? join(spool.directory as string, DEAD_LETTER_FILE),
    );
    this._adoptDestination();
    this._sender.rescan();
  }

  /** Reports `count` occurrences of `kind` (rate-limited): `<count> <kind>: <detail>`. */
  private _report(level: DiagLevel, kind: string, count: number, detail?: string): void {
    if (count <= 0) return;
    this._diag.report(level, kind, `${count} ${kind}${detail ? `: ${detail}` : ''}`, count);
  }
}

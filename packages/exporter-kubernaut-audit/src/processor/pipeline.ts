// SPDX-License-Identifier: Apache-2.0
/*
 * The processor's stages, built and wired together (DESIGN §6): config → exporter/deliverer →
 * spool (+ dead-letter file, provenance stamper) → sender → drain → intake, with measure/
 * observing each. What a stage reports (a drain's outcome, a slow delivery, a late timer) is
 * turned into metrics and rate-limited diag lines here, so that the processor itself stays a
 * composer: emit, offer, flush, shutdown and the one settlement rule.
 *
 * Invariants: construction never throws for a bad environment (a spool that cannot be opened
 * is held in memory and retried; an exporter of another copy of the package delivers nothing
 * and says why); a user's exporter is never modified (the deliverer reads its settings).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
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
import type { PrepareCounts, PreparedItem } from '../intake/prepare.ts';
import { TimestampOrder } from '../map/index.ts';
import type { ComponentDiag, DiagLevel } from '../measure/diag.ts';
import { ProcessorMetrics } from '../measure/processor-metrics.ts';
import { HeadSigner, ProvenanceStamper } from '../provenance/index.ts';
import { createDeliveryHealth } from '../send/health.ts';
import { AuditSender } from '../send/sender.ts';
import { spoolOpened } from '../setup-checks/index.ts';
import { chooseSpool } from '../spool/choose.ts';
import { DEAD_LETTER_FILE, DeadLetterFile } from '../spool/dead-letter.ts';
import { openSpool, type Spool } from '../spool/spool.ts';
import type { ProcessorInternals } from './internals.ts';
import { LeftoverSpools } from './leftovers.ts';
import { Settlement } from './settlement.ts';
import { deadLetterPathFor, delivererFor, spoolTailOf } from './wiring.ts';

export class Pipeline {
  readonly cfg: ResolvedProcessorConfig;
  readonly exporter: KubernautAuditExporter;
  /** True when the processor built the exporter (then it shuts it down). */
  readonly ownsExporter: boolean;
  readonly spool: Spool;
  readonly stamper: ProvenanceStamper | undefined;
  readonly deadLetters: DeadLetterFile;
  readonly metrics: ProcessorMetrics;
  readonly intake: Intake;
  readonly sender: AuditSender;
  readonly settlement: Settlement;
  /** Delivers what dead processes left in the service's other default directories. */
  readonly leftovers: LeftoverSpools | undefined;
  private readonly _drain: Drain;
  private readonly _destination: string | undefined;
  private readonly _diag: ComponentDiag;
  private _metricsStarted = false;
  private _startupCorrupted = 0;

  constructor(
    options: AuditLogRecordProcessorOptions,
    internals: ProcessorInternals,
    diag: ComponentDiag,
  ) {
    this._diag = diag;
    options ??= {}; // `null` from JavaScript: no options
    const cfg = internals.resolved ?? resolveProcessorConfig(options);
    this.cfg = cfg;
    this.ownsExporter = options.exporter === undefined || options.exporter === null;
    this.exporter =
      options.exporter ?? new KubernautAuditExporter({ meterProvider: options.meterProvider });
    const usable = isKubernautAuditExporter(this.exporter);
    if (!usable) this._diag.error(notOurExporter(this.exporter));
    const deliverer = delivererFor(this.exporter, usable, () => this.deadLetters);
    this._destination = deliverer.destination;
    const metrics = new ProcessorMetrics({
      meterProvider: options.meterProvider,
      observations: {
        queueSize: () => this.intake.pending,
        queueCapacity: () => cfg.maxQueueSize,
        spoolBytes: () => this.spool.stats().bytes,
        spoolCapacity: () => this.spool.stats().maxBytes,
        spoolOldestAgeSeconds: () => {
          const t = this.spool.stats().oldestAppendedAt;
          return t === undefined ? undefined : Math.max(0, Date.now() - t) / 1000;
        },
        memoryOnly: () => this.spool.kind === 'memory' || this.spool.holdsUnwritten,
      },
    });
    this.metrics = metrics;
    const session = randomUUID();
    const spoolOptions = {
      ...(internals.fs === undefined ? {} : { fs: internals.fs }),
      lanes: cfg.lanes,
      destination: this._destination,
      service: cfg.serviceName,
      session,
      onOpen: (s: Spool) => this._onSpoolOpen(s),
      onDirectoryLost: () => metrics.spoolDirectoryLost(1),
      onUnavailable: (err: Error) => {
        this.report(
          'warn',
          'spool unavailable: audit records are held in memory only (lost if the process exits) until it can be written; retried in the background',
          1,
          err.message,
        );
      },
    };
    this.spool =
      cfg.spool === undefined
        ? openSpool({ ...spoolOptions, directory: undefined })
        : chooseSpool(cfg.spool.directory, cfg.serviceName, {
            ...spoolOptions,
            maxBytes: cfg.spool.maxBytes,
          });
    this._startupCorrupted = this.spool.stats().corrupted;
    this.spool.onCorrupted((n) => metrics.spoolCorrupted(n));
    const opened = this.spool.kind === 'file';
    this.stamper = cfg.provenance
      ? ProvenanceStamper.open({
          producerId: this.spool.meta.producerId,
          blockSize: 2 * cfg.maxExportBatchSize,
          signer:
            cfg.signingKeyFile === undefined
              ? undefined
              : HeadSigner.fromKeyFile(cfg.signingKeyFile),
          digestLogger: options.digestLogger,
          signEveryDrain: cfg.durability === 'batch',
          ...(opened
            ? { directory: this.spool.directory, spoolTail: spoolTailOf(this.spool) }
            : {}),
          ...(internals.fs === undefined ? {} : { fs: internals.fs }),
        })
      : undefined;
    this.deadLetters = new DeadLetterFile({
      ...(internals.fs === undefined ? {} : { fs: internals.fs }),
      path: deadLetterPathFor(cfg, this.spool, session),
      maxBytes: cfg.deadLetter.maxBytes,
      onDropped: (n, reason) => metrics.deadLetterDropped(reason, n),
    });
    if (opened) {
      this._adoptDestination();
      spoolOpened(this.spool.directory, this._diag);
    }
    this.settlement = new Settlement(this.spool);
    const health = createDeliveryHealth();
    this.sender = new AuditSender({
      spool: this.spool,
      deliverer,
      health,
      ...(internals.laneBudgetBytes === undefined
        ? {}
        : { laneBudgetBytes: internals.laneBudgetBytes }),
      ...(internals.coalesceMillis === undefined
        ? {}
        : { coalesceMillis: internals.coalesceMillis }),
      ...(options.meterProvider === undefined ? {} : { meterProvider: options.meterProvider }),
      deferMetrics: true,
      onSettled: () => this.settlement.check(),
      onAccepted: (oldest) => metrics.deliveryLatency((Date.now() - oldest) / 1000),
      onDelivered: (millis, events) => {
        if (millis <= cfg.slowExportThresholdMillis) return;
        metrics.slowExport('deliver');
        this.report(
          'warn',
          'slow deliveries to DataStorage',
          1,
          `last took ${(millis / 1000).toFixed(1)} s for ${events} events`,
        );
      },
    });
    this.leftovers =
      cfg.spool !== undefined && cfg.spool.directory === undefined
        ? new LeftoverSpools({
            ownDirectory: () => (this.spool.kind === 'file' ? this.spool.directory : undefined),
            serviceName: cfg.serviceName,
            destination: this._destination,
            deliverer,
            ownSpool: () => this.spool.stats(),
            lastAcceptedAt: () => health.lastAcceptedAt(),
            report: (level, kind, count, detail) => this.report(level, kind, count, detail),
            checkMillis: internals.leftoverCheckMillis,
            onChecked: internals.onLeftoverCheck,
          })
        : undefined;
    // While no lane keeps appended frames, appends reuse one buffer (see the sender).
    this.spool.setAppendBuffer((bytes) => this.sender.appendBuffer(bytes));
    const drain = new Drain({
      spool: this.spool,
      stamper: this.stamper,
      deadLetters: this.deadLetters,
      order: new TimestampOrder({ monotonic: cfg.monotonicTimestamps }),
      openApi: () => (usable ? openApiValidatorOf(this.exporter).validator : undefined),
    });
    this._drain = drain;
    this.intake = new Intake({
      durability: cfg.durability,
      maxQueueSize: cfg.maxQueueSize,
      maxExportBatchSize: cfg.maxExportBatchSize,
      scheduledDelayMillis: cfg.scheduledDelayMillis,
      exportTimeoutMillis: cfg.exportTimeoutMillis,
      drain,
      stamper: this.stamper,
      recordAttributes: cfg.recordAttributes,
      onDrained: (r, took) => this._afterDrain(r, took),
      onTimerDrift: (s) => this.timerDrift(s),
      onOverflow: (n) => metrics.overflowed(n),
    });
    if (options.meterProvider !== undefined) this.startMetrics();
  }

  private _afterDrain(r: DrainResult, took: number): void {
    const m = this.metrics;
    m.processed(r.appended);
    if (r.deadLettered > 0) {
      m.processedError(r.deadLettered, 'invalid');
      for (const [reason, n] of r.invalid) {
        m.invalid(reason, n);
        m.deadLettered(reason, n);
      }
      this.report('warn', 'invalid audit records dead-lettered', r.deadLettered, r.lastProblem);
    }
    for (const [reason, n] of r.omitted) m.invalid(reason, n);
    if (r.omitted.size > 0)
      this.report('warn', 'invalid optional fields left out of audit events', 1);
    if (r.regressed > 0) {
      m.regressed(r.regressed);
      this.report(
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
      this.report(
        'error',
        d.reason === 'full'
          ? 'audit records dropped: the spool is full (maxBytes)'
          : 'audit records dropped: the spool could not keep them',
        n,
        d.error?.message,
      );
    }
    if (took > this.cfg.slowExportThresholdMillis) {
      m.slowExport('spool');
      this.report('warn', 'slow spool writes', 1, `last took ${Math.round(took)} ms`);
    }
    if (r.outcome.frames.length > 0) this.sender.enqueue(r.outcome.frames);
  }

  /** Commits records prepared elsewhere (the delivery thread's batches): see Drain.commit. */
  commitPrepared(items: readonly PreparedItem[], counts: PrepareCounts): void {
    const started = performance.now();
    const result = this._drain.commit(items, counts);
    this._afterDrain(result, performance.now() - started);
  }

  /** A timer-driven batch started `seconds` late (the intake's, or the application thread's). */
  timerDrift(seconds: number): void {
    this.metrics.timerDrift(seconds);
    if (seconds * 1000 > Math.max(100, this.cfg.scheduledDelayMillis)) {
      this.report(
        'warn',
        'late batch timers (event loop blocked?)',
        1,
        `last started ${seconds.toFixed(2)} s late`,
      );
    }
  }

  /** Resolves the meter (at first use: NodeSDK registers its provider after the processors). */
  startMetrics(): void {
    if (this._metricsStarted) return;
    this._metricsStarted = true;
    this.metrics.resolve();
    this.sender.startMetrics(this.metrics.attributes);
    const corrupted = this._startupCorrupted;
    this._startupCorrupted = 0;
    if (corrupted > 0) {
      this.metrics.spoolCorrupted(corrupted);
      this.report('warn', 'damaged spool regions skipped at start-up', corrupted);
    }
  }

  private _adoptDestination(): void {
    if (this._destination !== undefined) this.spool.adoptDestination(this._destination);
  }

  /**
   * The spool directory opened late, or was re-created after it was removed while in use: the
   * dead-letter file, the provenance state and the destination follow it.
   */
  private _onSpoolOpen(spool: Spool): void {
    if (this.deadLetters === undefined) return; // during construction: handled there
    this.deadLetters.moveTo(
      this.cfg.deadLetter.path ?? join(spool.directory as string, DEAD_LETTER_FILE),
    );
    this.stamper?.reopen();
    this._adoptDestination();
    spoolOpened(spool.directory, this._diag);
    this.sender.rescan();
  }

  /** Reports `count` occurrences of `kind` (rate-limited): `<count> <kind>: <detail>`. */
  report(level: DiagLevel, kind: string, count: number, detail?: string): void {
    if (count <= 0) return;
    this._diag.report(level, kind, `${count} ${kind}${detail ? `: ${detail}` : ''}`, count);
  }
}

/** Why `exporter` cannot deliver for the processor, for the diag error. */
function notOurExporter(exporter: unknown): string {
  const name = (exporter as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  if (name === 'KubernautAuditExporter') {
    return 'the exporter option is a KubernautAuditExporter of another copy of @kubernaut/exporter-kubernaut-audit (an ESM and a CommonJS copy loaded side by side?); audit records stay in the spool undelivered';
  }
  const what =
    name === 'Object'
      ? 'a plain object'
      : typeof name === 'string'
        ? `an instance of ${name}`
        : `${typeof exporter}`;
  return `the exporter option is ${what}, not a KubernautAuditExporter: AuditLogRecordProcessor delivers only through one (to send audit records elsewhere too, give that exporter its own BatchLogRecordProcessor); audit records stay in the spool undelivered`;
}

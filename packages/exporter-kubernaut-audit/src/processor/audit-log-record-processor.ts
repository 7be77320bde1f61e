// SPDX-License-Identifier: Apache-2.0
/*
 * processor/: AuditLogRecordProcessor, the composer (DESIGN §3, §6):
 *
 *   onEmit ─ select ─ intake (FIFO + OTel BatchLogRecordProcessor) ─ drain (map, stamp, encode)
 *          ─ spool ─ sender ─ deliverer ─ DataStorage;   measure/ observes every stage
 *   offer  ─ select ─ intake, drained at once under a spool reservation (the OTLP bridge)
 *
 * The stages are built and wired in pipeline.ts; this class composes them: emit, offer, flush,
 * shutdown. Invariants: the processor holds no per-record logic of its own (each stage states
 * its own invariant); settlement has ONE rule (_settled, on settlement.ts: drain, then wait for
 * the spool's watermark to pass the last seq); nothing throws into application code;
 * nothing the core owns keeps the event loop alive (pending records reach the spool on `exit`);
 * a user's exporter is never modified nor shut down (one the processor built, it shuts down).
 */
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { Context } from '@opentelemetry/api';
import type {
  ForceFlushOptions,
  LogRecordProcessor,
  ReadableLogRecord,
  ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import {
  type AuditLogRecordProcessorOptions,
  flushTimeoutMillis,
} from '../config/processor-options.ts';
import type { PrepareCounts, PreparedItem } from '../intake/prepare.ts';
import { ComponentDiag } from '../measure/diag.ts';
import type { ProvenanceStamper } from '../provenance/index.ts';
import { isAuditRecord } from '../select/index.ts';
import {
  auditRecordReceived,
  processorCreated,
  processorShuttingDown,
  registeredTwice,
} from '../setup-checks/index.ts';
import type { Spool } from '../spool/spool.ts';
import type { Reservation } from '../spool/types.ts';
import { onProcessExit } from './exit.ts';
import { takeProcessorInternals } from './internals.ts';
import { type AuditOfferResult, offerResult, selectAudit } from './offer.ts';
import { Pipeline } from './pipeline.ts';

export type { AuditLogRecordProcessorOptions } from '../config/processor-options.ts';
export type { AuditOfferResult } from './offer.ts';

/** Rejection of forceFlush() when its timeout passes first. */
export class AuditFlushTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

const PREFIX = 'AuditLogRecordProcessor';
const CLOSED = Object.freeze({ kind: 'dropped', reason: 'closed' } as const);
const NOT_KEPT = Object.freeze({ kind: 'dropped', reason: 'error' } as const);

/** The pipeline of each processor, for {@link spoolUsageOf}. */
const pipelines = new WeakMap<object, Pipeline>();

/**
 * What the spool of `processor` holds now, O(1): frame bytes of unacknowledged records plus
 * reservations, against its bound, and whether what it takes is written to disk (a file spool
 * holding nothing in memory for lack of a writable disk); undefined for anything else (e.g. the
 * audit OTLP bridge's admission).
 * @experimental
 */
export function spoolUsageOf(
  processor: unknown,
): { bytes: number; maxBytes: number; kind: 'file' | 'memory'; durable: boolean } | undefined {
  const p = typeof processor === 'object' && processor !== null && pipelines.get(processor);
  if (!p) return undefined;
  const spool: Spool = p.spool;
  const s = spool.stats();
  return {
    bytes: s.bytes + s.reservedBytes,
    maxBytes: s.maxBytes,
    kind: spool.kind,
    durable: spool.kind === 'file' && !spool.holdsUnwritten,
  };
}

/** What the application thread's intake observed since its last batch (for the metrics). */
export interface ThreadIntake {
  /** How late each of its timer-driven batches started, in seconds. */
  drift: readonly number[];
  /** Records its inner queue could not take (spooled all the same). */
  overflow: number;
}

let seqsOfImpl: (processor: AuditLogRecordProcessor) => ProvenanceStamper | undefined;

/**
 * The provenance stamper of `processor` (undefined without provenance), whose seqs the delivery
 * thread hands out to its application thread in blocks. Not exported by the package.
 */
export function seqsOf(
  processor: AuditLogRecordProcessor,
): Pick<ProvenanceStamper, 'handOut' | 'giveBack'> | undefined {
  return seqsOfImpl(processor);
}

let commitPreparedImpl: (
  processor: AuditLogRecordProcessor,
  items: readonly PreparedItem[],
  counts: PrepareCounts,
  intake: ThreadIntake,
) => void;

/**
 * Stamps, appends and dead-letters records prepared on the application thread (in the order
 * given; seqs are assigned here), as a drain of `processor` would: the delivery thread's entry.
 * Not exported by the package. Never throws.
 */
export function commitPrepared(
  processor: AuditLogRecordProcessor,
  items: readonly PreparedItem[],
  counts: PrepareCounts,
  intake: ThreadIntake,
): void {
  commitPreparedImpl(processor, items, counts, intake);
}

/**
 * A LogRecordProcessor that delivers audit records (attribute `audit.event.category`) to
 * Kubernaut DataStorage, durably: through a local spool, at least once, in emit order per
 * correlation id. Other records are left untouched. Never throws into application code.
 */
export class AuditLogRecordProcessor implements LogRecordProcessor {
  private readonly _p: Pipeline;
  private readonly _diag = new ComponentDiag(PREFIX);
  private readonly _removeExitHook: () => void;
  private _closing = false;
  private _closed = false;
  private _shutdown: Promise<void> | undefined;
  /** The last audit record emitted to it: the same one again means it is registered twice. */
  private _last: object | undefined;
  /** The process is exiting (its `exit` event): every record is written through. */
  private _exiting = false;

  constructor(options: AuditLogRecordProcessorOptions = {}) {
    processorCreated(this._diag);
    this._p = new Pipeline(options, takeProcessorInternals(), this._diag);
    pipelines.set(this, this._p);
    this._removeExitHook = onProcessExit((cause) => {
      if (cause === 'exit') this._exiting = true; // what later `exit` listeners emit: see onEmit
      this._p.intake.drainAll();
      this._p.spool.settleWrites(); // a write still on the thread pool would die with the process
    });
    this._p.sender.start(); // what a predecessor left in the spool
  }

  /** Where records wait: `'file'` (survives a crash) or `'memory'`. @experimental */
  get spoolKind(): 'file' | 'memory' {
    return this._p.spool.kind;
  }

  /** Takes audit records into the pipeline; leaves every other record untouched. Never throws. */
  onEmit(logRecord: ReadWriteLogRecord, _context?: Context): void {
    try {
      if (!isAuditRecord(logRecord)) return;
      if (logRecord === this._last) {
        registeredTwice(this._diag);
        return;
      }
      this._last = logRecord;
      auditRecordReceived(logRecord, this._diag, this);
      this._p.startMetrics();
      if (this._closed) {
        this._droppedAfterShutdown(1);
        return;
      }
      this._p.intake.offer(logRecord);
      // Shut down, the inner processor takes nothing; exiting, no timer will run again.
      if (this._closing || this._exiting) this._p.intake.drainAll();
    } catch (err) {
      this._p.report('error', 'internal errors in onEmit', 1, errorText(err));
    }
  }

  /**
   * Takes `records` like onEmit, but writes the audit records among them to the spool before it
   * returns, appending under `reservation` (from {@link reserve}) first, and says what became of
   * each: on the spool, dead-lettered as unstorable, or not kept. For a receiver that must only
   * acknowledge what is durable (the audit OTLP bridge). Never throws.
   * @experimental
   */
  offer(records: readonly ReadableLogRecord[], reservation?: Reservation): AuditOfferResult {
    const { audit, indexes, ignored } = selectAudit(records);
    if (audit.length === 0) return offerResult(indexes, [], ignored);
    try {
      for (const r of audit) auditRecordReceived(r, this._diag);
      this._p.startMetrics();
      if (this._closed) {
        this._droppedAfterShutdown(audit.length);
        return offerResult(
          indexes,
          audit.map(() => CLOSED),
          ignored,
        );
      }
      return offerResult(indexes, this._p.intake.offerAll(audit, reservation), ignored);
    } catch (err) {
      this._p.report('error', 'internal errors in offer', 1, errorText(err));
      return offerResult(
        indexes,
        audit.map(() => NOT_KEPT),
        ignored,
      );
    }
  }

  /**
   * Reserves room for `bytes` of frames on the spool (admission before a request is decoded):
   * appends under the reservation cannot fail for lack of room. Undefined when it does not fit
   * (or after shutdown). Release what is left once the records are offered.
   * @experimental
   */
  reserve(bytes: number): Reservation | undefined {
    return this._closed ? undefined : this._p.spool.reserve(bytes);
  }

  /**
   * Resolves when every record emitted before the call, and everything already in the spool,
   * is settled (accepted, dead-lettered, or dropped and counted). Rejects with a TimeoutError
   * when `timeoutMillis` [30000] passes first (0: at once unless settled; capped at what a timer
   * can wait; NaN, negative or not a number: a warning and the default).
   */
  forceFlush(options?: ForceFlushOptions): Promise<void> {
    if (this._closed) return Promise.resolve();
    try {
      const timeout = flushTimeoutMillis(options?.timeoutMillis);
      return this._settled(timeout, () => {
        // Where the undelivered records are: a record held in memory (the spool's directory
        // cannot be written now) is lost if the process ends before the directory takes it.
        const left = this._p.spool.stats().records;
        const unwritten = this._p.spool.unwrittenRecords;
        const where =
          unwritten === 0
            ? 'kept in the spool'
            : `${unwritten} of them held in memory only: the spool directory cannot be written now`;
        return new AuditFlushTimeoutError(
          `${PREFIX}.forceFlush timed out after ${timeout} ms with ${left} record(s) not yet delivered (${where})`,
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

  /**
   * The ONE settlement rule: drain the FIFO into the spool (synchronously), then wait until
   * the spool's oldest unacknowledged seq is past its last seq at the time of the call.
   */
  private _settled(timeoutMillis: number, onTimeout: () => Error): Promise<void> {
    this._p.intake.drainAll();
    this._p.spool.settleWrites(); // every record is on the spool when a flush returns
    this._p.sender.sendNow(); // no coalescing wait: the caller waits for these records
    return this._p.settlement.wait(this._p.spool.lastSeq(), timeoutMillis, onTimeout);
  }

  private async _doShutdown(): Promise<void> {
    const p = this._p;
    processorShuttingDown();
    this._closing = true;
    p.stamper?.signAll(); // the last records written carry a signature
    await p.intake.shutdown();
    const timeout = p.cfg.shutdownTimeoutMillis;
    try {
      await this._settled(timeout, () => new Error('timeout'));
    } catch {
      const left = p.spool.stats().records;
      const unwritten = p.spool.unwrittenRecords;
      this._diag.warn(
        unwritten === 0
          ? `shutdown after ${timeout} ms with ${left} audit record(s) undelivered; they stay in the spool and the next process on it delivers them`
          : `shutdown after ${timeout} ms with ${left} audit record(s) undelivered, ${unwritten} of them held in memory only (no spool, or its directory could not be written): those are lost, counted in kubernaut.audit.spool.dropped (reason unwritten); the rest stay in the spool for the next process`,
      );
    }
    p.intake.drainAll();
    this._closed = true;
    this._removeExitHook();
    await p.sender.stop();
    await p.leftovers?.stop();
    p.settlement.check();
    const left = p.spool.stats().records;
    const unwritten = p.spool.unwrittenRecords;
    p.settlement.rejectAll(
      () =>
        new Error(
          unwritten === 0
            ? `${PREFIX} was shut down with ${left} record(s) undelivered (kept in the spool)`
            : `${PREFIX} was shut down with ${left} record(s) undelivered, ${unwritten} of them held in memory only and lost`,
        ),
    );
    p.stamper?.close(p.intake.pending === 0);
    p.spool.close(); // writes what it holds in memory if the directory takes it now
    const lost = p.spool.unwrittenRecords;
    if (lost > 0) p.metrics.spoolDropped(lost, 'unwritten');
    p.deadLetters.close();
    p.metrics.shutdown();
    if (p.ownsExporter) await p.exporter.shutdown().catch(() => undefined);
    this._diag.flush();
  }

  /** commitPrepared() of the delivery thread. */
  private _commitPrepared(
    items: readonly PreparedItem[],
    counts: PrepareCounts,
    intake: ThreadIntake,
  ): void {
    try {
      this._p.startMetrics();
      for (const s of intake.drift) this._p.timerDrift(s);
      if (intake.overflow > 0) this._p.metrics.overflowed(intake.overflow);
      if (items.length === 0) return;
      if (this._closed) {
        this._droppedAfterShutdown(items.length);
        return;
      }
      this._p.commitPrepared(items, counts);
    } catch (err) {
      this._p.report('error', 'internal errors in commit', 1, errorText(err));
    }
  }

  static {
    commitPreparedImpl = (processor, items, counts, intake) =>
      processor._commitPrepared(items, counts, intake);
    seqsOfImpl = (processor) => processor._p.stamper;
  }

  private _droppedAfterShutdown(n: number): void {
    this._p.metrics.spoolDropped(n, 'closed');
    this._p.metrics.processedError(n, 'shutdown');
    this._p.report('error', 'audit records dropped: emitted after shutdown', n);
  }
}

// SPDX-License-Identifier: Apache-2.0
/*
 * intake/: from emit() to the spool (DESIGN §6, stage 1).
 *
 * Invariants:
 * - emit path (offer): one FIFO push, the emit time, the seq (in memory), the inner OTel
 *   BatchLogRecordProcessor's onEmit with the FIFO entry as token (and, with `recordAttributes`,
 *   two attributes set on the record: ../provenance/record-names.ts). No mapping, no encoding, no
 *   I/O — but when a write-through rule fires, then it drains synchronously:
 *     · durability 'sync': every offer drains (the record is on the spool when emit returns);
 *     · the oldest pending record is older than scheduledDelayMillis (a blocked event loop:
 *       the loss window is bounded by emit time, not by when the loop last ran a timer);
 *     · the inner queue overflowed maxExportBatchSize records (else an unref'd timer of
 *       scheduledDelayMillis drains them).
 * - The emit time is the SDK's own clock reading for the record (its observed timestamp, taken
 *   by LogRecordImpl at emit) when it is plausible: not before, and less than
 *   CLOCK_TRUST_MILLIS after, the last clock reading of the intake. Otherwise (a record whose
 *   observedTimestamp its caller set, a record that is not the SDK's) emit reads the clock. So a
 *   caller's timestamp can never defer the write-through rule; emit reads the clock about once
 *   per CLOCK_TRUST_MILLIS instead of once per record.
 * - OTel's BatchLogRecordProcessor is the batcher, timer and queue limit: its export(batch)
 *   drains the FIFO up to the batch's last token. Its tokens carry a settled static resource:
 *   it never waits on a resource detector.
 * - The FIFO is drained in order, always from its head: a spool write takes a prefix of what
 *   was emitted. Records the inner queue drops (full) are still in the FIFO: overflow is
 *   spooled, not lost, and not an error.
 * - offerAll() (the audit OTLP bridge's entry) takes records and drains them at once,
 *   synchronously, with the caller's spool reservation, and says what became of each: the
 *   caller answers "durable" only for records that reached the spool.
 * - The batcher's drains (its timer, a full batch) let the spool write on the thread pool
 *   (spool.ts, "Deferred writes"); every other drain writes before it returns.
 * - drainAll() is synchronous (the `exit` handler, flush and shutdown use it). Re-entrant
 *   offers (a getter in a body that emits while it is read) are queued and drained after.
 * - Nothing here keeps the event loop alive.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import {
  BatchLogRecordProcessor,
  type LogRecordExporter,
  type ReadableLogRecord,
  type ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import type { ProvenanceStamper } from '../provenance/index.ts';
import { nameRecord } from '../provenance/record-names.ts';
import type { Reservation } from '../spool/types.ts';
import {
  type Drain,
  type DrainResult,
  type DrainRunOptions,
  PendingRecord,
  type RecordOutcome,
} from './drain.ts';
import { createDropTap } from './drop-tap.ts';

export interface IntakeOptions {
  durability: 'batch' | 'sync';
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  drain: Pick<Drain, 'run'>;
  /** Where seqs come from at emit (the stamper, or its blocks on another thread). */
  stamper: Pick<ProvenanceStamper, 'next' | 'producerId'> | undefined;
  /** Set `audit.sequence.number` and `audit.record.id` on the record at emit (OTEP 0267). */
  recordAttributes?: boolean;
  /** Called after every drain with what it did. */
  onDrained(result: DrainResult, took: number): void;
  /** How late a timer-driven inner export started, in seconds. */
  onTimerDrift(seconds: number): void;
  /** Records the inner queue could not take (spooled by the FIFO instead). */
  onOverflow(count: number): void;
}

const DEFERRED: DrainRunOptions = Object.freeze({ deferWrite: true });
const NOT_KEPT: RecordOutcome = Object.freeze({ kind: 'dropped', reason: 'error' });
/** How long after a clock reading a record's own observed timestamp is taken as its emit time. */
export const CLOCK_TRUST_MILLIS = 100;

export class Intake {
  private readonly _o: IntakeOptions;
  private readonly _inner: BatchLogRecordProcessor | undefined;
  private _fifo: Array<PendingRecord | undefined> = [];
  private _head = 0;
  private _n = 0;
  private _drainedThrough = 0;
  private _overflow = 0;
  private _overflowSignal = 0;
  private _overflowTimer: NodeJS.Timeout | undefined;
  private _draining = false;
  private _requested = 0;
  private _flushing = 0;
  private _clock = 0;

  constructor(options: IntakeOptions) {
    this._o = options;
    if (options.durability === 'batch') {
      const exporter: LogRecordExporter = {
        export: (batch, done) => {
          this._onInnerBatch(batch as unknown as PendingRecord[]);
          done({ code: ExportResultCode.SUCCESS });
        },
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
      };
      this._inner = new BatchLogRecordProcessor({
        exporter,
        maxQueueSize: options.maxQueueSize,
        maxExportBatchSize: options.maxExportBatchSize,
        scheduledDelayMillis: options.scheduledDelayMillis,
        exportTimeoutMillis: options.exportTimeoutMillis,
        selfObsMeterProvider: createDropTap((n) => {
          this._overflowSignal += n;
        }) as MeterProvider,
      });
    }
  }

  /** Records emitted and not yet drained. */
  get pending(): number {
    return this._fifo.length - this._head;
  }

  /** Takes an audit record (the emit path). Never throws. */
  offer(record: ReadableLogRecord): void {
    const now = this._emitTime(record);
    const stamper = this._o.stamper;
    const seq = stamper === undefined ? 0 : stamper.next();
    if (this._o.recordAttributes === true && stamper !== undefined) {
      nameRecord(record, stamper.producerId, seq);
    }
    const p = new PendingRecord(record, now, seq, ++this._n);
    this._fifo.push(p);
    const inner = this._inner;
    if (inner === undefined) {
      this.drainAll();
      return;
    }
    inner.onEmit(p as unknown as ReadWriteLogRecord);
    if (this._overflowSignal > 0) {
      this._overflow += this._overflowSignal;
      this._o.onOverflow(this._overflowSignal);
      this._overflowSignal = 0;
      if (this._overflow >= this._o.maxExportBatchSize) {
        this.drainAll();
        return;
      }
      this._armOverflowTimer();
    }
    const oldest = this._fifo[this._head];
    if (oldest !== undefined && now - oldest.emittedAt > this._o.scheduledDelayMillis) {
      this.drainAll();
    }
  }

  /**
   * Takes `records` and drains them now, with what was pending before them, appending under
   * `reservation`. Returns the outcome of each record, in order; a record whose outcome is not
   * known when this returns (taken by a drain already running: a re-entrant call) counts as
   * dropped. Never throws.
   */
  offerAll(records: readonly ReadableLogRecord[], reservation?: Reservation): RecordOutcome[] {
    this.drainAll(); // what was pending before is not appended under the caller's reservation
    const now = Date.now();
    const stamper = this._o.stamper;
    const taken: PendingRecord[] = [];
    for (const record of records) {
      const p = new PendingRecord(
        record,
        now,
        stamper === undefined ? 0 : stamper.next(),
        ++this._n,
      );
      this._fifo.push(p);
      taken.push(p);
    }
    const outcomes = new Map<PendingRecord, RecordOutcome>();
    this._drainThrough(this._n, { reservation, outcomes });
    return taken.map((p) => outcomes.get(p) ?? NOT_KEPT);
  }

  /** Drains every pending record now (synchronously). */
  drainAll(): void {
    this._drainThrough(this._n);
  }

  /** Flushes the inner processor (its queue only holds tokens of records drained below). */
  async flushInner(): Promise<void> {
    this.drainAll();
    if (this._inner === undefined) return;
    this._flushing++;
    try {
      await this._inner.forceFlush();
    } finally {
      this._flushing--;
    }
  }

  /** Stops the inner processor; pending records are drained first. */
  async shutdown(): Promise<void> {
    this.drainAll();
    if (this._overflowTimer !== undefined) clearTimeout(this._overflowTimer);
    this._overflowTimer = undefined;
    this._flushing++;
    await this._inner?.shutdown();
  }

  private _onInnerBatch(batch: PendingRecord[]): void {
    const last = batch[batch.length - 1];
    if (last === undefined) return;
    const first = batch[0] as PendingRecord;
    if (
      this._flushing === 0 &&
      batch.length < this._o.maxExportBatchSize &&
      first.n > this._drainedThrough
    ) {
      // A timer-driven export: how late did it start?
      const late = Date.now() - first.emittedAt - this._o.scheduledDelayMillis;
      this._o.onTimerDrift(Math.max(0, late) / 1000);
    }
    // The batcher's own drains write on the thread pool (flush and shutdown settle them).
    this._drainThrough(last.n, this._flushing === 0 ? DEFERRED : undefined);
  }

  /** When `record` was emitted, in ms since the epoch (see the invariant above). */
  private _emitTime(record: ReadableLogRecord): number {
    const hr = (record as { hrTimeObserved?: unknown }).hrTimeObserved;
    if (Array.isArray(hr)) {
      const t = (hr[0] as number) * 1000 + (hr[1] as number) / 1e6;
      const since = t - this._clock;
      if (since >= 0 && since < CLOCK_TRUST_MILLIS) return t;
    }
    const now = Date.now();
    this._clock = now;
    return now;
  }

  private _armOverflowTimer(): void {
    if (this._overflowTimer !== undefined) return;
    this._overflowTimer = setTimeout(() => {
      this._overflowTimer = undefined;
      this.drainAll();
    }, this._o.scheduledDelayMillis);
    this._overflowTimer.unref();
  }

  /** Drains the FIFO from its head through the record numbered `n`. */
  private _drainThrough(n: number, options?: DrainRunOptions): void {
    if (n <= this._drainedThrough) return;
    if (this._draining) {
      // Re-entrant (a record read while draining emitted): the running drain takes it too.
      this._requested = Math.max(this._requested, n);
      return;
    }
    this._draining = true;
    this._requested = n;
    try {
      while (
        this._head < this._fifo.length &&
        (this._fifo[this._head] as PendingRecord).n <= this._requested
      ) {
        const through = this._requested;
        let end = this._head;
        while (end < this._fifo.length && (this._fifo[end] as PendingRecord).n <= through) end++;
        const batch = this._fifo.slice(this._head, end) as PendingRecord[];
        for (let i = this._head; i < end; i++) this._fifo[i] = undefined;
        this._head = end;
        this._drainedThrough = (batch[batch.length - 1] as PendingRecord).n;
        this._compact();
        const started = performance.now();
        const result = this._o.drain.run(batch, options);
        if (options?.reservation !== undefined) options = undefined; // it serves one append
        this._o.onDrained(result, performance.now() - started);
      }
      if (this._head >= this._fifo.length) {
        this._overflow = 0;
        if (this._overflowTimer !== undefined) clearTimeout(this._overflowTimer);
        this._overflowTimer = undefined;
      }
    } finally {
      this._draining = false;
    }
  }

  private _compact(): void {
    if (this._head === this._fifo.length) {
      this._fifo = [];
      this._head = 0;
    } else if (this._head > 4096 && this._head * 2 > this._fifo.length) {
      this._fifo = this._fifo.slice(this._head);
      this._head = 0;
    }
  }
}

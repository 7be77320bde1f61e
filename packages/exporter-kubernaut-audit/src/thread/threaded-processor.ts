// SPDX-License-Identifier: Apache-2.0
/*
 * thread/: ThreadedAuditLogRecordProcessor, the audit pipeline with its per-record work on a
 * delivery thread (a `worker_threads` worker):
 *
 *   application thread: onEmit ─ select ─ intake (FIFO + OTel BatchLogRecordProcessor)
 *                       ─ prepare (map, validate, order, canonical JSON up to the stamp)
 *                       ─ postMessage (one message per batch: strings, not objects)
 *   delivery thread:    an AuditLogRecordProcessor: seq, stamp, SHA-256 ─ spool ─ sender ─ DataStorage
 *
 * The application thread does what a record needs while it is at hand (reading it: mapping,
 * validation, one serialisation), as OTel's own processor and exporter do; the hash chain, the
 * spool, recovery, dead letters and delivery run on the delivery thread. A record is read once,
 * on the thread that emitted it: what crosses is its canonical JSON.
 *
 * Invariants:
 * - A batch reaches the delivery thread when OTel's batcher exports it, when a write-through rule
 *   fires (intake.ts: the oldest pending record is older than scheduledDelayMillis, overflow),
 *   on flush, shutdown and `exit`. The delivery thread runs while the application thread is
 *   blocked, so a batch posted is written to the spool even if the loop never turns again.
 * - On `exit` the pending records are posted and the application thread waits (Atomics.wait,
 *   at most EXIT_WAIT_MILLIS) until the delivery thread has written them; in `sync` durability
 *   every emit waits so (at most exportTimeoutMillis). Neither waits for a thread that has ended.
 * - The delivery thread never keeps the process alive (unref'd), but while a flush or shutdown
 *   waits for its answer.
 * - If the delivery thread ends unexpectedly, the batches it had not confirmed and everything
 *   after go to an AuditLogRecordProcessor on this thread (same options; the spool of the
 *   ended thread is locked by this process, so it may run memory-only: diag says so).
 * - Nothing throws into application code.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { type Context, diag, metrics } from '@opentelemetry/api';
import type {
  ForceFlushOptions,
  LogRecordProcessor,
  ReadableLogRecord,
  ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import { MAX_TIMER_MILLIS } from '../config/option-rules.ts';
import {
  type AuditLogRecordProcessorOptions,
  flushTimeoutMillis,
  type ResolvedProcessorConfig,
  resolveProcessorConfig,
} from '../config/processor-options.ts';
import { exporterGivenOf, isKubernautAuditExporter } from '../exporter/kubernaut-audit-exporter.ts';
import { loadSpec } from '../exporter/openapi-spec.ts';
import { type DrainResult, drainResult, type PendingRecord } from '../intake/drain.ts';
import { Intake } from '../intake/intake.ts';
import { type PreparedItem, Preparer, sanitisedSnapshots } from '../intake/prepare.ts';
import type { EventValidator } from '../map/index.ts';
import { TimestampOrder } from '../map/index.ts';
import { ComponentDiag, isDiagLoggerRegistered, stderrFallback } from '../measure/diag.ts';
import { METRIC_QUEUE_SIZE } from '../measure/processor-metrics.ts';
import {
  AuditFlushTimeoutError,
  AuditLogRecordProcessor,
} from '../processor/audit-log-record-processor.ts';
import { type ExitCause, onProcessExit } from '../processor/exit.ts';
import { withProcessorInternals } from '../processor/internals.ts';
import { isAuditRecord } from '../select/index.ts';
import { auditRecordReceived, processorCreated, registeredTwice } from '../setup-checks/index.ts';
import { takeThreadedInternals } from './internals.ts';
import { deliveryThreadFile } from './locate.ts';
import { MeterReplay } from './meter-bridge.ts';
import { pack } from './pack.ts';
import {
  type FromThread,
  PROGRESS_FAILED,
  PROGRESS_SEQ_ASKED,
  PROGRESS_SLOTS,
  type ThreadStart,
  type ToThread,
} from './protocol.ts';
import { SeqBlocks } from './seq-blocks.ts';

const PREFIX = 'ThreadedAuditLogRecordProcessor';
/** Longest wait on `exit` for the delivery thread to write the last records. */
export const EXIT_WAIT_MILLIS = 10_000;
/** Batches posted and not yet written before emit waits for the delivery thread. */
const MAX_UNCONFIRMED_BATCHES = 64;
/** Seqs per block handed to the application thread, in batches (maxExportBatchSize). */
const SEQ_BLOCK_FACTOR = 8;
/** How long after its own timeout a flush or shutdown gives up on an unanswering thread. */
const ANSWER_GRACE_MILLIS = 5_000;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Batch {
  n: number;
  /** How many records it holds. */
  size: number;
  /** Its records (for a processor on this thread, should the delivery thread end). */
  originals: ReadableLogRecord[];
}

/**
 * An AuditLogRecordProcessor whose per-record work (mapping, validation, provenance, the spool,
 * delivery) runs on a worker thread of its own: `emit()` selects the record, batches it with
 * OpenTelemetry's BatchLogRecordProcessor, and hands each batch over as a copy. Same options,
 * guarantees and metrics as AuditLogRecordProcessor (options that hold objects of this thread,
 * `digestLogger`, and `recordAttributes`, which sets attributes at emit, are not supported).
 * Never throws into application code.
 * @experimental
 */
export class ThreadedAuditLogRecordProcessor implements LogRecordProcessor {
  private readonly _diag = new ComponentDiag(PREFIX);
  private readonly _cfg: ResolvedProcessorConfig;
  private readonly _options: AuditLogRecordProcessorOptions;
  private readonly _intake: Intake;
  private readonly _preparer: Preparer;
  private _openApi: EventValidator | undefined;
  private readonly _progress = new Int32Array(new SharedArrayBuffer(4 * PROGRESS_SLOTS));
  private readonly _seqBlock = new Float64Array(new SharedArrayBuffer(16));
  private readonly _seqs: SeqBlocks | undefined;
  private readonly _replay: MeterReplay;
  private readonly _removeExitHook: () => void;
  private _worker: Worker | undefined;
  /** The processor on this thread, once the delivery thread has ended unexpectedly. */
  private _fallback: AuditLogRecordProcessor | undefined;
  private _n = 0;
  /** Batches posted and not yet confirmed (progress[0] below their number). */
  private _unconfirmed: Batch[] = [];
  private readonly _maxUnconfirmed: number;
  private readonly _commitDelayMillis: number;
  private readonly _threadFile: string | undefined;
  private readonly _threadMainFile: string | undefined;
  private readonly _leftoverCheckMillis: number | undefined;
  private _drift: number[] = [];
  private _overflow = 0;
  private _nextId = 0;
  private readonly _waiters = new Map<number, Waiter>();
  private _spoolKind: 'file' | 'memory' | undefined;
  private _closed = false;
  /** The last audit record emitted to it: the same one again means it is registered twice. */
  private _last: object | undefined;
  /** The process is exiting (its `exit` event): every record is written through. */
  private _exiting = false;
  /** The delivery thread has shut down (it is ending). */
  private _ended = false;
  private _shutdown: Promise<void> | undefined;

  constructor(options: AuditLogRecordProcessorOptions = {}) {
    const internals = takeThreadedInternals();
    this._maxUnconfirmed = Math.max(1, internals.maxUnconfirmedBatches ?? MAX_UNCONFIRMED_BATCHES);
    this._commitDelayMillis = internals.commitDelayMillis ?? 0;
    this._threadFile = internals.threadFile;
    this._threadMainFile = internals.threadMainFile;
    this._leftoverCheckMillis = internals.leftoverCheckMillis;
    processorCreated(this._diag);
    this._options = options ?? {};
    const o = this._options;
    this._cfg = resolveProcessorConfig(o);
    const cfg = this._cfg;
    if (o.digestLogger !== undefined) {
      this._diag.warn(
        'digestLogger is not supported on a delivery thread (a Logger of this thread); the signed chain heads go to <spool>/digest.log only',
      );
    }
    if (cfg.recordAttributes) {
      this._diag.warn(
        'recordAttributes is not supported with a delivery thread (the producer id is known there only); records are not named',
      );
      cfg.recordAttributes = false;
    }
    // What the user's exporter was built from (undefined: none given, or not ours).
    const given = isKubernautAuditExporter(o.exporter)
      ? exporterGivenOf(o.exporter).options
      : undefined;
    this._replay = new MeterReplay(
      (role) =>
        (role === 'exporter' ? given?.meterProvider : o.meterProvider) ??
        metrics.getMeterProvider(),
      new Map([[METRIC_QUEUE_SIZE, () => this._intake.pending]]),
    );
    this._preparer = new Preparer({
      order: new TimestampOrder({ monotonic: cfg.monotonicTimestamps }),
      openApi: () => this._openApi,
      stamped: cfg.provenance,
    });
    const spec = given?.openapiSpec;
    if (typeof spec === 'string' && spec !== '') {
      // The delivery thread's exporter reports a spec it cannot use; here it is only not used.
      void loadSpec(spec).then((state) => {
        if (state.kind === 'ready') this._openApi = state.validator;
      });
    }
    this._seqs = cfg.provenance
      ? new SeqBlocks({
          memory: { control: this._progress, block: this._seqBlock },
          size: SEQ_BLOCK_FACTOR * cfg.maxExportBatchSize,
          ask: () => {
            // The flag is served between batches; the message wakes a thread that is idle.
            Atomics.store(this._progress, PROGRESS_SEQ_ASKED, 1);
            this._worker?.postMessage({ t: 'seqs' } satisfies ToThread);
          },
          waitMillis: EXIT_WAIT_MILLIS,
          failed: () => this._threadFailed(),
          onGiveUp: (failed) =>
            failed
              ? this._diag.error(
                  'the delivery thread could not load its modules (its error follows); audit records go to a processor on this thread once its end is seen',
                )
              : this._diag.warn(
                  `no provenance seqs from the delivery thread within ${EXIT_WAIT_MILLIS} ms: from now on seqs are assigned when records are stamped (a crash's losses on this thread are then not declared by the next session)`,
                ),
        })
      : undefined;
    this._intake = new Intake({
      durability: cfg.durability,
      maxQueueSize: cfg.maxQueueSize,
      maxExportBatchSize: cfg.maxExportBatchSize,
      scheduledDelayMillis: cfg.scheduledDelayMillis,
      exportTimeoutMillis: cfg.exportTimeoutMillis,
      drain: { run: (batch) => this._post(batch) },
      stamper: this._seqs,
      onDrained: () => undefined,
      onTimerDrift: (s) => void this._drift.push(s),
      onOverflow: (n) => {
        this._overflow += n;
      },
    });
    this._worker = this._startThread();
    this._removeExitHook = onProcessExit((cause) => this._onExit(cause));
  }

  /**
   * Where records wait, as the delivery thread last said: `'file'` or `'memory'`; undefined
   * until the thread has started. @experimental
   */
  get spoolKind(): 'file' | 'memory' | undefined {
    return this._fallback?.spoolKind ?? this._spoolKind;
  }

  /**
   * The `threadId` of the delivery thread; undefined when there is none (not started, ended, or
   * the records go to a processor on this thread). @experimental
   */
  get deliveryThreadId(): number | undefined {
    return this._fallback === undefined && !this._ended ? this._worker?.threadId : undefined;
  }

  /** Takes audit records; leaves every other record untouched. Never throws. */
  onEmit(logRecord: ReadWriteLogRecord, context?: Context): void {
    try {
      if (!isAuditRecord(logRecord)) return;
      if (logRecord === this._last) {
        registeredTwice(this._diag);
        return;
      }
      this._last = logRecord;
      auditRecordReceived(logRecord, this._diag, this);
      if (this._fallback !== undefined) {
        this._fallback.onEmit(logRecord, context);
        return;
      }
      if (this._closed) {
        this._diag.report('error', 'closed', '1 audit record dropped: emitted after shutdown', 1);
        return;
      }
      this._intake.offer(logRecord);
      // Exiting, no timer will run again: written through and waited for, as at the exit.
      if (this._exiting) this._onExit('exit');
    } catch (err) {
      this._diag.report('error', 'internal', `internal error in onEmit: ${errorText(err)}`, 1);
    }
  }

  /** As AuditLogRecordProcessor.forceFlush(), answered by the delivery thread. */
  forceFlush(options?: ForceFlushOptions): Promise<void> {
    if (this._closed) return Promise.resolve();
    try {
      const timeout = flushTimeoutMillis(options?.timeoutMillis);
      this._intake.drainAll();
      if (this._fallback !== undefined)
        return this._fallback.forceFlush({ timeoutMillis: timeout });
      return this._ask({ t: 'flush', id: ++this._nextId, timeoutMillis: timeout }, timeout);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** As AuditLogRecordProcessor.shutdown(); then the delivery thread ends. */
  shutdown(): Promise<void> {
    this._shutdown ??= this._doShutdown().catch((err: unknown) => {
      this._diag.error(`shutdown failed: ${errorText(err)}`);
    });
    return this._shutdown;
  }

  private async _doShutdown(): Promise<void> {
    await this._intake.shutdown(); // drains: the last batch is posted
    this._closed = true;
    try {
      if (this._fallback !== undefined) await this._fallback.shutdown();
      else {
        const timeout = this._cfg.shutdownTimeoutMillis;
        const lastSeq = this._seqs?.lastUsed ?? 0;
        await this._ask({ t: 'shutdown', id: ++this._nextId, lastSeq }, timeout).catch(
          (err: unknown) => {
            this._diag.warn(`the delivery thread did not shut down: ${errorText(err)}`);
            void this._worker?.terminate();
          },
        );
      }
    } finally {
      this._ended = true;
      this._removeExitHook();
      this._replay.close();
      this._diag.flush();
    }
  }

  /** The drain of the intake: prepares the batch and posts it. */
  private _post(batch: readonly PendingRecord[]): DrainResult {
    const items: PreparedItem[] = [];
    const originals: ReadableLogRecord[] = [];
    const fallback = this._fallback;
    if (fallback === undefined) this._preparer.begin();
    const now = Date.now();
    for (const p of batch) {
      const r = p.record;
      p.record = undefined;
      if (r === undefined) continue;
      originals.push(r);
      if (fallback === undefined) items.push(this._preparer.prepare(r, p.seq, p.emittedAt, now));
    }
    const result = drainResult(originals.length, originals.length);
    if (fallback !== undefined) {
      for (const r of originals) fallback.onEmit(r as ReadWriteLogRecord);
      return result;
    }
    const counts = this._preparer.takeCounts();
    if (items.length === 0 && this._drift.length === 0 && this._overflow === 0) return result;
    const b: Batch = { n: ++this._n, size: items.length, originals };
    this._confirmed();
    const behind = this._unconfirmed.length - this._maxUnconfirmed + 1;
    if (behind > 0) {
      // The delivery thread is that far behind (a disk slower than the emit rate): wait for it,
      // as AuditLogRecordProcessor's emit waits for its own spool writes, instead of holding an
      // unbounded backlog of copies here.
      this._waitFor((this._unconfirmed[behind - 1] as Batch).n, this._cfg.exportTimeoutMillis);
      this._confirmed();
    }
    this._unconfirmed.push(b);
    const m: ToThread = {
      t: 'records',
      n: b.n,
      items: pack(items),
      counts,
      drift: this._drift,
      overflow: this._overflow,
    };
    this._drift = [];
    this._overflow = 0;
    try {
      this._worker?.postMessage(m);
    } catch {
      // A dead letter's snapshot that cannot be cloned: post the sanitised copies instead.
      this._worker?.postMessage({ ...m, items: pack(sanitisedSnapshots(items)) });
    }
    if (this._cfg.durability === 'sync') this._waitFor(b.n, this._cfg.exportTimeoutMillis);
    return result;
  }

  /** Forgets the batches the delivery thread has written. */
  private _confirmed(): void {
    const done = Atomics.load(this._progress, 0);
    let k = 0;
    while (k < this._unconfirmed.length && (this._unconfirmed[k] as Batch).n <= done) k++;
    if (k > 0) this._unconfirmed = this._unconfirmed.slice(k);
  }

  /** Blocks this thread until batch `n` is written or `millis` pass (not for an ended thread). */
  private _waitFor(n: number, millis: number): void {
    const deadline = Date.now() + millis;
    for (;;) {
      const done = Atomics.load(this._progress, 0);
      if (done >= n || this._worker === undefined || this._threadFailed()) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        this._diag.report(
          'error',
          'wait',
          `the delivery thread did not write ${n - done} batch(es) of audit records within ${millis} ms`,
          1,
        );
        return;
      }
      Atomics.wait(this._progress, 0, done, left);
    }
  }

  /** The delivery thread could not load its modules (it ends; its `exit` event follows). */
  private _threadFailed(): boolean {
    return Atomics.load(this._progress, PROGRESS_FAILED) !== 0;
  }

  private _onExit(cause: ExitCause): void {
    if (cause === 'exit') this._exiting = true; // what later `exit` listeners emit: see onEmit
    this._intake.drainAll();
    this._waitFor(this._n, EXIT_WAIT_MILLIS);
  }

  private _ask(m: ToThread & { id: number }, timeoutMillis: number): Promise<void> {
    const worker = this._worker;
    if (worker === undefined) return Promise.reject(new Error(`${PREFIX}: no delivery thread`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this._settle(
            m.id,
            new AuditFlushTimeoutError(
              `${PREFIX}: the delivery thread did not answer within ${timeoutMillis} ms`,
            ),
          );
          // The grace on top of the longest timer would overflow it (Node then fires after 1 ms).
        },
        Math.min(timeoutMillis + ANSWER_GRACE_MILLIS, MAX_TIMER_MILLIS),
      );
      this._waiters.set(m.id, { resolve, reject, timer });
      worker.ref(); // an answer is awaited: keep the process alive until it comes
      worker.postMessage(m);
    });
  }

  private _settle(id: number, error?: Error): void {
    const w = this._waiters.get(id);
    if (w === undefined) return;
    this._waiters.delete(id);
    clearTimeout(w.timer);
    if (this._waiters.size === 0) this._worker?.unref();
    if (error === undefined) w.resolve();
    else w.reject(error);
  }

  private _startThread(): Worker | undefined {
    const o = this._options;
    const e = o.exporter;
    const exporter: ThreadStart['exporter'] =
      e === undefined || e === null
        ? { kind: 'default' }
        : isKubernautAuditExporter(e)
          ? twinOf(e, this._diag)
          : { kind: 'foreign', name: constructorName(e) };
    const start: ThreadStart = {
      config: this._cfg,
      exporter,
      progress: this._progress,
      seqBlock: this._seqBlock,
      seqBlockSize: this._seqs === undefined ? 0 : SEQ_BLOCK_FACTOR * this._cfg.maxExportBatchSize,
      commitDelayMillis: this._commitDelayMillis,
      ...(this._threadMainFile === undefined ? {} : { mainModule: this._threadMainFile }),
      ...(this._leftoverCheckMillis === undefined
        ? {}
        : { leftoverCheckMillis: this._leftoverCheckMillis }),
    };
    let worker: Worker;
    try {
      const file =
        this._threadFile === undefined
          ? deliveryThreadFile()
          : { path: this._threadFile, execArgv: [] };
      // Checked here: a thread that cannot load its module fails only after the first emit has
      // waited (up to 10 s) for provenance seqs it would have published.
      if (!existsSync(file.path)) {
        throw new Error(
          `its module ${file.path} is missing (a bundled application? keep @kubernaut/exporter-kubernaut-audit out of the bundle, or use AuditLogRecordProcessor)`,
        );
      }
      worker = new Worker(file.path, {
        workerData: start,
        // Inherits this process's execArgv, unless the sources run (tests): then only the condition.
        ...(file.execArgv.length > 0 ? { execArgv: file.execArgv } : {}),
        stdout: false,
        stderr: false,
      });
    } catch (err) {
      this._diag.error(
        `the delivery thread could not be started: ${errorText(err)}; running on this thread`,
      );
      this._fallback = this._onThisThread();
      return undefined;
    }
    worker.on('message', (m: FromThread) => this._onMessage(m));
    worker.on('error', (err) => {
      this._diag.error(`the delivery thread failed: ${errorText(err)}`);
    });
    worker.on('exit', (code) => this._onThreadExit(code));
    worker.unref(); // after the listeners: adding a 'message' listener refs the port again
    return worker;
  }

  private _onMessage(m: FromThread): void {
    switch (m.t) {
      case 'ready':
        this._spoolKind = m.spoolKind;
        return;
      case 'diag':
        // Once shutting down, the thread's last summaries pass the stderr fallback's limit.
        forwardDiag(m, this._closed);
        return;
      case 'metrics':
        try {
          this._replay.apply(m.batch);
        } catch (err) {
          this._diag.report(
            'warn',
            'metrics',
            `metrics of the delivery thread not recorded: ${errorText(err)}`,
            1,
          );
        }
        return;
      case 'flushed':
        this._settle(m.id, m.error === undefined ? undefined : asError(m.error));
        return;
      case 'shut':
        this._settle(m.id);
        return;
    }
  }

  private _onThreadExit(code: number): void {
    this._worker = undefined;
    for (const id of [...this._waiters.keys()]) {
      this._settle(
        id,
        this._closed
          ? undefined
          : new Error(`${PREFIX}: the delivery thread ended (exit code ${code})`),
      );
    }
    if (this._closed) return;
    this._confirmed();
    const left = this._unconfirmed;
    this._unconfirmed = [];
    this._diag.error(
      `the delivery thread ended unexpectedly (exit code ${code}); audit records go to a processor on this thread from now on (${left.reduce((s, b) => s + b.size, 0)} record(s) it had not written are handed to it)`,
    );
    const fallback = this._onThisThread();
    this._fallback = fallback;
    for (const b of left) {
      for (const r of b.originals) fallback.onEmit(r as ReadWriteLogRecord);
    }
  }

  private _onThisThread(): AuditLogRecordProcessor {
    return withProcessorInternals(
      { resolved: this._cfg },
      () => new AuditLogRecordProcessor(this._options),
    );
  }
}

/**
 * A diag line of the delivery thread, routed as the application thread's own components' lines
 * are: to its diag logger; without one, warnings and errors to the stderr fallback (one line per
 * kind of problem a minute: the kind is the line without its numbers and details; `last`: the
 * thread's last word, at shutdown, which passes that limit as a component's last summaries do).
 */
function forwardDiag(m: Extract<FromThread, { t: 'diag' }>, last = false): void {
  try {
    if (isDiagLoggerRegistered()) {
      if (m.namespace === '') diag[m.level](m.message);
      else diag.createComponentLogger({ namespace: m.namespace })[m.level](m.message);
    } else if (m.level === 'warn' || m.level === 'error') {
      const kind = (m.message.split(':')[0] ?? '').replace(/[0-9]+/g, '#');
      stderrFallback.line(m.level, m.namespace || 'delivery thread', kind, m.message, last);
    }
  } catch {
    // a broken diag logger must not break the processor
  }
}

function twinOf(
  e: Parameters<typeof exporterGivenOf>[0],
  d: ComponentDiag,
): ThreadStart['exporter'] {
  const given = exporterGivenOf(e);
  if (given.hooked)
    d.warn('the exporter was built with test hooks; its twin on the delivery thread has none');
  const { meterProvider: _onThisThread, ...options } = given.options;
  return { kind: 'twin', options };
}

function constructorName(e: unknown): string {
  const name = (e as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === 'string' ? name : typeof e;
}

function asError(e: { name: string; message: string }): Error {
  const err =
    e.name === 'TimeoutError' ? new AuditFlushTimeoutError(e.message) : new Error(e.message);
  err.name = e.name;
  return err;
}

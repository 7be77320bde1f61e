// SPDX-License-Identifier: Apache-2.0
/*
 * The sender (DESIGN §6 stage 2, issue 11 behaviours 4, 10, 11): spool → AuditDeliverer.
 *
 * Invariants:
 * - Lanes are the spool's (`meta.lanes`); a lane holds the events of its correlation ids in
 *   spool order, so one correlation's events reach DataStorage in emit order, across restarts.
 * - One request in flight per lane: a lane hands one batch to the deliverer and waits for
 *   every event of it to be settled before the next. Lanes never wait for each other: one
 *   stuck record stops only its lane (and the deliverer quarantines it, see deliver/).
 * - Memory is bounded per lane: a lane holds at most `laneBudgetBytes` of frame bytes (at
 *   least one frame). When frames do not fit, the lane goes to disk mode: it forgets them (they
 *   are on the spool) and reads them back in order with `readLane` when it has room. Frames
 *   are never reordered against frames held in memory: in disk mode every later frame is read
 *   from the spool too, until the reads catch up. The total of the budgets bounds memory
 *   during an outage, whatever the spool holds. A lane reads back from the spool at most
 *   `min(budget, DISK_READ_AHEAD_BYTES)` ahead; frames read back go into the lane's read arena
 *   (read-arena.ts, two read-aheads), their index arrays with them: a drain reuses the same
 *   memory instead of new buffers per frame; a frame's bytes are reused only after the request
 *   that carried it settled.
 * - A stalled lane keeps nothing it does not need: when a frame arrives for a lane whose
 *   request failed and waits for its retry (the deliverer's onRetry: DataStorage down,
 *   refusing, answering 5xx), or has been in flight for STALLED_MILLIS (DataStorage slow), the
 *   lane lets go of the frames it holds but has not begun to send and goes to disk mode. From
 *   the first failed attempt of an outage a lane holds about one request, not its budget (the
 *   budgets' frames would keep every append buffer they are slices of alive).
 * - While every lane reads from the spool, enqueue() keeps no appended frame: then (and only
 *   then) appendBuffer() lends the spool one reused buffer for its appends.
 * - A lane is never stopped by one event: when the deliverer hands back events DataStorage
 *   rejected while accepting nothing anywhere (after asking `moreBehind`), the lane's next
 *   batch is those events followed by the events behind them, so that their acceptance (the
 *   evidence that the rejected event, not DataStorage, is bad) can happen at all.
 * - Before each batch is handed to the deliverer its seqs are marked SENT (one write); after
 *   it, its settled seqs (accepted or dead-lettered) are acked in lane order (one write). An
 *   event a previous process had marked SENT counts in `kubernaut.audit.duplicates_possible`
 *   when it is sent again (the deliverer counts it).
 * - A spool belongs to one destination: when the deliverer's destination differs from the
 *   spool's, nothing is sent; the records wait and the mismatch is reported (diag error once
 *   per interval, gauge `kubernaut.audit.spool.destination_mismatch` = 1). The spool's
 *   destination is read each time (a spool directory that opens late brings its own).
 * - Fuller requests under load, no added latency at a low rate: a lane that started a request
 *   less than `coalesceMillis` ago and holds less than a full request waits for more frames
 *   until that much time has passed since its last request started (or until it holds a full
 *   request, or sendNow(): forceFlush and shutdown). A lane that has been quiet for longer
 *   sends at once. At most one wait is armed per lane; disk mode and retries never wait.
 * - Nothing keeps the process alive (the deliverer's waits are unref'd; so are the sender's
 *   own backoff after an unexpected error and its coalescing waits). Nothing throws out of the
 *   sender.
 */
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { Attributes, MeterProvider } from '@opentelemetry/api';
import { ComponentDiag } from '../measure/diag.ts';
import { SenderMetrics } from '../measure/sender-metrics.ts';
import { normalizeDestination, sameDestination } from './destination.ts';
import { type FramePart, frameBatch } from './frame-batch.ts';
import { createDeliveryHealth } from './health.ts';
import { ReadArena } from './read-arena.ts';
import type { AuditSpool, Frame, SeqRange } from './spool-port.ts';
import type { AuditDeliverer, DeliveryHealth, EventOutcome, OutgoingBatch } from './types.ts';

/** Default memory budget of one lane: 2 MiB of frame bytes (≥ 3 full requests of ≈ 600 KB ahead). */
export const DEFAULT_LANE_BUDGET_BYTES = 2 * 1024 * 1024;

/**
 * Default coalescing window of a lane under load (ms). A processor drains OTel's batches of 512
 * records into the spool, one frame per lane: without it each lane would send ~128 events per
 * request under load, four times the requests (and their per-request CPU) of one request per batch.
 */
export const DEFAULT_COALESCE_MILLIS = 50;

/**
 * How far ahead a lane in disk mode reads (at most its budget): about one full request of
 * realistic events. A drain needs no more (the next frames are read when a request settles;
 * reads come from the page cache), and 4 lanes × 2 MiB of read-ahead was ≈ 16 MB more resident
 * memory at the start of a drain, when V8's young generation is still at its burst size.
 */
export const DISK_READ_AHEAD_BYTES = 512 * 1024;

/**
 * A lane's read arena holds this many read-aheads: frames read back are at most a read-ahead
 * (plus one frame) ahead, and the slack keeps a wrapping ring from falling back to fresh buffers.
 */
const READ_ARENA_READ_AHEADS = 2;

/** A lane whose request has been in flight this long is stalled (see the module comment). */
export const STALLED_MILLIS = 1000;

/** Appends larger than this take a buffer of their own (the reused one does not grow past it). */
const MAX_APPEND_BUFFER_BYTES = 16 * 1024 * 1024;

export interface AuditSenderOptions {
  spool: AuditSpool;
  /** Where batches go; `destination` (normalised base URL) is checked against the spool's. */
  deliverer: AuditDeliverer & { readonly destination?: string | undefined };
  /**
   * Frame bytes one lane holds in memory at most [2 MiB]; the rest waits on the spool.
   * @experimental
   */
  laneBudgetBytes?: number;
  /** Events per batch handed to the deliverer [500]. */
  maxBatchEvents?: number;
  /**
   * Under load, a lane's requests start at most this often unless full (see the module
   * comment) [50]; 0 sends every frame at once.
   * @experimental
   */
  coalesceMillis?: number;
  /** Monotonic clock in ms [performance.now]. */
  now?: () => number;
  /** Shared "has DataStorage accepted anything lately?" [one of its own]. */
  health?: DeliveryHealth;
  meterProvider?: MeterProvider;
  /**
   * Called once per delivery that DataStorage accepted events of, with the emit time of the
   * oldest of them (delivery latency: one observation per request, not per event, see
   * measure/processor-metrics.ts) and how many it accepted.
   */
  onAccepted?: (oldestEmittedAt: number, events: number) => void;
  /** Called after seqs were acked (flush waiters check the spool's watermark). */
  onSettled?: () => void;
  /** Called after each batch that settled events, with how long it took and how many it settled. */
  onDelivered?: (millis: number, events: number) => void;
  /**
   * start() does not register the metrics; startMetrics() does (the processor calls it at its
   * first record, once NodeSDK has registered the global MeterProvider).
   */
  deferMetrics?: boolean;
  /** Waits after an unexpected error (tests record them) [unref'd timer]. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** One frame held by a lane: `next` is the first of its events not yet taken. */
interface Held {
  frame: Frame;
  next: number;
  /** Read back from the spool: some of its events may be acked already. */
  fromDisk: boolean;
}

class Lane {
  readonly id: number;
  readonly held: Held[] = [];
  heldBytes = 0;
  /** Highest seq taken into memory (frames are taken whole). */
  cursor = 0;
  /** Frames wait on the spool: every frame after `cursor` is read from there. */
  diskMode = true;
  /** The loop runs (set and cleared synchronously: no wake-up is lost). */
  active = false;
  running: Promise<void> | undefined;
  /** A batch whose events came back pending (unexpected), to deliver again first. */
  retry: Work | undefined;
  /**
   * Events the deliverer handed back to go with the events behind them (see the module
   * comment): the head of the lane's next batch.
   */
  carry: Work | undefined;
  /** Frames _release() must keep (the carried events' while the next ones are taken). */
  pinned: readonly Held[] | undefined;
  /** The deliverer asked whether events wait behind its batch, and they did. */
  yielded = false;
  /** The deliverer's moreBehind for the lane's requests. */
  readonly moreBehind: () => boolean;
  errors = 0;
  /** When the lane's last request started (the sender's clock). */
  lastSentAt = Number.NEGATIVE_INFINITY;
  /** A request of the lane is with the deliverer (started at `lastSentAt`). */
  inFlight = false;
  /** The deliverer is backing off before retrying the lane's request in flight. */
  retrying = false;
  /** The deliverer's onRetry for the lane's requests. */
  readonly onRetry = (): void => {
    this.retrying = true;
  };
  /** The armed coalescing wait. */
  timer: ReturnType<typeof setTimeout> | undefined;
  /** sendNow() asked: no coalescing wait until the lane has sent everything it held. */
  urgent = false;
  /** Where frames read back from the spool go (while the lane reads from disk). */
  arena: ReadArena | undefined;

  constructor(id: number, spool: AuditSpool) {
    this.id = id;
    this.moreBehind = () => {
      // Frames held but not all taken; in disk mode, frames on the spool after the cursor.
      let more = false;
      for (const h of this.held) if (h.next < h.frame.count) more = true;
      if (!more && this.diskMode) more = spool.hasFramesAfter?.(this.id, this.cursor) ?? true;
      if (more) this.yielded = true;
      return more;
    };
  }
}

/** A lane's batch: parts of frames, in order, and the frames they come from. */
interface Work {
  parts: FramePart[];
  frames: Held[];
}

function lastSeq(f: Frame): number {
  return f.firstSeq + f.count - 1;
}

/** A destination as logged: normalised (no credentials of a user-info part). */
function shown(url: string | undefined): string {
  try {
    return url === undefined ? '(none)' : normalizeDestination(url);
  } catch {
    return '(not a URL)';
  }
}

/** Consecutive runs of ascending seqs. */
export function toRanges(seqs: readonly number[]): SeqRange[] {
  const out: SeqRange[] = [];
  for (const s of seqs) {
    const last = out[out.length - 1];
    if (last !== undefined && s === last.to + 1) last.to = s;
    else out.push({ from: s, to: s });
  }
  return out;
}

const unrefSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done, { once: true });
  });

/** Delivers what the spool holds, lane by lane; see the module comment. */
export class AuditSender {
  private readonly _spool: AuditSpool;
  private readonly _deliverer: AuditSenderOptions['deliverer'];
  private readonly _lanes: Lane[];
  private readonly _budget: number;
  private readonly _readAhead: number;
  private readonly _maxEvents: number;
  private readonly _health: DeliveryHealth;
  private readonly _opts: AuditSenderOptions;
  private readonly _abort = new AbortController();
  private readonly _diag = new ComponentDiag('kubernaut-audit sender');
  private readonly _metrics: SenderMetrics;
  private readonly _sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly _coalesce: number;
  private readonly _now: () => number;
  private _started = false;
  private _stopped = false;
  private _appendScratch: Buffer | undefined;

  constructor(options: AuditSenderOptions) {
    this._opts = options;
    this._spool = options.spool;
    this._deliverer = options.deliverer;
    const budget = options.laneBudgetBytes;
    this._budget = typeof budget === 'number' && budget > 0 ? budget : DEFAULT_LANE_BUDGET_BYTES;
    this._readAhead = Math.min(this._budget, DISK_READ_AHEAD_BYTES);
    this._maxEvents = Math.max(
      1,
      Math.min(MAX_BATCH_EVENTS, Math.floor(options.maxBatchEvents ?? MAX_BATCH_EVENTS)),
    );
    this._health = options.health ?? createDeliveryHealth();
    this._sleep = options.sleep ?? unrefSleep;
    const c = options.coalesceMillis;
    this._coalesce = typeof c === 'number' && c >= 0 ? c : DEFAULT_COALESCE_MILLIS;
    this._now = options.now ?? (() => performance.now());
    const lanes = Math.max(1, Math.floor(this._spool.meta.lanes || 1));
    this._lanes = Array.from({ length: lanes }, (_, i) => new Lane(i, this._spool));
    this._metrics = new SenderMetrics({
      ...(options.meterProvider ? { meterProvider: options.meterProvider } : {}),
      destinationMismatch: () => (this.destinationMismatch ? 1 : 0),
      heldBytes: () => this.heldBytes(),
    });
  }

  /** True when the spool belongs to another destination: nothing is sent. */
  get destinationMismatch(): boolean {
    const spoolDestination = this._spool.meta.destination;
    const ours = this._deliverer.destination;
    return (
      spoolDestination !== undefined &&
      ours !== undefined &&
      !sameDestination(spoolDestination, ours)
    );
  }

  /** Frame bytes held in memory (by one lane, or all). */
  heldBytes(lane?: number): number {
    if (lane !== undefined) return this._lanes[lane]?.heldBytes ?? 0;
    let n = 0;
    for (const l of this._lanes) n += l.heldBytes;
    return n;
  }

  /** Starts delivering: reads what the spool already holds (a predecessor's backlog). */
  start(): void {
    if (this._started || this._stopped) return;
    this._started = true;
    if (this._opts.deferMetrics !== true) this._metrics.start();
    if (this._reportMismatch()) return;
    for (const lane of this._lanes) this._run(lane);
  }

  /** Registers the sender's metrics (once; see `deferMetrics`), with `attrs` on each point. */
  startMetrics(attrs?: Attributes): void {
    if (!this._stopped) this._metrics.start(attrs);
  }

  /**
   * The spool holds frames that were never enqueued (a spool directory that opened late
   * brought a predecessor's backlog): every lane reads from the spool again after what it has
   * taken, so nothing is skipped and the spool's order is kept.
   */
  rescan(): void {
    if (this._stopped) return;
    for (const lane of this._lanes) lane.diskMode = true;
    if (!this._started || this._reportMismatch()) return;
    for (const lane of this._lanes) this._run(lane);
  }

  /** Frames just appended to the spool, in append order. Never throws. */
  enqueue(frames: readonly Frame[]): void {
    if (this._stopped) return;
    try {
      const now = this._now();
      for (const f of frames) {
        const lane = this._lanes[f.lane];
        if (lane === undefined) continue;
        const last = lastSeq(f);
        if (lane.inFlight && (lane.retrying || now - lane.lastSentAt >= STALLED_MILLIS)) {
          // Stalled: this frame and every later one wait on the spool, and so do the held
          // frames the lane has not begun to send (also those it kept before going to disk mode).
          this._shed(lane);
          continue;
        }
        if (lane.diskMode || last <= lane.cursor) continue;
        if (lane.held.length > 0 && lane.heldBytes + f.frameBytes > this._budget) {
          // Over the budget: this frame and every later one wait on the spool.
          lane.diskMode = true;
          continue;
        }
        lane.held.push({ frame: f, next: 0, fromDisk: false });
        lane.heldBytes += f.frameBytes;
        lane.cursor = last;
      }
    } catch (err) {
      this._diag.report('error', 'enqueue', `sender error: ${errorText(err)}`);
    }
    if (!this._started) return;
    if (this._reportMismatch()) return;
    for (const f of frames) {
      const lane = this._lanes[f.lane];
      if (lane !== undefined) this._runSoon(lane);
    }
  }

  /**
   * A buffer for the spool's next append, reused append after append, while every lane reads
   * from the spool (an outage, a backlog): enqueue() then keeps none of the appended frames, so
   * their bytes are not needed past the append. Undefined when a lane may keep one (the append
   * takes a buffer of its own). Large buffers freed at a high rate fragment glibc's heap: during
   * a burst through an outage this is ≈ 10–25 MB of resident memory.
   */
  appendBuffer(bytes: number): Buffer | undefined {
    if (bytes > MAX_APPEND_BUFFER_BYTES) return undefined;
    for (const lane of this._lanes) if (!lane.diskMode) return undefined;
    if (this._appendScratch === undefined || this._appendScratch.length < bytes) {
      this._appendScratch = Buffer.allocUnsafeSlow(Math.max(bytes, 1024 * 1024));
    }
    return this._appendScratch.subarray(0, bytes);
  }

  /** Every lane sends what it holds now, without waiting to coalesce (forceFlush, shutdown). */
  sendNow(): void {
    if (!this._started || this._stopped) return;
    for (const lane of this._lanes) {
      this._disarm(lane);
      if (lane.held.length === 0 && !lane.diskMode && lane.retry === undefined) continue;
      lane.urgent = true;
      this._run(lane);
    }
  }

  /**
   * Stops sending: deliveries in flight are aborted (their unsettled events stay in the spool
   * for the next process), lanes end. Removes the sender's observable metrics.
   */
  async stop(): Promise<void> {
    this._stopped = true;
    this._appendScratch = undefined;
    for (const lane of this._lanes) this._disarm(lane);
    this._abort.abort();
    await Promise.allSettled(this._lanes.map((l) => l.running));
    this._metrics.close();
    this._diag.flush();
  }

  private _reportMismatch(): boolean {
    if (!this.destinationMismatch) return false;
    this._diag.report(
      'error',
      'destination',
      `the spool belongs to DataStorage ${shown(this._spool.meta.destination)} but the exporter sends to ${shown(this._deliverer.destination)}: nothing is sent, the records wait in the spool (point the exporter at the spool's DataStorage, or use another spool directory)`,
    );
    return true;
  }

  private _run(lane: Lane): void {
    if (lane.active || this._stopped) return;
    this._disarm(lane);
    lane.active = true;
    lane.running = this._loop(lane);
  }

  /** Runs the lane now, or arms its coalescing wait (see the module comment). */
  private _runSoon(lane: Lane): void {
    if (lane.active || this._stopped) return;
    const wait = this._coalesceWait(lane);
    if (wait <= 0) {
      this._run(lane);
      return;
    }
    this._arm(lane, wait);
  }

  /** How long the lane should wait for more frames before its next request (≤ 0: none). */
  private _coalesceWait(lane: Lane): number {
    if (this._coalesce <= 0 || lane.diskMode || lane.retry !== undefined) return 0;
    let events = 0;
    for (const h of lane.held) {
      events += h.frame.count - h.next;
      if (events >= this._maxEvents) return 0;
    }
    if (events === 0) return 0;
    return lane.lastSentAt + this._coalesce - this._now();
  }

  private _arm(lane: Lane, wait: number): void {
    if (lane.timer !== undefined) return;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this._run(lane);
    }, Math.ceil(wait));
    lane.timer.unref?.();
  }

  private _disarm(lane: Lane): void {
    if (lane.timer === undefined) return;
    clearTimeout(lane.timer);
    lane.timer = undefined;
  }

  /**
   * The lane's loop. `active` is cleared in the same turn as the decision to end (no await in
   * between), so an enqueue() right after never finds a loop that is about to end.
   */
  private async _loop(lane: Lane): Promise<void> {
    try {
      while (!this._stopped) {
        if (this.destinationMismatch) break; // a spool opened late may belong elsewhere
        if (lane.retry === undefined && !lane.urgent) {
          const wait = this._coalesceWait(lane);
          if (wait > 0) {
            this._arm(lane, wait); // under load: a fuller request in a moment
            break;
          }
        }
        let work: Work | undefined;
        try {
          work = lane.retry ?? this._takeAfterCarry(lane);
        } catch (err) {
          this._diag.report('error', 'read', `sender error reading the spool: ${errorText(err)}`);
          if (await this._pause(lane)) break;
          continue;
        }
        lane.retry = undefined;
        if (work === undefined) {
          lane.urgent = false;
          break;
        }
        const batch = frameBatch(work.parts);
        lane.lastSentAt = this._now();
        lane.inFlight = true;
        const outcomes = await this._deliver(batch, lane);
        lane.inFlight = false;
        lane.retrying = false;
        if (outcomes === undefined) {
          lane.retry = work;
          if (await this._pause(lane)) break;
          continue;
        }
        const pending = this._settle(lane, batch, outcomes, work);
        if (pending === undefined) {
          lane.errors = 0;
          continue;
        }
        if (this._stopped) break;
        if (lane.yielded) {
          // Handed back to go with the events behind them (the deliverer has backed off).
          lane.carry = pending;
          continue;
        }
        // The deliverer gives events back only when aborted: unexpected here. Retry them.
        lane.retry = pending;
        if (await this._pause(lane)) break;
      }
    } catch (err) {
      this._diag.report('error', 'lane', `sender error: ${errorText(err)}`);
    }
    lane.active = false;
  }

  /** Marks SENT and delivers; undefined after an unexpected error. */
  private async _deliver(batch: OutgoingBatch, lane: Lane): Promise<EventOutcome[] | undefined> {
    try {
      this._spool.markSent(toRanges(batch.seqs));
      const started = performance.now();
      lane.yielded = false;
      const outcomes = await this._deliverer.deliver(batch, {
        signal: this._abort.signal,
        health: this._health,
        onRetry: lane.onRetry,
        moreBehind: lane.moreBehind,
      });
      if (!Array.isArray(outcomes) || outcomes.length !== batch.seqs.length) {
        throw new Error('the deliverer returned no outcome per event');
      }
      // A delivery that settled nothing (aborted at shutdown, DataStorage unreachable) is not
      // a slow delivery: it is reported by the deliverer as what it was.
      let settled = 0;
      for (const o of outcomes) if (o !== 'pending') settled++;
      if (settled > 0) this._opts.onDelivered?.(performance.now() - started, settled);
      return outcomes;
    } catch (err) {
      this._diag.report('error', 'deliver', `sender error: ${errorText(err)}`);
      return undefined;
    }
  }

  /** Acks what was settled, releases frames; returns what is left to deliver again. */
  private _settle(
    lane: Lane,
    batch: OutgoingBatch,
    outcomes: EventOutcome[],
    work: Work,
  ): Work | undefined {
    const settled: number[] = [];
    const pendingSeqs = new Set<number>();
    let accepted = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (let k = 0; k < outcomes.length; k++) {
      const o = outcomes[k];
      const seq = batch.seqs[k] as number;
      if (o === 'accepted') {
        settled.push(seq);
        accepted++;
        const emittedAt = batch.emittedAt(k);
        if (emittedAt < oldest) oldest = emittedAt;
      } else if (o === 'dead_lettered') settled.push(seq);
      else pendingSeqs.add(seq);
    }
    if (accepted > 0) this._opts.onAccepted?.(oldest, accepted);
    if (settled.length > 0) {
      try {
        this._spool.ack(toRanges(settled));
      } catch (err) {
        this._diag.report('error', 'ack', `sender error acknowledging: ${errorText(err)}`);
      }
    }
    let rest: Work | undefined;
    if (pendingSeqs.size > 0) {
      const parts: FramePart[] = [];
      for (const p of work.parts) {
        const events = p.events.filter((e) => pendingSeqs.has(p.frame.firstSeq + e));
        if (events.length > 0) parts.push({ frame: p.frame, events });
      }
      rest = { parts, frames: work.frames };
    } else {
      // Frames whose every event has been taken and settled leave memory.
      this._release(lane);
    }
    if (settled.length > 0) this._opts.onSettled?.();
    return rest;
  }

  /**
   * The lane's carried events (if any) followed by the next events it holds, within one
   * request's limits; else the next batch.
   */
  private _takeAfterCarry(lane: Lane): Work | undefined {
    const carry = lane.carry;
    if (carry === undefined) return this._take(lane);
    lane.carry = undefined;
    let count = 0;
    let bytes = 2;
    for (const p of carry.parts) {
      for (const e of p.events) bytes += (p.frame.length[e] as number) + (count++ > 0 ? 1 : 0);
    }
    // The carried events' frames stay held (their bytes go into the request) while taking.
    lane.pinned = carry.frames;
    let more: Work | undefined;
    try {
      more = this._take(lane, count, bytes);
    } finally {
      lane.pinned = undefined;
    }
    if (more === undefined) return carry;
    const frames = [...carry.frames];
    for (const h of more.frames) if (!frames.includes(h)) frames.push(h);
    return { parts: [...carry.parts, ...more.parts], frames };
  }

  /**
   * The next batch of the lane: pending events in order, ≤ maxEvents and < 5 MiB, counting
   * `count0` events of `bytes0` bytes already in it.
   */
  private _take(lane: Lane, count0 = 0, bytes0 = 2): Work | undefined {
    for (;;) {
      const cursor = lane.cursor;
      this._refill(lane);
      const parts: FramePart[] = [];
      const frames: Held[] = [];
      let count = count0;
      let bytes = bytes0;
      for (const h of lane.held) {
        if (h.next >= h.frame.count) continue;
        const f = h.frame;
        const events: number[] = [];
        let e = h.next;
        for (; e < f.count; e++) {
          if (h.fromDisk && this._spool.isAcked(f.firstSeq + e)) continue;
          const add = (f.length[e] as number) + (count > 0 ? 1 : 0);
          if (count > 0 && (count >= this._maxEvents || bytes + add >= MAX_BATCH_BYTES)) break;
          events.push(e);
          count++;
          bytes += add;
        }
        h.next = e;
        if (events.length > 0) parts.push({ frame: f, events });
        frames.push(h);
        if (e < f.count) break;
      }
      if (count > count0) return { parts, frames };
      // Nothing pending in memory (frames read back may hold only acked events).
      const released = this._release(lane);
      if (!lane.diskMode || (lane.cursor === cursor && released === 0)) return undefined;
    }
  }

  /** Drops the frames at the head whose events were all taken and settled; how many. */
  private _release(lane: Lane): number {
    let n = 0;
    while (lane.held.length > 0) {
      const h = lane.held[0] as Held;
      if (h.next < h.frame.count || lane.pinned?.includes(h) === true) break;
      lane.held.shift();
      lane.heldBytes -= h.frame.frameBytes;
      if (h.fromDisk) lane.arena?.release(h.frame.body);
      n++;
    }
    if (!lane.diskMode && lane.arena !== undefined && lane.arena.regions === 0) {
      lane.arena = undefined; // caught up: the ring is not kept for an idle lane
    }
    return n;
  }

  /**
   * Disk mode from now on; the frames at the end of `held` that the lane has not begun to send
   * (none of their events taken, so no request carries their bytes) are let go: they are on the
   * spool (or in its memory) and are read back after the frames kept.
   */
  private _shed(lane: Lane): void {
    lane.diskMode = true;
    let first: Held | undefined;
    while (lane.held.length > 0) {
      const h = lane.held[lane.held.length - 1] as Held;
      if (h.next > 0) break;
      lane.held.pop();
      lane.heldBytes -= h.frame.frameBytes;
      if (h.fromDisk) lane.arena?.release(h.frame.body);
      first = h;
    }
    if (first !== undefined) lane.cursor = first.frame.firstSeq - 1;
  }

  /** In disk mode, reads the lane's next frames from the spool while the read-ahead has room. */
  private _refill(lane: Lane): void {
    if (!lane.diskMode) return;
    const room = this._readAhead - lane.heldBytes;
    if (room <= 0 && lane.held.length > 0) return;
    // The arena is made when a frame is first read from disk (not for an empty spool).
    const mark = lane.arena?.mark() ?? 0;
    const frames = this._spool.readLane(lane.id, lane.cursor, Math.max(1, room), (n) => {
      lane.arena ??= new ReadArena(READ_ARENA_READ_AHEADS * this._readAhead);
      return lane.arena.alloc(n);
    });
    const kept: Buffer[] = [];
    for (const f of frames) {
      const last = lastSeq(f);
      if (last <= lane.cursor) continue;
      const next = Math.max(0, lane.cursor + 1 - f.firstSeq);
      lane.held.push({ frame: f, next, fromDisk: true });
      lane.heldBytes += f.frameBytes;
      lane.cursor = last;
      kept.push(f.body);
    }
    lane.arena?.commit(mark, kept);
    if (frames.length === 0) lane.diskMode = false;
  }

  /** Backs off after an unexpected error; true when the sender stopped meanwhile. */
  private async _pause(lane: Lane): Promise<boolean> {
    lane.errors++;
    const ms = Math.min(30_000, 500 * 2 ** Math.min(10, lane.errors - 1));
    await this._sleep(ms, this._abort.signal);
    return this._stopped;
  }
}

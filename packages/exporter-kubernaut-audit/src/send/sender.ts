// SPDX-License-Identifier: Apache-2.0
/*
 * send/ (minimal, until the delivery core's own sender lands): reads the spool per lane, in
 * order, forms requests of ≤ 500 events and < 5 MiB from frame bytes, and acknowledges an event
 * once the deliverer settled it (accepted or dead-lettered).
 *
 * Invariants:
 * - One request in flight per lane; a lane sends its events in spool order, so the events of one
 *   correlation id (one lane) reach DataStorage in emit order.
 * - Per-lane byte budget of frames held in memory; beyond it frames stay on disk and are read
 *   back (readLane) when the lane has room: memory during an outage is bounded by the budgets.
 * - SENT is marked before a request, ACK after it settles: one write each.
 * - A spool whose destination differs from the exporter's is not sent from (canSend()).
 * - Nothing here keeps the event loop alive (every wait is an unref'd timer).
 */
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import type { AuditSpool, Frame, SeqRange } from '../spool/types.ts';
import { FrameBatch } from './batch.ts';
import type { AuditDeliverer, DeliveryHealth, EventOutcome } from './types.ts';

/** Memory budget of frames per lane [8 MiB]. */
export const DEFAULT_LANE_BUDGET_BYTES = 8 * 1024 * 1024;
const WAIT_MILLIS = 5000;

export interface SenderOptions {
  spool: AuditSpool;
  deliverer: AuditDeliverer;
  laneBudgetBytes?: number;
  /** False while the spool's destination differs from the exporter's: lanes wait. */
  canSend(): boolean;
  /** After events were settled (acknowledged in the spool). */
  onSettled(): void;
  /** Per accepted event, with its emit time. */
  onAccepted?(emittedAt: number): void;
  /** Per deliver() call, its duration in seconds. */
  onDelivered?(seconds: number, events: number): void;
}

class Lane {
  readonly id: number;
  frames: Frame[] = [];
  bytes = 0;
  /** Highest seq read into `frames` (the next readLane continues after it). */
  readThrough = 0;
  /** Frames may wait on disk after readThrough. */
  behind = true;
  running = false;
  waiting: NodeJS.Timeout | undefined;
  constructor(id: number) {
    this.id = id;
  }
}

class Health implements DeliveryHealth {
  private _last: number | undefined;
  lastAcceptedAt(): number | undefined {
    return this._last;
  }
  accepted(now: number): void {
    this._last = now;
  }
}

export class Sender {
  private readonly _o: SenderOptions;
  private readonly _lanes: Lane[];
  private readonly _budget: number;
  private readonly _abort = new AbortController();
  private readonly _running = new Set<Promise<void>>();
  private readonly _health = new Health();
  private _stopped = false;

  constructor(options: SenderOptions) {
    this._o = options;
    this._budget = Math.max(1, options.laneBudgetBytes ?? DEFAULT_LANE_BUDGET_BYTES);
    this._lanes = [];
  }

  /** Frames just appended: kept in memory when their lane has room, else read back later. */
  enqueue(frames: readonly Frame[]): void {
    if (this._stopped) return;
    for (const f of frames) {
      const lane = this._lane(f.lane);
      if (
        !lane.behind &&
        f.firstSeq > lane.readThrough &&
        lane.bytes + f.frameBytes <= this._budget
      ) {
        lane.frames.push(f);
        lane.bytes += f.frameBytes;
        lane.readThrough = f.firstSeq + f.count - 1;
      } else if (f.firstSeq > lane.readThrough) {
        lane.behind = true;
      }
      this._start(lane);
    }
  }

  /** Starts every lane that has (or may have, on disk) something to send. */
  wake(): void {
    if (this._stopped) return;
    for (let i = 0; i < this._o.spool.meta.lanes; i++) this._start(this._lane(i));
  }

  /** Stops sending: requests in flight are aborted; what is unsettled stays in the spool. */
  async stop(): Promise<void> {
    this._stopped = true;
    this._abort.abort();
    for (const l of this._lanes) if (l.waiting !== undefined) clearTimeout(l.waiting);
    while (this._running.size > 0) await Promise.allSettled([...this._running]);
  }

  private _lane(i: number): Lane {
    while (this._lanes.length <= i) this._lanes.push(new Lane(this._lanes.length));
    return this._lanes[i] as Lane;
  }

  private _start(lane: Lane): void {
    if (lane.running || lane.waiting !== undefined || this._stopped) return;
    lane.running = true;
    const p = this._run(lane)
      .catch(() => undefined)
      .finally(() => this._running.delete(p));
    this._running.add(p);
  }

  private _wait(lane: Lane): void {
    lane.waiting = setTimeout(() => {
      lane.waiting = undefined;
      this._start(lane);
    }, WAIT_MILLIS);
    lane.waiting.unref();
  }

  private async _run(lane: Lane): Promise<void> {
    try {
      const spool = this._o.spool;
      while (!this._stopped) {
        if (!this._o.canSend()) {
          this._wait(lane);
          return;
        }
        this._dropSettled(lane);
        if (lane.frames.length === 0) {
          if (!lane.behind) return;
          const read = spool.readLane(lane.id, lane.readThrough, this._budget);
          if (read.length === 0) {
            lane.behind = false;
            return;
          }
          for (const f of read) {
            lane.frames.push(f);
            lane.bytes += f.frameBytes;
            lane.readThrough = f.firstSeq + f.count - 1;
          }
          continue;
        }
        const batch = this._take(lane);
        if (batch.size === 0) continue;
        const ranges = toRanges(batch.seqs);
        spool.markSent(ranges);
        const started = performance.now();
        const outcomes = await this._o.deliverer.deliver(batch, {
          signal: this._abort.signal,
          health: this._health,
        });
        this._o.onDelivered?.((performance.now() - started) / 1000, batch.size);
        const settled: number[] = [];
        let pending = false;
        for (let i = 0; i < batch.size; i++) {
          const o: EventOutcome | undefined = outcomes[i];
          if (o === 'accepted') {
            settled.push(batch.seqs[i] as number);
            this._o.onAccepted?.(batch.emittedAt(i));
          } else if (o === 'dead_lettered') settled.push(batch.seqs[i] as number);
          else pending = true;
        }
        if (settled.length > 0) {
          spool.ack(toRanges(settled));
          this._o.onSettled();
        }
        if (pending) {
          if (this._stopped) return;
          // The deliverer gave up without the signal (unexpected): try again after a pause.
          this._wait(lane);
          return;
        }
      }
    } finally {
      // Synchronously where the loop ends (a return with no await pending): frames enqueued
      // right after start a new loop.
      lane.running = false;
    }
  }

  /** The next request of the lane: pending events from its head frames, within the limits. */
  private _take(lane: Lane): FrameBatch {
    const spool = this._o.spool;
    const batch = new FrameBatch();
    for (const f of lane.frames) {
      for (let i = 0; i < f.count; i++) {
        if (spool.isAcked(f.firstSeq + i)) continue;
        if (
          batch.size >= MAX_BATCH_EVENTS ||
          (batch.size > 0 && batch.bytesWith(f, i) >= MAX_BATCH_BYTES)
        ) {
          return batch;
        }
        batch.add(f, i);
      }
    }
    return batch;
  }

  /** Drops fully acknowledged frames from the head of the lane. */
  private _dropSettled(lane: Lane): void {
    const spool = this._o.spool;
    let k = 0;
    while (k < lane.frames.length) {
      const f = lane.frames[k] as Frame;
      let done = true;
      for (let i = f.count - 1; i >= 0 && done; i--) done = spool.isAcked(f.firstSeq + i);
      if (!done) break;
      lane.bytes -= f.frameBytes;
      k++;
    }
    if (k > 0) lane.frames.splice(0, k);
  }
}

/** Ascending seqs → inclusive ranges. */
export function toRanges(seqs: readonly number[]): SeqRange[] {
  const out: SeqRange[] = [];
  for (const s of seqs) {
    const last = out[out.length - 1];
    if (last !== undefined && s === last.to + 1) last.to = s;
    else out.push({ from: s, to: s });
  }
  return out;
}

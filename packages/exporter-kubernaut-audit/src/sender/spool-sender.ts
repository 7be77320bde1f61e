// SPDX-License-Identifier: Apache-2.0
/*
 * The sender (DESIGN §6, stage 2): reads the spool in order, forms requests of ≤ 500 events
 * and < 5 MiB, hands them to the exporter's `deliver`, and acknowledges a record only once it
 * is settled (accepted or dead-lettered). Records are partitioned into lanes by a hash of
 * their correlation id: lanes run in parallel, each lane delivers sequentially, so the
 * events of one correlation id reach DataStorage in spool (= emit) order, also across
 * restarts (unacknowledged records are read again, in order, by the next process).
 * Event-driven: it runs when woken (new records) and sleeps otherwise; the only timer is
 * an unref'd back-off after an unexpected error.
 */
import {
  type AuditEventRequest,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
} from '@kubernaut/datastorage-contract';
import { decodeSpooled } from '../spool/spooled-record.ts';
import type { AuditSpool, SpoolEntry } from '../spool/types.ts';

export type DeliveryOutcome = 'accepted' | 'dead_lettered' | 'pending';

/** The part of KubernautAuditExporter the sender uses. */
export interface AuditDeliverer {
  deliver(
    events: AuditEventRequest[],
    options?: { signal?: AbortSignal },
  ): Promise<{ outcomes: DeliveryOutcome[] }>;
}

export interface SpoolSenderOptions {
  spool: AuditSpool;
  deliverer: AuditDeliverer;
  /** Parallel lanes (hash partitions of correlation ids) [4]. */
  lanes?: number;
  /** Events per deliver() call [500]. */
  maxBatchEvents?: number;
  /** Records read from the spool and not yet settled, at most [10000]. */
  maxInFlight?: number;
  /** Called for each accepted record with its emit time. */
  onAccepted?: (emittedAt: number) => void;
  /** Called when a spool payload cannot be decoded (it is then acknowledged and skipped). */
  onUndecodable?: (entry: SpoolEntry) => void;
  /** Called with the duration of every deliver() call. */
  onDeliverDuration?: (millis: number, events: number) => void;
  /** Called after records were settled (acknowledged). */
  onSettled?: () => void;
  /** Called when deliver() threw (unexpected); the batch is retried after a back-off. */
  onError?: (err: unknown) => void;
}

interface Item {
  seq: number;
  emittedAt: number;
  event: AuditEventRequest;
  bytes: number;
}

// Room for the JSON array brackets/commas and a margin under the 5 MiB body limit.
const BATCH_BYTES_BUDGET = MAX_BATCH_BYTES - 64 * 1024;

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

class Lane {
  readonly queue: Item[] = [];
  head = 0;
  running = false;

  get size(): number {
    return this.queue.length - this.head;
  }

  take(maxEvents: number): Item[] {
    const out: Item[] = [];
    let bytes = 0;
    while (this.head < this.queue.length && out.length < maxEvents) {
      const it = this.queue[this.head] as Item;
      if (out.length > 0 && bytes + it.bytes > BATCH_BYTES_BUDGET) break;
      out.push(it);
      bytes += it.bytes;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return out;
  }
}

/** Puts `items` back at the head of the lane, in order. */
function requeue(lane: Lane, items: Item[]): void {
  if (lane.head >= items.length) {
    lane.head -= items.length;
    for (let i = 0; i < items.length; i++) lane.queue[lane.head + i] = items[i] as Item;
  } else lane.queue.splice(lane.head, 0, ...items);
}

export class SpoolSender {
  private readonly _spool: AuditSpool;
  private readonly _deliverer: AuditDeliverer;
  private readonly _lanes: Lane[];
  private readonly _maxBatch: number;
  private readonly _maxInFlight: number;
  private readonly _opts: SpoolSenderOptions;
  private _cursor: number | undefined;
  private _inFlight = 0;
  private _scheduled = false;
  private _stopped = false;
  private readonly _abort = new AbortController();
  private readonly _running = new Set<Promise<void>>();
  private _backoffMillis = 0;

  constructor(options: SpoolSenderOptions) {
    this._opts = options;
    this._spool = options.spool;
    this._deliverer = options.deliverer;
    this._maxBatch = Math.max(
      1,
      Math.min(MAX_BATCH_EVENTS, options.maxBatchEvents ?? MAX_BATCH_EVENTS),
    );
    this._maxInFlight = Math.max(this._maxBatch, options.maxInFlight ?? 10_000);
    this._lanes = Array.from({ length: Math.max(1, options.lanes ?? 4) }, () => new Lane());
  }

  /** True while records read from the spool are being delivered. */
  get busy(): boolean {
    return this._inFlight > 0;
  }

  /** Signals that the spool has new records; reading happens asynchronously. */
  wake(): void {
    if (this._scheduled || this._stopped) return;
    this._scheduled = true;
    setImmediate(() => {
      this._scheduled = false;
      this._pump();
    });
  }

  /** Stops sending: in-flight deliveries are aborted; unsettled records stay in the spool. */
  async stop(): Promise<void> {
    this._stopped = true;
    this._abort.abort();
    while (this._running.size > 0) await Promise.allSettled([...this._running]);
  }

  private _pump(): void {
    if (this._stopped) return;
    try {
      while (this._inFlight < this._maxInFlight) {
        const room = this._maxInFlight - this._inFlight;
        const entries = this._spool.readUnacked(Math.min(room, 2048), this._cursor);
        if (entries.length === 0) break;
        const bad: number[] = [];
        for (const entry of entries) {
          this._cursor = entry.seq;
          const rec = decodeSpooled(entry.payload);
          if (!rec) {
            bad.push(entry.seq);
            this._opts.onUndecodable?.(entry);
            continue;
          }
          const cid = typeof rec.event.correlation_id === 'string' ? rec.event.correlation_id : '';
          const lane = this._lanes[hashString(cid) % this._lanes.length] as Lane;
          lane.queue.push({
            seq: entry.seq,
            emittedAt: rec.emittedAt,
            event: rec.event,
            bytes: entry.payload.length,
          });
          this._inFlight++;
        }
        if (bad.length > 0) {
          this._spool.ack(bad);
          this._opts.onSettled?.();
        }
      }
    } catch (err) {
      this._opts.onError?.(err);
    }
    for (const lane of this._lanes) {
      if (!lane.running && lane.size > 0) this._startLane(lane);
    }
  }

  private _startLane(lane: Lane): void {
    lane.running = true;
    const p = this._runLane(lane).finally(() => {
      lane.running = false;
      this._running.delete(p);
      if (!this._stopped) this._pump();
    });
    this._running.add(p);
  }

  private async _runLane(lane: Lane): Promise<void> {
    while (!this._stopped && lane.size > 0) {
      const batch = lane.take(this._maxBatch);
      let outcomes: DeliveryOutcome[];
      const started = performance.now();
      try {
        const res = await this._deliverer.deliver(
          batch.map((b) => b.event),
          { signal: this._abort.signal },
        );
        outcomes = res.outcomes;
        this._backoffMillis = 0;
      } catch (err) {
        // deliver() retries by itself; an exception here is unexpected: back off and retry.
        this._opts.onError?.(err);
        requeue(lane, batch);
        await this._backoff();
        continue;
      }
      this._opts.onDeliverDuration?.(performance.now() - started, batch.length);
      const settled: number[] = [];
      const unsettled: Item[] = [];
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i] as Item;
        const o = outcomes[i];
        if (o === 'accepted') {
          settled.push(item.seq);
          this._opts.onAccepted?.(item.emittedAt);
        } else if (o === 'dead_lettered') settled.push(item.seq);
        else unsettled.push(item);
      }
      if (settled.length > 0) {
        try {
          this._spool.ack(settled);
        } catch (err) {
          this._opts.onError?.(err);
        }
        this._inFlight -= settled.length;
        this._opts.onSettled?.();
      }
      if (unsettled.length > 0) {
        // After stop(): the rest stays in the spool for the next process. Otherwise
        // (unexpected) keep them at the head of the lane and retry after a back-off.
        if (this._stopped) return;
        requeue(lane, unsettled);
        await this._backoff();
      }
    }
  }

  private _backoff(): Promise<void> {
    this._backoffMillis = Math.min(30_000, this._backoffMillis ? this._backoffMillis * 2 : 500);
    const ms = this._backoffMillis;
    return new Promise((resolve) => {
      if (this._stopped) return resolve();
      const t = setTimeout(done, ms);
      t.unref();
      const signal = this._abort.signal;
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

// SPDX-License-Identifier: Apache-2.0
/*
 * MemorySpool: the same contract as FileSpool, in memory only. Used for `spool: false` and as
 * the fallback when the spool directory cannot be opened. Nothing survives the process.
 */
import { randomUUID } from 'node:crypto';
import { RECORD_HEAD_BYTES } from './frame.ts';
import type { AppendResult, AuditSpool, SpoolEntry, SpoolStats } from './types.ts';

const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;

interface MemoryEntry extends SpoolEntry {
  bytes: number;
  acked: boolean;
}

/** Options of a memory spool. */
export interface MemorySpoolOptions {
  /** Bound on live bytes (UTF-8 payload bytes plus the file spool's frame overhead) [1 GiB]. */
  maxBytes?: number;
}

export class MemorySpool implements AuditSpool {
  readonly kind = 'memory' as const;
  readonly producerId: string = randomUUID();
  private readonly maxBytes: number;
  /** Entries in seq order; [0, head) are all acknowledged. */
  private entries: MemoryEntry[] = [];
  private head = 0;
  private nextSeq = 1;
  private liveBytes = 0;
  private liveRecords = 0;
  private droppedFull = 0;
  private droppedInvalid = 0;
  private droppedClosed = 0;
  private closed = false;

  constructor(options?: MemorySpoolOptions) {
    const max = options?.maxBytes;
    if (max !== undefined && (typeof max !== 'number' || !(max > 0))) {
      throw new TypeError(`spool option maxBytes must be a positive number, got ${String(max)}`);
    }
    this.maxBytes = max ?? DEFAULT_MAX_BYTES;
  }

  append(payloads: readonly string[]): AppendResult {
    const n = payloads.length;
    if (this.closed) {
      this.droppedClosed += n;
      return {
        appended: 0,
        dropped: n,
        droppedIndexes: Array.from({ length: n }, (_, i) => i),
        error: new Error('audit spool is closed'),
      };
    }
    const now = Date.now();
    const droppedIndexes: number[] = [];
    let appended = 0;
    let firstSeq: number | undefined;
    let invalid = false;
    for (let i = 0; i < n; i++) {
      const payload = payloads[i];
      if (typeof payload !== 'string') {
        invalid = true;
        this.droppedInvalid++;
        droppedIndexes.push(i);
        continue;
      }
      const bytes = RECORD_HEAD_BYTES + Buffer.byteLength(payload, 'utf8');
      if (this.liveBytes + bytes > this.maxBytes) {
        this.droppedFull++;
        droppedIndexes.push(i);
        continue;
      }
      const seq = this.nextSeq++;
      firstSeq ??= seq;
      this.entries.push({ seq, appendedAt: now, payload, bytes, acked: false });
      this.liveBytes += bytes;
      this.liveRecords++;
      appended++;
    }
    const result: AppendResult = { appended, dropped: n - appended };
    if (firstSeq !== undefined) result.firstSeq = firstSeq;
    if (droppedIndexes.length > 0) result.droppedIndexes = droppedIndexes;
    if (invalid) result.error = new TypeError('audit spool payloads must be strings');
    return result;
  }

  private indexAfter(seq: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  readUnacked(limit: number, afterSeq?: number): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    if (!(limit > 0)) return out;
    const start = afterSeq === undefined ? this.head : this.indexAfter(afterSeq);
    for (let i = start; i < this.entries.length && out.length < limit; i++) {
      const e = this.entries[i]!;
      if (!e.acked) out.push({ seq: e.seq, appendedAt: e.appendedAt, payload: e.payload });
    }
    return out;
  }

  ack(seqs: readonly number[]): void {
    for (const seq of seqs) {
      const i = this.indexAfter(seq) - 1;
      const e = i >= this.head ? this.entries[i] : undefined;
      if (!e || e.seq !== seq || e.acked) continue;
      e.acked = true;
      e.payload = '';
      this.liveBytes -= e.bytes;
      this.liveRecords--;
    }
    while (this.head < this.entries.length && this.entries[this.head]!.acked) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  stats(): SpoolStats {
    const s: SpoolStats = {
      records: this.liveRecords,
      bytes: this.liveBytes,
      corruptedSkipped: 0,
      droppedFull: this.droppedFull,
      droppedWriteError: this.droppedClosed,
      droppedInvalid: this.droppedInvalid,
    };
    const oldest = this.entries[this.head];
    if (oldest) s.oldestAppendedAt = oldest.appendedAt;
    return s;
  }

  /** Drops the contents (they were never durable) and refuses further appends. */
  close(): void {
    this.closed = true;
  }
}

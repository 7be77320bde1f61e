// SPDX-License-Identifier: Apache-2.0
/*
 * In-memory index of a spool: one row per frame (struct of typed arrays, ≈ 48 bytes a frame)
 * and one byte of state per event. Frame bytes themselves are not kept (but for frames held in
 * memory, see spool.ts). Frames are rows in seq order; fully acknowledged rows at the head are
 * trimmed, so both tables stay as large as the live span of the spool.
 */

/** Per-event state bits. */
export const ACKED = 1;
export const SENT = 2;
/** Marked SENT by a previous process and not acknowledged: possibly delivered already. */
export const SENT_BEFORE = 4;

/** Where a frame lives: a segment id, or MEMORY while it waits to be written. */
export const MEMORY = -1;

export class FrameTable {
  /** Frame number of row 0. */
  base = 0;
  /** Rows in use. */
  rows = 0;
  seq = new Float64Array(64);
  disk = new Float64Array(64);
  count = new Uint16Array(64);
  lane = new Uint16Array(64);
  live = new Uint16Array(64);
  bytes = new Uint32Array(64);
  offset = new Float64Array(64);
  seg = new Int32Array(64);
  appended = new Float64Array(64);

  /** Frame number after the last. */
  get end(): number {
    return this.base + this.rows;
  }

  push(
    seq: number,
    disk: number,
    count: number,
    lane: number,
    live: number,
    bytes: number,
    offset: number,
    seg: number,
    appended: number,
  ): number {
    if (this.rows === this.seq.length) this.grow();
    const r = this.rows++;
    this.seq[r] = seq;
    this.disk[r] = disk;
    this.count[r] = count;
    this.lane[r] = lane;
    this.live[r] = live;
    this.bytes[r] = bytes;
    this.offset[r] = offset;
    this.seg[r] = seg;
    this.appended[r] = appended;
    return this.base + r;
  }

  private grow(): void {
    const cap = this.seq.length * 2;
    const g = <T extends Float64Array | Uint32Array | Uint16Array | Int32Array>(
      a: T,
      make: (n: number) => T,
    ): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.seq = g(this.seq, (n) => new Float64Array(n));
    this.disk = g(this.disk, (n) => new Float64Array(n));
    this.count = g(this.count, (n) => new Uint16Array(n));
    this.lane = g(this.lane, (n) => new Uint16Array(n));
    this.live = g(this.live, (n) => new Uint16Array(n));
    this.bytes = g(this.bytes, (n) => new Uint32Array(n));
    this.offset = g(this.offset, (n) => new Float64Array(n));
    this.seg = g(this.seg, (n) => new Int32Array(n));
    this.appended = g(this.appended, (n) => new Float64Array(n));
  }

  /** Row of frame number `f` (no bounds check). */
  row(f: number): number {
    return f - this.base;
  }

  /** Frame number of the first frame whose last seq is > `seq` (end when none). */
  firstAfter(seq: number): number {
    let lo = 0;
    let hi = this.rows;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.seq[mid] as number) + (this.count[mid] as number) - 1 <= seq) lo = mid + 1;
      else hi = mid;
    }
    return this.base + lo;
  }

  /** Frame number of the frame holding `seq`, or -1. */
  find(seq: number): number {
    const f = this.firstAfter(seq - 1);
    const r = f - this.base;
    return r < this.rows && (this.seq[r] as number) <= seq ? f : -1;
  }

  /** Drops fully acknowledged rows at the head. */
  trim(): void {
    let k = 0;
    while (k < this.rows && this.live[k] === 0) k++;
    if (k === 0) return;
    if (k === this.rows) {
      this.base += k;
      this.rows = 0;
      return;
    }
    if (k < 1024 && k * 4 < this.rows) return; // amortise: shift in bulk
    const arrays = [
      this.seq,
      this.disk,
      this.count,
      this.lane,
      this.live,
      this.bytes,
      this.offset,
      this.seg,
      this.appended,
    ];
    for (const a of arrays) a.copyWithin(0, k, this.rows);
    this.rows -= k;
    this.base += k;
  }
}

/** One state byte per event seq, from `base`; the seqs before `base` are all acknowledged. */
export class SeqStates {
  base = 1;
  /** Seq after the last one covered. */
  end = 1;
  /** Lowest seq that may be unacknowledged. */
  oldest = 1;
  bits = new Uint8Array(1024);

  /** Covers seqs up to `end` (exclusive), unacknowledged. */
  extend(end: number): void {
    if (end <= this.end) return;
    const need = end - this.base;
    if (need > this.bits.length) {
      this.compact();
      if (end - this.base > this.bits.length) {
        let cap = this.bits.length;
        while (cap < end - this.base) cap *= 2;
        const b = new Uint8Array(cap);
        b.set(this.bits.subarray(0, this.end - this.base));
        this.bits = b;
      }
    }
    this.bits.fill(0, this.end - this.base, end - this.base);
    this.end = end;
  }

  /** Covers seqs up to `end` (exclusive), acknowledged (seqs no frame holds). */
  extendAcked(end: number): void {
    const from = this.end;
    if (end <= from) return;
    this.extend(end);
    this.bits.fill(ACKED, from - this.base, end - this.base);
  }

  /** Starts the table at `seq` (nothing covered yet). */
  reset(seq: number): void {
    this.base = seq;
    this.end = seq;
    this.oldest = seq;
  }

  get(seq: number): number {
    if (seq < this.base) return ACKED;
    if (seq >= this.end) return 0;
    return this.bits[seq - this.base] as number;
  }

  set(seq: number, bit: number): void {
    if (seq >= this.base && seq < this.end) (this.bits[seq - this.base] as number) |= bit;
  }

  /** Advances `oldest` past acknowledged seqs. */
  advance(): void {
    let s = this.oldest;
    while (s < this.end && ((this.bits[s - this.base] as number) & ACKED) !== 0) s++;
    this.oldest = s;
    if (s - this.base > 65_536 && (s - this.base) * 2 > this.bits.length) this.compact();
  }

  private compact(): void {
    const k = this.oldest - this.base;
    if (k <= 0) return;
    this.bits.copyWithin(0, k, this.end - this.base);
    this.base = this.oldest;
  }
}

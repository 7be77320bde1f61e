// SPDX-License-Identifier: Apache-2.0
/*
 * In-memory index of one segment file: per record its seq, frame offset, payload length,
 * appendedAt and acked flag, in growable typed arrays (about 30 bytes per record).
 */
import { join } from 'node:path';
import { RECORD_HEAD_BYTES } from './frame.ts';

const NAME_DIGITS = 20;
export const SEGMENT_SUFFIX = '.seg';
const SEGMENT_NAME = /^(\d{20})\.seg$/;

/** File name of the segment whose records start at `baseSeq`. */
export function segmentFileName(baseSeq: number): string {
  return `${String(baseSeq).padStart(NAME_DIGITS, '0')}${SEGMENT_SUFFIX}`;
}

/** Base seq encoded in a segment file name, or undefined when `name` is not a segment. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export class Segment {
  readonly baseSeq: number;
  readonly path: string;
  /** Bytes of the file that hold frames (new frames are written here). */
  size = 0;
  /** File descriptor, opened lazily for old segments; read-write for the active one. */
  fd: number | undefined;
  /** Written since the last fsync. */
  dirty = false;
  count = 0;
  /** Unacknowledged records. */
  live = 0;
  /** Index of the first record that may be unacknowledged. */
  head = 0;
  seqs = new Float64Array(256);
  offsets = new Float64Array(256);
  lengths = new Uint32Array(256);
  appendedAt = new Float64Array(256);
  acked = new Uint8Array(256);

  constructor(directory: string, baseSeq: number) {
    this.baseSeq = baseSeq;
    this.path = join(directory, segmentFileName(baseSeq));
  }

  get lastSeq(): number {
    return this.count > 0 ? this.seqs[this.count - 1]! : this.baseSeq - 1;
  }

  private grow(): void {
    const cap = this.seqs.length * 2;
    const g = <T extends Float64Array | Uint32Array | Uint8Array>(
      a: T,
      make: (n: number) => T,
    ): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.seqs = g(this.seqs, (n) => new Float64Array(n));
    this.offsets = g(this.offsets, (n) => new Float64Array(n));
    this.lengths = g(this.lengths, (n) => new Uint32Array(n));
    this.appendedAt = g(this.appendedAt, (n) => new Float64Array(n));
    this.acked = g(this.acked, (n) => new Uint8Array(n));
  }

  /** Indexes a new (unacknowledged) record. */
  push(seq: number, offset: number, payloadBytes: number, appendedAt: number): void {
    if (this.count === this.seqs.length) this.grow();
    const i = this.count++;
    this.seqs[i] = seq;
    this.offsets[i] = offset;
    this.lengths[i] = payloadBytes;
    this.appendedAt[i] = appendedAt;
    this.acked[i] = 0;
    this.live++;
  }

  /** Frame bytes of record `i`. */
  frameBytes(i: number): number {
    return RECORD_HEAD_BYTES + this.lengths[i]!;
  }

  /** Index of the first record with seq > `seq`. */
  upperBound(seq: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the record with this seq, or -1. */
  indexOf(seq: number): number {
    const i = this.upperBound(seq) - 1;
    return i >= 0 && this.seqs[i] === seq ? i : -1;
  }

  /** Marks record `i` acknowledged; returns its frame bytes, or 0 when it already was. */
  markAcked(i: number): number {
    if (this.acked[i]) return 0;
    this.acked[i] = 1;
    this.live--;
    while (this.head < this.count && this.acked[this.head]) this.head++;
    return this.frameBytes(i);
  }
}

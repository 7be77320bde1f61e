// SPDX-License-Identifier: Apache-2.0
/*
 * An OutgoingBatch over frames: a request's worth of one lane's events, in order, taken from
 * frames without decoding them. The body of a whole frame is the frame's own bytes; any other
 * subset is `[` + the events' byte slices joined by `,` + `]`.
 */
import type { Frame } from '../spool/types.ts';
import type { OutgoingBatch } from './types.ts';

export class FrameBatch implements OutgoingBatch {
  readonly seqs: number[] = [];
  private readonly _frames: Frame[] = [];
  private readonly _index: number[] = [];
  private _bytes = 2;

  /** Body bytes of the whole batch. */
  get bodyBytes(): number {
    return this._bytes;
  }

  get size(): number {
    return this.seqs.length;
  }

  /** Body bytes if event `i` of `frame` were added. */
  bytesWith(frame: Frame, i: number): number {
    return this._bytes + (this.seqs.length > 0 ? 1 : 0) + (frame.length[i] as number);
  }

  add(frame: Frame, i: number): void {
    this._bytes = this.bytesWith(frame, i);
    this.seqs.push(frame.firstSeq + i);
    this._frames.push(frame);
    this._index.push(i);
  }

  body(indexes?: readonly number[]): Buffer {
    const n = indexes === undefined ? this.seqs.length : indexes.length;
    if (n === 0) return Buffer.from('[]');
    const at = (k: number) => (indexes === undefined ? k : (indexes[k] as number));
    // A whole frame, all of it: its body as it is on disk.
    const f0 = this._frames[at(0)] as Frame;
    if (n === f0.count && this._index[at(0)] === 0) {
      let whole = true;
      for (let k = 0; k < n && whole; k++) {
        whole = this._frames[at(k)] === f0 && this._index[at(k)] === k;
      }
      if (whole) return f0.body;
    }
    let total = 2 + (n - 1);
    for (let k = 0; k < n; k++) {
      const j = at(k);
      total += (this._frames[j] as Frame).length[this._index[j] as number] as number;
    }
    const out = Buffer.allocUnsafe(total);
    let p = 0;
    out[p++] = 0x5b;
    for (let k = 0; k < n; k++) {
      const j = at(k);
      const f = this._frames[j] as Frame;
      const i = this._index[j] as number;
      if (k > 0) out[p++] = 0x2c;
      const o = f.offset[i] as number;
      p += f.body.copy(out, p, o, o + (f.length[i] as number));
    }
    out[p] = 0x5d;
    return out;
  }

  eventJson(i: number): string {
    const f = this._frames[i] as Frame;
    const e = this._index[i] as number;
    const o = f.offset[e] as number;
    return f.body.toString('utf8', o, o + (f.length[e] as number));
  }

  emittedAt(i: number): number {
    return (this._frames[i] as Frame).emittedAt[this._index[i] as number] as number;
  }

  provSeq(i: number): number {
    return (this._frames[i] as Frame).provSeq[this._index[i] as number] as number;
  }

  possiblyDelivered(i: number): boolean {
    return (this._frames[i] as Frame).sentBefore?.[this._index[i] as number] === 1;
  }
}

// SPDX-License-Identifier: Apache-2.0
/*
 * A lane's read arena: one ring of bytes that the frames a lane reads back from the spool are
 * read into, instead of a new buffer per frame (issue 11, memory: a drain of 1,000,000 records
 * reads ≈ 700 MB, and V8 frees such external memory only every ≈ 64 MB of it).
 *
 * Invariants:
 * - Every region alloc() hands out is live from that moment: no later alloc() overlaps it until
 *   it is released. commit() releases at once the regions of one read that the lane did not keep
 *   (a damaged frame, one it had already taken).
 * - A region is reused only after release(): the lane releases a frame after the request that
 *   carried it settled, so a request body never sees another frame's bytes.
 * - Regions are handed out in ring order and the space is reclaimed from the oldest live region
 *   on; one released out of order is marked and reclaimed when the older ones are.
 * - When a region does not fit (no contiguous room, or more than half of the ring), alloc()
 *   returns a buffer of its own: the arena bounds garbage, never correctness.
 * - Every region starts at a multiple of 8 bytes of the ring's memory (a frame's index arrays,
 *   Float64Array views, are decoded into the region in front of the frame's bytes).
 */

export class ReadArena {
  private readonly _buf: Buffer;
  /** Regions, oldest first, three numbers each: start, end, released (0 | 1). */
  private _regions: number[] = [];
  private _first = 0;
  /** Where the newest region ends. */
  private _tail = 0;

  constructor(bytes: number) {
    // Slow: never a slice of the shared pool, so that `buffer` identity tells the ring's regions apart.
    this._buf = Buffer.allocUnsafeSlow(Math.max(1024, Math.floor(bytes)));
  }

  /** Regions not yet reclaimed (live, or released behind a live older one). */
  get regions(): number {
    return (this._regions.length - this._first) / 3;
  }

  /** A buffer of `n` bytes: a region of the ring when one fits, else a buffer of its own. */
  alloc(n: number): Buffer {
    const cap = this._buf.length;
    if (n <= 0 || n > cap / 2) return Buffer.allocUnsafe(Math.max(0, n));
    let at = -1;
    // Regions start at multiples of 8 (the ring itself is 8-aligned: a buffer of its own).
    const tail = (this._tail + 7) & ~7;
    if (this.regions === 0) {
      at = 0;
    } else {
      const head = this._regions[this._first] as number;
      if (this._tail > head) {
        // regions lie in [head, tail): free are [tail, cap) and [0, head)
        if (tail + n <= cap) at = tail;
        else if (n <= head) at = 0;
      } else if (tail + n <= head) {
        // wrapped: free is [tail, head)
        at = tail;
      }
    }
    if (at < 0) return Buffer.allocUnsafe(n);
    this._tail = at + n;
    this._regions.push(at, at + n, 0);
    return this._buf.subarray(at, at + n);
  }

  /** How many regions exist now: pass it to commit() after a read. */
  mark(): number {
    return this._regions.length;
  }

  /** Releases the regions handed out since `mark` that hold none of `kept`. */
  commit(mark: number, kept: readonly Buffer[]): void {
    for (let i = Math.max(mark, this._first); i < this._regions.length; i += 3) {
      if (!kept.some((b) => this._within(b, i))) this._regions[i + 2] = 1;
    }
    this._reclaim();
  }

  /** Releases the region that holds `b` (any part of it); nothing when `b` is not the ring's. */
  release(b: Buffer): void {
    if (b.buffer !== this._buf.buffer) return;
    for (let i = this._first; i < this._regions.length; i += 3) {
      if (this._within(b, i)) {
        this._regions[i + 2] = 1;
        break;
      }
    }
    this._reclaim();
  }

  private _within(b: Buffer, i: number): boolean {
    if (b.buffer !== this._buf.buffer) return false;
    const at = b.byteOffset - this._buf.byteOffset;
    return at >= (this._regions[i] as number) && at < (this._regions[i + 1] as number);
  }

  private _reclaim(): void {
    while (this._first < this._regions.length && this._regions[this._first + 2] === 1) {
      this._first += 3;
    }
    if (this._first === this._regions.length) {
      this._regions = [];
      this._first = 0;
      this._tail = 0;
    } else if (this._first > 96 && this._first * 2 > this._regions.length) {
      this._regions.splice(0, this._first);
      this._first = 0;
    }
  }
}

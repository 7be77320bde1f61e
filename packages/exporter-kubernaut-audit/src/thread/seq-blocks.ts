// SPDX-License-Identifier: Apache-2.0
/*
 * Provenance seqs assigned at emit on the application thread of ThreadedAuditLogRecordProcessor,
 * from blocks its delivery thread reserves durably (ProvenanceStamper.handOut) and publishes in
 * shared memory: so that, as with AuditLogRecordProcessor, a record lost to a crash before it
 * reached the spool leaves a gap the next session declares (`recovered`), not a silence.
 *
 * Invariants: seqs are handed out in increasing order, each once; blocks are contiguous (the
 * stamper hands out only to this thread), so a new block extends the current one; the next
 * block is asked for when half of the current one is left, so emit seldom waits; emit waits
 * (Atomics.wait, at most `waitMillis`) only when no seq is left — at the first audit record,
 * while the delivery thread starts. If none comes in time, or the thread could not start (it says
 * so in shared memory), seqs are left to the delivery thread from then on (0: assigned when the
 * record is stamped) and `onGiveUp` says so.
 */

/** Shared memory of the blocks: control[1] counts the blocks published; block = [first, last]. */
export interface SeqBlockMemory {
  control: Int32Array;
  block: Float64Array;
}

export interface SeqBlocksOptions {
  memory: SeqBlockMemory;
  /** Seqs per block (the delivery thread's hand-out size). */
  size: number;
  /** Asks the delivery thread for the next block (a message). */
  ask(): void;
  /** Longest wait for a block. */
  waitMillis: number;
  /** The delivery thread could not start: no block will come. */
  failed(): boolean;
  /** `failed`: given up because the thread could not start, not for the time. */
  onGiveUp(failed: boolean): void;
}

export class SeqBlocks {
  /** Not used: the application thread does not name records (recordAttributes is off). */
  readonly producerId = '';
  private readonly _o: SeqBlocksOptions;
  private _seen = 0;
  private _cursor = 1;
  private _last = 0;
  private _asked = false;
  private _off = false;

  constructor(options: SeqBlocksOptions) {
    this._o = options;
  }

  /** The last seq handed out here (0: none). */
  get lastUsed(): number {
    return this._off && this._last === 0 ? 0 : this._cursor - 1;
  }

  /** The next seq, 0 when seqs are left to the delivery thread. Never throws. */
  next(): number {
    if (this._off) return 0;
    if (this._asked || this._cursor > this._last) this._refresh();
    if (this._cursor > this._last && !this._await()) {
      this._off = true;
      this._o.onGiveUp(this._o.failed());
      return 0;
    }
    const seq = this._cursor++;
    if (!this._asked && this._last - seq < this._o.size / 2) {
      this._asked = true;
      this._o.ask();
    }
    return seq;
  }

  /** Takes a block published since the last look. */
  private _refresh(): void {
    const gen = Atomics.load(this._o.memory.control, 1);
    if (gen === this._seen) return;
    this._seen = gen;
    const first = this._o.memory.block[0] as number;
    const last = this._o.memory.block[1] as number;
    if (this._cursor > this._last) this._cursor = first;
    this._last = last;
    this._asked = false;
  }

  private _await(): boolean {
    const deadline = Date.now() + this._o.waitMillis;
    if (!this._asked && this._seen > 0) {
      this._asked = true;
      this._o.ask();
    }
    for (;;) {
      const gen = Atomics.load(this._o.memory.control, 1);
      if (gen !== this._seen) {
        this._refresh();
        if (this._cursor <= this._last) return true;
      }
      if (this._o.failed()) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this._o.memory.control, 1, gen, left);
    }
  }
}

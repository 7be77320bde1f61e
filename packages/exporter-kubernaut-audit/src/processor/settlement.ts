// SPDX-License-Identifier: Apache-2.0
/*
 * The processor's ONE settlement rule: everything emitted before a flush is settled when the
 * spool's oldest unacknowledged seq is past the last seq appended at the time of the call (the
 * FIFO having been drained into the spool synchronously first; dead-letter writes are
 * synchronous, and dropped records are counted, not waited for).
 *
 * Invariants: no disk read decides settledness (the spool answers in O(1) from memory); waiters
 * are ordered by target and checked at the head on each acknowledgement (O(1) when nothing
 * settles); a flush that times out removes itself; nothing but acknowledgements resolves a
 * waiter, so an I/O error never makes a flush resolve early.
 */
import type { AuditSpool } from '../spool/types.ts';

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class Settlement {
  private readonly _spool: AuditSpool;
  private _waiters: Waiter[] = [];

  constructor(spool: AuditSpool) {
    this._spool = spool;
  }

  /** Waiters still pending. */
  get waiting(): number {
    return this._waiters.length;
  }

  /** True when every seq ≤ target is acknowledged. */
  settled(target: number): boolean {
    return this._spool.oldestUnackedSeq() > target;
  }

  /**
   * Resolves once every seq ≤ `target` is acknowledged; rejects with `onTimeout()` after
   * `timeoutMillis` (the timer is ref'd: a caller awaiting a flush keeps the process alive).
   */
  wait(target: number, timeoutMillis: number, onTimeout: () => Error): Promise<void> {
    if (this.settled(target)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { target, resolve, reject, timer: undefined };
      w.timer = setTimeout(() => {
        const i = this._waiters.indexOf(w);
        if (i >= 0) this._waiters.splice(i, 1);
        reject(onTimeout());
      }, timeoutMillis);
      // Targets only grow (lastSeq does): appending keeps the list ordered.
      const last = this._waiters[this._waiters.length - 1];
      if (last === undefined || last.target <= target) this._waiters.push(w);
      else {
        let i = this._waiters.length;
        while (i > 0 && (this._waiters[i - 1] as Waiter).target > target) i--;
        this._waiters.splice(i, 0, w);
      }
    });
  }

  /** Resolves the waiters that are settled now (call after acknowledgements). */
  check(): void {
    if (this._waiters.length === 0) return;
    const oldest = this._spool.oldestUnackedSeq();
    let k = 0;
    while (k < this._waiters.length && (this._waiters[k] as Waiter).target < oldest) k++;
    if (k === 0) return;
    const done = this._waiters.splice(0, k);
    for (const w of done) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  /** Rejects every pending waiter (shutdown). */
  rejectAll(err: () => Error): void {
    const all = this._waiters;
    this._waiters = [];
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(err());
    }
  }
}

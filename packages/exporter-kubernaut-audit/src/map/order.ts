// SPDX-License-Identifier: Apache-2.0
/*
 * Per-correlation timestamp order. DataStorage's verify-chain walks a correlation's events in
 * timestamp order, so a correlation whose event_timestamp goes backwards (a clock step, a
 * bridged record with its own time) reads as tampered there, although nothing was altered.
 *
 * Invariant: records are seen in emit order (the drain order); for each correlation id among
 * the last `maxCorrelations` seen (an LRU) a timestamp earlier than the previous one is counted
 * as a regression. With `monotonic`, a timestamp not later than the previous one is moved to
 * the previous one + 1 µs and the original is handed back (it goes into provenance). Canonical
 * timestamps (fixed width, UTC) compare as strings.
 */
import { nextMicrosecond } from './timestamp.ts';

export interface TimestampOrderOptions {
  /** Correlations remembered [10000]. */
  maxCorrelations?: number;
  /** Keep timestamps strictly increasing per correlation [false]. */
  monotonic?: boolean;
}

export class TimestampOrder {
  /** Regressions seen so far. */
  regressed = 0;
  /** After check(): the record's own timestamp when it was moved, else undefined. */
  original: string | undefined = undefined;
  private _wentBack = false;
  private readonly _last = new Map<string, string>();
  private readonly _max: number;
  private readonly _monotonic: boolean;

  constructor(options: TimestampOrderOptions = {}) {
    this._max = Math.max(1, options.maxCorrelations ?? 10_000);
    this._monotonic = options.monotonic === true;
  }

  /** The timestamp the next event of `correlationId` takes (see the module comment). */
  check(correlationId: string, ts: string): string {
    this.original = undefined;
    const last = this._last.get(correlationId);
    this._wentBack = last !== undefined && ts < last;
    if (this._monotonic && last !== undefined && ts <= last) {
      this.original = ts;
      return nextMicrosecond(last);
    }
    return ts;
  }

  /** The event of `correlationId` checked last was kept with timestamp `ts`. */
  commit(correlationId: string, ts: string): void {
    if (this._wentBack) this.regressed++;
    this._wentBack = false;
    if (this._last.has(correlationId)) this._last.delete(correlationId);
    else if (this._last.size >= this._max) {
      const oldest = this._last.keys().next().value;
      if (oldest !== undefined) this._last.delete(oldest);
    }
    this._last.set(correlationId, ts);
  }
}

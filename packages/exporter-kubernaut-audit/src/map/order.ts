// SPDX-License-Identifier: Apache-2.0
/*
 * Per-correlation timestamp order. DataStorage's verify-chain walks a correlation's events in
 * timestamp order, so a correlation whose event_timestamp goes backwards (a clock step, a
 * bridged record with its own time) reads as tampered there, although nothing was altered.
 *
 * Invariant: records are seen in emit order (the drain order); for each correlation id among
 * at least the last `maxCorrelations` seen (two generations of `maxCorrelations` each: a
 * correlation seen in either is remembered and moves to the newer; when the newer is full it
 * becomes the older and the older is forgotten) a timestamp earlier than the previous one is
 * counted as a regression. With `monotonic`, a timestamp not later than the previous one is moved to
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

/** The last timestamp of one correlation (a holder: updated in place, no second lookup). */
interface Last {
  ts: string;
}

export class TimestampOrder {
  /** Regressions seen so far. */
  regressed = 0;
  /** After check(): the record's own timestamp when it was moved, else undefined. */
  original: string | undefined = undefined;
  private _wentBack = false;
  /** Newer and older generation: correlation id → its last timestamp. */
  private _new = new Map<string, Last>();
  private _old = new Map<string, Last>();
  /** check()'s find: the holder of the id checked last, and whether it is in the newer map. */
  private _found: Last | undefined = undefined;
  private _inNew = false;
  private readonly _max: number;
  private readonly _monotonic: boolean;

  constructor(options: TimestampOrderOptions = {}) {
    this._max = Math.max(1, options.maxCorrelations ?? 10_000);
    this._monotonic = options.monotonic === true;
  }

  /** The timestamp the next event of `correlationId` takes (see the module comment). */
  check(correlationId: string, ts: string): string {
    this.original = undefined;
    let found = this._new.get(correlationId);
    this._inNew = found !== undefined;
    if (found === undefined) found = this._old.get(correlationId);
    this._found = found;
    const last = found?.ts;
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
    const found = this._found;
    this._found = undefined;
    if (found !== undefined && this._inNew) {
      found.ts = ts; // the common case: one lookup per event, in check()
      return;
    }
    if (this._new.size >= this._max) {
      this._old = this._new;
      this._new = new Map();
    }
    if (found !== undefined) found.ts = ts;
    this._new.set(correlationId, found ?? { ts });
  }
}

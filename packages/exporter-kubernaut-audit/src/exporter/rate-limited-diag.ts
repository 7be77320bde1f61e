/*
 * Rate-limited diagnostics through OTel's `diag` (DESIGN §7): the first occurrence of a
 * kind of problem is logged at once; later ones within the interval are counted and
 * reported as one summary line when the interval ends. Never one line per event.
 * Messages must never contain credentials: callers build them from fixed text,
 * counts, status codes and error codes only.
 */
import { diag } from '@opentelemetry/api';

export type DiagLevel = 'error' | 'warn' | 'info' | 'debug';

interface Slot {
  level: DiagLevel;
  message: string;
  suppressed: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface RateLimitedDiagOptions {
  /** Minimum time between two lines of one key [60000]. */
  intervalMillis?: number;
  /** Prefix of every line, e.g. the component name. */
  prefix?: string;
}

export class RateLimitedDiag {
  private readonly _interval: number;
  private readonly _prefix: string;
  private readonly _slots = new Map<string, Slot>();

  constructor(options: RateLimitedDiagOptions = {}) {
    this._interval = options.intervalMillis ?? 60_000;
    this._prefix = options.prefix ?? '';
  }

  /**
   * Reports one occurrence of `key`, `count` times (e.g. events in a dead-lettered batch).
   * `message` describes the latest occurrence.
   */
  report(level: DiagLevel, key: string, message: string, count = 1): void {
    const slot = this._slots.get(key);
    if (slot === undefined) {
      this._log(level, message);
      const s: Slot = { level, message, suppressed: 0, timer: undefined };
      s.timer = setTimeout(() => this._flush(key), this._interval);
      s.timer.unref?.();
      this._slots.set(key, s);
      return;
    }
    slot.level = level;
    slot.message = message;
    slot.suppressed += count;
  }

  /** Logs pending summaries now and stops the timers. */
  flushAll(): void {
    for (const key of [...this._slots.keys()]) this._flush(key);
  }

  private _flush(key: string): void {
    const slot = this._slots.get(key);
    if (slot === undefined) return;
    clearTimeout(slot.timer);
    this._slots.delete(key);
    if (slot.suppressed > 0) {
      this._log(
        slot.level,
        `${slot.message} (${slot.suppressed} more occurrence(s) in the last interval)`,
      );
    }
  }

  private _log(level: DiagLevel, message: string): void {
    diag[level](this._prefix ? `${this._prefix}: ${message}` : message);
  }
}

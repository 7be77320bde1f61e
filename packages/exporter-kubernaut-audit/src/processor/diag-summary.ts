/*
 * Rate-limited diagnostics (DESIGN §7): the first occurrence of a kind is reported at once,
 * later ones are summed and reported once per interval with counts — never one line per event.
 */
import { diag } from '@opentelemetry/api';

type Level = 'warn' | 'error';

interface Pending {
  level: Level;
  count: number;
  detail: string;
}

export class DiagSummary {
  private readonly _prefix: string;
  private readonly _intervalMillis: number;
  private readonly _pending = new Map<string, Pending>();
  private readonly _lastReport = new Map<string, number>();
  private _timer: NodeJS.Timeout | undefined;

  constructor(prefix: string, intervalMillis = 10_000) {
    this._prefix = prefix;
    this._intervalMillis = intervalMillis;
  }

  /** Notes `count` occurrences of `kind` (e.g. "dropped (spool full)"). */
  report(level: Level, kind: string, count: number, detail = ''): void {
    if (count <= 0) return;
    const now = Date.now();
    const last = this._lastReport.get(kind);
    if (last === undefined || now - last >= this._intervalMillis) {
      this._lastReport.set(kind, now);
      const p = this._pending.get(kind);
      const total = count + (p?.count ?? 0);
      this._pending.delete(kind);
      this._emit(level, kind, total, detail || p?.detail || '');
      return;
    }
    const p = this._pending.get(kind);
    if (p) {
      p.count += count;
      if (detail) p.detail = detail;
    } else this._pending.set(kind, { level, count, detail });
    if (!this._timer) {
      this._timer = setTimeout(() => {
        this._timer = undefined;
        this.flush();
      }, this._intervalMillis);
      this._timer.unref();
    }
  }

  /** Reports every pending summary now. */
  flush(): void {
    if (this._timer) {
      clearTimeout(this._timer);
      this._timer = undefined;
    }
    const now = Date.now();
    for (const [kind, p] of this._pending) {
      this._lastReport.set(kind, now);
      this._emit(p.level, kind, p.count, p.detail);
    }
    this._pending.clear();
  }

  private _emit(level: Level, kind: string, count: number, detail: string): void {
    try {
      diag[level](`${this._prefix}: ${count} ${kind}${detail ? `: ${detail}` : ''}`);
    } catch {
      // a broken diag logger must not break the processor
    }
  }
}

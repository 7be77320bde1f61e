// SPDX-License-Identifier: Apache-2.0
/*
 * Diagnostics of one component through OpenTelemetry's `diag` (DESIGN §7): every line goes to
 * `diag.createComponentLogger({ namespace })`, so the application's diag logger decides where it
 * ends up and the component's name travels with it. The one rule for problems that can repeat
 * per record or per request (drops, dead letters, retries, slow exports): the first occurrence of
 * a kind is logged at once; later ones within the interval are counted, and one summary line
 * reports them when the interval ends. Never one line per event.
 *
 * Messages must never contain credentials: callers build them from fixed text, counts, status
 * codes and error codes only. Logging never throws.
 */
import { type DiagLogger, diag } from '@opentelemetry/api';

export type DiagLevel = 'error' | 'warn' | 'info' | 'debug';

/** Default shortest time between two lines about one kind of problem. */
export const DEFAULT_DIAG_INTERVAL_MILLIS = 10_000;

export interface ComponentDiagOptions {
  /** Shortest time between two lines about one kind of problem [10000]. */
  intervalMillis?: number;
  /** Where lines go [`diag.createComponentLogger({ namespace })`]. */
  logger?: DiagLogger;
}

interface Slot {
  level: DiagLevel;
  message: string;
  args: unknown[];
  suppressed: number;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The diag lines of one component.
 * @experimental
 */
export class ComponentDiag {
  readonly namespace: string;
  private readonly _logger: DiagLogger;
  private readonly _interval: number;
  private readonly _slots = new Map<string, Slot>();

  constructor(namespace: string, options: ComponentDiagOptions = {}) {
    this.namespace = namespace;
    this._logger = options.logger ?? diag.createComponentLogger({ namespace });
    this._interval = options.intervalMillis ?? DEFAULT_DIAG_INTERVAL_MILLIS;
  }

  /** Logs a line now (for what happens once: configuration, start, shutdown). */
  log(level: DiagLevel, message: string, ...args: unknown[]): void {
    try {
      this._logger[level](message, ...args);
    } catch {
      // a broken diag logger must not break the component
    }
  }

  error(message: string, ...args: unknown[]): void {
    this.log('error', message, ...args);
  }

  warn(message: string, ...args: unknown[]): void {
    this.log('warn', message, ...args);
  }

  /**
   * Reports `count` occurrences of the problem `kind` (e.g. the events of a dead-lettered
   * batch); `message` describes the latest. Rate-limited: see the module comment.
   */
  report(level: DiagLevel, kind: string, message: string, count = 1, ...args: unknown[]): void {
    const slot = this._slots.get(kind);
    if (slot !== undefined) {
      slot.level = level;
      slot.message = message;
      slot.args = args;
      slot.suppressed += count;
      return;
    }
    this.log(level, message, ...args);
    const timer = setTimeout(() => this._close(kind), this._interval);
    timer.unref?.();
    this._slots.set(kind, { level, message, args, suppressed: 0, timer });
  }

  /** Logs the pending summaries now and stops their timers. */
  flush(): void {
    for (const kind of [...this._slots.keys()]) this._close(kind);
  }

  private _close(kind: string): void {
    const slot = this._slots.get(kind);
    if (slot === undefined) return;
    clearTimeout(slot.timer);
    this._slots.delete(kind);
    if (slot.suppressed > 0) {
      const seconds = Math.round(this._interval / 1000);
      this.log(
        slot.level,
        `${slot.message} (${slot.suppressed} more in the last ${seconds} s)`,
        ...slot.args,
      );
    }
  }
}

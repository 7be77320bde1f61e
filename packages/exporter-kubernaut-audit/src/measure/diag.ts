// SPDX-License-Identifier: Apache-2.0
/*
 * Diagnostics of one component through OpenTelemetry's `diag` (DESIGN §7): every line goes to
 * `diag.createComponentLogger({ namespace })`, so the application's diag logger decides where it
 * ends up and the component's name travels with it. The one rule for problems that can repeat
 * per record or per request (drops, dead letters, retries, slow exports): the first occurrence of
 * a kind is logged at once; later ones within the interval are counted, and one summary line
 * reports them when the interval ends. Never one line per event. What the stderr fallback (below)
 * holds back is carried into the next summary of the kind, and a component's last summaries
 * (flush(), at shutdown) pass the fallback's rate limit: the numbers add up in every output.
 *
 * Messages must never contain credentials: callers build them from fixed text, counts, status
 * codes and error codes only. Logging never throws.
 *
 * Not silent by default. An audit pipeline that cannot deliver must say so even in an
 * application that never registered a diag logger (OpenTelemetry's default is to discard every
 * diag line). So while no diag logger is registered in the process (checked at each line, through
 * the API's global, so one registered later takes over at once), warnings and errors go to stderr
 * instead, one line per kind of problem (the first at once, then at most one a minute per kind,
 * the next one after a minute), behind a one-time note saying how to route them. Registering any diag logger
 * (e.g. `diag.setLogger(logger, DiagLogLevel.NONE)` to silence them) turns this off. A component
 * given its own `logger` never falls back.
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
  /** Where warnings and errors go while no diag logger is registered [stderr, see above]. */
  fallback?: StderrFallback;
}

/** The global of @opentelemetry/api 1.x, which every copy of the API shares. */
const OTEL_API_GLOBAL = Symbol.for('opentelemetry.js.api.1');

/** True when a diag logger is registered in this process (by any copy of @opentelemetry/api 1.x). */
export function isDiagLoggerRegistered(): boolean {
  const api = (globalThis as Record<symbol, { diag?: unknown } | undefined>)[OTEL_API_GLOBAL];
  return api?.diag !== undefined && api.diag !== null;
}

/** Shortest time between two stderr lines about one kind of problem. */
export const STDERR_FALLBACK_INTERVAL_MILLIS = 60_000;

/** The note printed before the first stderr line of the process. */
export const STDERR_FALLBACK_NOTE =
  '[kubernaut-audit] no OpenTelemetry diag logger is registered: audit delivery problems are written to stderr (one line per kind, at most one a minute each). Register a diag logger (diag.setLogger) to route or silence them.';

interface FallbackSlot {
  lastAt: number;
}

/**
 * The stderr fallback: one line per kind of problem (first at once, then at most one per
 * `intervalMillis` per kind). Shared by every component of the process.
 */
export class StderrFallback {
  private readonly _write: (line: string) => void;
  private readonly _now: () => number;
  private readonly _interval: number;
  private readonly _slots = new Map<string, FallbackSlot>();
  private _noted = false;

  constructor(
    options: {
      write?: (line: string) => void;
      now?: () => number;
      intervalMillis?: number;
    } = {},
  ) {
    this._write = options.write ?? ((line) => process.stderr.write(line));
    this._now = options.now ?? Date.now;
    this._interval = options.intervalMillis ?? STDERR_FALLBACK_INTERVAL_MILLIS;
  }

  /**
   * Writes `message` unless a line of the same `key` was written within the interval (`force`:
   * written anyway, for the last line of a component that shuts down). True when written.
   */
  line(
    level: 'warn' | 'error',
    namespace: string,
    key: string,
    message: string,
    force = false,
  ): boolean {
    const now = this._now();
    const slotKey = `${namespace}\u0000${key}`;
    const slot = this._slots.get(slotKey);
    if (!force && slot !== undefined && now - slot.lastAt < this._interval) return false;
    this._slots.set(slotKey, { lastAt: now });
    try {
      if (!this._noted) {
        this._noted = true;
        this._write(`${STDERR_FALLBACK_NOTE}\n`);
      }
      this._write(`[kubernaut-audit] ${level} ${namespace}: ${message}\n`);
    } catch {
      // stderr closed: nothing more to do
    }
    return true;
  }
}

/** The process's stderr fallback. */
export const stderrFallback = new StderrFallback();

function argText(arg: unknown): string | undefined {
  if (arg instanceof Error) return arg.message;
  if (typeof arg === 'string' || typeof arg === 'number' || typeof arg === 'boolean')
    return String(arg);
  return undefined;
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
  /** Undefined when the component was given its own logger. */
  private readonly _fallback: StderrFallback | undefined;
  private readonly _interval: number;
  private readonly _slots = new Map<string, Slot>();
  /** Occurrences per kind whose summary the stderr fallback held back, with its last slot. */
  private readonly _carried = new Map<string, { count: number; slot: Slot }>();

  constructor(namespace: string, options: ComponentDiagOptions = {}) {
    this.namespace = namespace;
    this._logger = options.logger ?? diag.createComponentLogger({ namespace });
    this._fallback =
      options.logger === undefined ? (options.fallback ?? stderrFallback) : undefined;
    this._interval = options.intervalMillis ?? DEFAULT_DIAG_INTERVAL_MILLIS;
  }

  /** Logs a line now (for what happens once: configuration, start, shutdown). */
  log(level: DiagLevel, message: string, ...args: unknown[]): void {
    this._emit(level, message, message, args);
  }

  /**
   * `key` names the kind of problem for the stderr fallback; `force` passes its rate limit.
   * True unless the fallback held the line back.
   */
  private _emit(
    level: DiagLevel,
    key: string,
    message: string,
    args: unknown[],
    force = false,
  ): boolean {
    if (
      this._fallback !== undefined &&
      (level === 'warn' || level === 'error') &&
      !isDiagLoggerRegistered()
    ) {
      const extra = args.map(argText).filter((t) => t !== undefined);
      return this._fallback.line(
        level,
        this.namespace,
        key,
        extra.length > 0 ? `${message}: ${extra.join(' ')}` : message,
        force,
      );
    }
    try {
      this._logger[level](message, ...args);
    } catch {
      // a broken diag logger must not break the component
    }
    return true;
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
    // A line the stderr fallback held back still counts: the next summary reports it.
    const shown = this._emit(level, `kind:${kind}`, message, args);
    const timer = setTimeout(() => this._close(kind), this._interval);
    timer.unref?.();
    this._slots.set(kind, { level, message, args, suppressed: shown ? 0 : count, timer });
  }

  /**
   * Logs the pending summaries now and stops their timers: the component's last word (it shuts
   * down). Past the stderr fallback's rate limit, so that what it held back is counted in the
   * output of a program that ends before a minute is over.
   */
  flush(): void {
    for (const kind of new Set([...this._slots.keys(), ...this._carried.keys()])) {
      this._close(kind, true);
    }
  }

  private _close(kind: string, last = false): void {
    const slot = this._slots.get(kind);
    const carried = this._carried.get(kind);
    if (slot !== undefined) {
      clearTimeout(slot.timer);
      this._slots.delete(kind);
    }
    const latest = slot ?? carried?.slot;
    const count = (slot?.suppressed ?? 0) + (carried?.count ?? 0);
    if (latest === undefined || count === 0) return;
    const shown = this._emit(
      latest.level,
      `kind:${kind}`,
      `${latest.message} (${count} more since the last line about it)`,
      latest.args,
      last,
    );
    if (shown) this._carried.delete(kind);
    else this._carried.set(kind, { count, slot: latest });
  }
}

// SPDX-License-Identifier: Apache-2.0
/* Captures OpenTelemetry diag output. */
import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';

export interface DiagCapture {
  /** Every line logged at the level or above (the arguments joined by spaces). */
  messages: string[];
  /** Resolves with the first line (already logged or future) matching `re`. */
  waitFor(re: RegExp): Promise<string>;
  /** Puts the no-op logger back. */
  restore(): void;
}

/** Installs a diag logger that keeps lines at `level` [WARN] and above. */
export function captureDiag(level: DiagLogLevel = DiagLogLevel.WARN): DiagCapture {
  const messages: string[] = [];
  let waiters: Array<{ re: RegExp; resolve: (m: string) => void }> = [];
  const push = (...args: unknown[]) => {
    const line = args.map(String).join(' ');
    messages.push(line);
    waiters = waiters.filter((w) => {
      if (!w.re.test(line)) return true;
      w.resolve(line);
      return false;
    });
  };
  const waitFor = (re: RegExp): Promise<string> => {
    const hit = messages.find((m) => re.test(m));
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve) => waiters.push({ re, resolve }));
  };
  const logger: DiagLogger = { error: push, warn: push, info: push, debug: push, verbose: push };
  diag.setLogger(logger, { logLevel: level, suppressOverrideMessage: true });
  return { messages, waitFor, restore: () => diag.disable() };
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Progress of long operations (reading a large trail, checking thousands of chains, replaying
 * many dead letters), for a person watching a terminal.
 *
 * - Shown only where `io.progress` exists: the command sets it when stderr is a terminal. Piped,
 *   redirected or in CI, nothing changes: stdout and stderr carry exactly the report and the
 *   messages they carry without progress.
 * - One status line, rewritten in place; nothing before `delayMillis` (a quick command never
 *   flickers), then at most every `intervalMillis`; erased by `done()`, before the command
 *   writes its report or a message.
 * - Updates are cheap to call often: the text is built only when it will be shown.
 */
import type { CliIo } from './command.ts';

export interface Progress {
  /** The operation's current state; shown now or later, or dropped when shown recently. */
  update(text: () => string): void;
  /** Erases the status line if one is shown; later updates are ignored. */
  done(): void;
}

export interface ProgressOptions {
  /** Nothing is shown before the operation has run this long [300]. */
  delayMillis?: number;
  /** At most one status line this often [250]. */
  intervalMillis?: number;
}

const NO_PROGRESS: Progress = { update() {}, done() {} };

/** A progress line on `io.progress`, or nothing when the CLI's stderr is not a terminal. */
export function startProgress(io: CliIo, options: ProgressOptions = {}): Progress {
  const show = io.progress;
  if (show === undefined) return NO_PROGRESS;
  const now = io.now ?? Date.now;
  const delay = options.delayMillis ?? 300;
  const interval = options.intervalMillis ?? 250;
  const started = now();
  let shownAt: number | undefined;
  let finished = false;
  return {
    update(text) {
      if (finished) return;
      const t = now();
      if (t - started < delay) return;
      if (shownAt !== undefined && t - shownAt < interval) return;
      shownAt = t;
      show(text());
    },
    done() {
      if (finished) return;
      finished = true;
      if (shownAt !== undefined) show('');
    },
  };
}

/** `1234567` → `1,234,567`. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * The terminal side of `io.progress`: writes `line` over the current one (carriage return,
 * erase line), cut to the terminal's width so that it never wraps; `''` erases it.
 */
export function terminalProgress(
  write: (text: string) => void,
  columns: () => number | undefined,
): (line: string) => void {
  return (line) => {
    // A terminal that tells no width (0, as under some pseudo-terminals) gets 80 columns.
    const width = (columns() || 80) - 1;
    const text = line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
    write(`\r\x1b[2K${text}`);
  };
}

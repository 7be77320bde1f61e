// SPDX-License-Identifier: Apache-2.0
/* Child processes of tests. */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The Node binary for child processes running .ts files: this process's own
 * (`process.execPath`) when it strips types, else the project's bundled Node 24.
 */
export function nodeBinary(): string {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 23) return process.execPath;
  return fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
}

/**
 * For a child that a test kills with SIGKILL: writes `line` to stdout and resolves once the
 * stream has handed all of it to the kernel. What sits in the pipe survives the kill and is
 * read by the parent; what sits in the stream's queue dies with the process. Await it before
 * an act the parent must learn about even if the kill lands right after.
 */
export async function announce(line: string): Promise<void> {
  process.stdout.write(line);
  while (process.stdout.writableLength > 0) await new Promise((r) => setImmediate(r));
}

/** The stdout lines of a child process, and a wait for one. */
export interface ChildLines {
  /** Every complete line so far, in order. */
  readonly lines: string[];
  /**
   * The first line matching `match`, seen already or to come; rejects after `millis` (with the
   * last lines seen) when none came.
   */
  line(match: RegExp, millis?: number): Promise<string>;
}

/** Reads `child`'s stdout (which must be a pipe) as lines. */
export function childLines(child: ChildProcess): ChildLines {
  const lines: string[] = [];
  let waiters: Array<{ match: RegExp; resolve: (line: string) => void }> = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
      lines.push(line);
      waiters = waiters.filter((w) => {
        if (!w.match.test(line)) return true;
        w.resolve(line);
        return false;
      });
    }
  });
  const line = (match: RegExp, millis = 60_000): Promise<string> => {
    const seen = lines.find((l) => match.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `no line matching ${match} within ${millis} ms; last: ${lines.slice(-5).join(' | ')}`,
          ),
        );
      }, millis);
      timer.unref();
      const done = (l: string) => {
        clearTimeout(timer);
        resolve(l);
      };
      waiters.push({ match, resolve: done });
    });
  };
  return { lines, line };
}

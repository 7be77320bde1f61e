// SPDX-License-Identifier: Apache-2.0
/* Child processes of tests. */
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

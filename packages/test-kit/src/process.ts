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

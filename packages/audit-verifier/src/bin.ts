#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/* Entry point of the `kubernaut-audit` command (see ./cli/index.ts). */
import { main } from './cli/index.ts';
import { terminalProgress } from './cli/progress.ts';

// A reader that goes away (`kubernaut-audit dead-letters list F | head -1`) closes the pipe: the
// rest of the output is dropped quietly and the command still ends with its own exit code.
let stdoutClosed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  stdoutClosed = true;
});

main(process.argv.slice(2), {
  stdout: (t) => {
    if (!stdoutClosed) process.stdout.write(t);
  },
  stderr: (t) => process.stderr.write(t),
  // Progress of long operations only for a person at a terminal; piped output stays as it is.
  ...(process.stderr.isTTY
    ? {
        progress: terminalProgress(
          (t) => process.stderr.write(t),
          () => process.stderr.columns,
        ),
      }
    : {}),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kubernaut-audit: ${String(err)}\n`);
    process.exitCode = 2;
  },
);

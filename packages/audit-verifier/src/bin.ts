#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/* Entry point of the `kubernaut-audit` command (see ./cli.ts). */
import { main } from './cli.ts';

main(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kubernaut-audit: ${String(err)}\n`);
    process.exitCode = 2;
  },
);

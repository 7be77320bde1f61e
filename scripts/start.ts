// SPDX-License-Identifier: Apache-2.0
// `npm start`: runs the end-to-end demo (examples/demo).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const demo = fileURLToPath(new URL('../examples/demo/src/main.ts', import.meta.url));
// The IPC channel tells the demo when this process is gone (it stops then, see main.ts).
const child = spawn(process.execPath, ['--conditions=@kubernaut/source', demo], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
});

// SIGTERM (or SIGINT, SIGHUP) to `npm start` stops the demo too, instead of leaving it running.
// Ctrl-C in a terminal reaches both processes already; the demo stops on the first one.
const forward = (signal: NodeJS.Signals) => child.kill(signal);
const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
for (const s of signals) process.on(s, forward);

// `npm start` runs this under `sh -c`, and a SIGTERM to npm ends that shell, not this process.
// Nothing tells a process that its parent died, so look: a new parent means the caller is gone.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) forward('SIGTERM');
}, 500).unref();

child.once('error', (err) => {
  process.stderr.write(`npm start: cannot run the demo with ${process.execPath}: ${err.message}\n`);
  process.exit(1);
});
child.once('exit', (code, signal) => {
  if (signal === null) process.exit(code ?? 1);
  // Killed by a signal: end the same way, so that the shell sees it (exit status 128 + n).
  for (const s of signals) process.off(s, forward);
  process.exitCode = 1; // should the signal not end this process
  process.kill(process.pid, signal);
});

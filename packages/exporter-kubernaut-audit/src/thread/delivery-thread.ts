// SPDX-License-Identifier: Apache-2.0
/*
 * The entry of ThreadedAuditLogRecordProcessor's delivery thread: it loads the thread's modules
 * (delivery-thread-main.ts) and, when they cannot be loaded (a broken installation), says so in
 * shared memory before the thread ends. The application thread may be blocked in Atomics.wait
 * for the thread's first provenance seqs, or for a batch in `sync` durability: it cannot see the
 * thread's `error` event until it returns, but it sees progress[2] at once.
 *
 * Invariant: this module imports only Node's built-ins, ./locate.ts (itself only built-ins) and
 * the constants of ./protocol.ts (no imports at run time), so that it always loads; a failure to
 * load the rest sets progress[2] to 1, notifies both waits, and ends the thread with the error
 * (its `error` event).
 */
import { pathToFileURL } from 'node:url';
import { workerData } from 'node:worker_threads';
import { siblingModule } from './locate.ts';
import { PROGRESS_FAILED, type ThreadStart } from './protocol.ts';

const start = workerData as ThreadStart;
const main = start.mainModule ?? siblingModule('delivery-thread-main').path;
import(pathToFileURL(main).href).catch((err: unknown) => {
  Atomics.store(start.progress, PROGRESS_FAILED, 1);
  Atomics.notify(start.progress, 0);
  Atomics.notify(start.progress, 1);
  throw err;
});

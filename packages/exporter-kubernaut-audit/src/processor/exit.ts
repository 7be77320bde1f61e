// SPDX-License-Identifier: Apache-2.0
/*
 * One `process.on('exit')` listener for every live processor (not one each: a test suite or a
 * service with many providers would exceed the listener limit). An exiting process runs them
 * synchronously: each drains its pending records into its spool (the append is synchronous).
 */
const live = new Set<() => void>();

function runAll(): void {
  for (const f of live) {
    try {
      f();
    } catch {
      // the process is exiting: nothing may throw out of here
    }
  }
}

/** Runs `f` when the process exits; returns the function that unregisters it. */
export function onProcessExit(f: () => void): () => void {
  if (live.size === 0) process.on('exit', runAll);
  live.add(f);
  return () => {
    if (!live.delete(f)) return;
    if (live.size === 0) process.removeListener('exit', runAll);
  };
}

// SPDX-License-Identifier: Apache-2.0
/*
 * The way out of a process: one set of process listeners for every live processor (not one set
 * each: a test suite or a service with many providers would exceed the listener limit). Each
 * registered function drains its processor's pending records into its spool, synchronously (the
 * append is synchronous).
 *
 * Invariants:
 * - `exit`: an exiting process runs them (process.exit(), the program returning, an uncaught
 *   exception). The application's own `exit` listeners may run after them and still emit: each
 *   function is told the cause, and its processor then writes through every record emitted
 *   later (nothing can wait for a timer any more).
 * - SIGTERM, SIGINT and SIGHUP (Kubernetes stops a pod with SIGTERM; a terminal with SIGINT, or
 *   with SIGHUP when it closes): a process
 *   with no listener of its own for the signal ends at once, without `exit`, and would lose what
 *   waits for the batch timer. The listener runs them, removes itself from every signal, and
 *   then:
 *     · when no other listener is left for the signal, raises it again: the process ends by the
 *       signal, as it would have without the processor (its default action: Node.js resets an
 *       inherited "ignore" of these signals at start, so that is what it had);
 *     · else does nothing more: the other listeners (an application's graceful shutdown, a
 *       library that re-raises when it is the last listener) run after it and see the process's
 *       listeners as if the processor had never added one.
 *   It is prepended, so that the records are on the spool before an application's own handler
 *   runs. Unlike the default action, a listener runs on the event loop: a process whose loop is
 *   blocked ends when the loop next runs (or by the orchestrator's SIGKILL).
 * - Nothing here throws.
 */
/** Why the registered functions run: the process exits, or a signal asks it to stop. */
export type ExitCause = 'exit' | 'signal';

const live = new Set<(cause: ExitCause) => void>();

/** The signals whose default action ends the process without `exit`, drained first. */
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function runAll(cause: ExitCause): void {
  for (const f of live) {
    try {
      f(cause);
    } catch {
      // the process is exiting: nothing may throw out of here
    }
  }
}

function onExit(): void {
  runAll('exit');
}

function onSignal(signal: NodeJS.Signals): void {
  runAll('signal');
  removeSignalListeners();
  if (process.listenerCount(signal) === 0) {
    try {
      process.kill(process.pid, signal); // the default action, now that no listener is left
    } catch {
      // cannot signal itself: the process goes on, its records spooled
    }
  }
}

function addSignalListeners(): void {
  for (const s of SIGNALS) process.prependListener(s, onSignal);
}

function removeSignalListeners(): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

/**
 * Runs `f` when the process exits or is stopped by a signal; returns what unregisters it. On
 * `exit` the process ends once every `exit` listener has run, also those registered after this
 * one: `f` learns it, so that its processor can write through what those listeners still emit.
 */
export function onProcessExit(f: (cause: ExitCause) => void): () => void {
  if (live.size === 0) {
    process.on('exit', onExit);
    addSignalListeners();
  }
  live.add(f);
  return () => {
    if (!live.delete(f)) return;
    if (live.size === 0) {
      process.removeListener('exit', onExit);
      removeSignalListeners();
    }
  };
}

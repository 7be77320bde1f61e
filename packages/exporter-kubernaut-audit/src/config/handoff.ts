// SPDX-License-Identifier: Apache-2.0
/*
 * How test hooks reach a constructor without being options: `run(hooks, construct)` sets them
 * for the constructor that `construct` calls, which `take()`s them (an empty object for an
 * ordinary construction). One slot per class; the hooks never outlive the call.
 */

export interface Handoff<T extends object> {
  /** Runs `construct` with `hooks` waiting for the constructor that `construct` calls. */
  run<R>(hooks: T, construct: () => R): R;
  /** The hooks handed to the object being constructed ({} for ordinary construction). */
  take(): T;
}

export function handoff<T extends object>(): Handoff<T> {
  let pending: T | undefined;
  return {
    run(hooks, construct) {
      pending = hooks;
      try {
        return construct();
      } finally {
        pending = undefined;
      }
    },
    take() {
      const hooks = pending ?? ({} as T);
      pending = undefined;
      return hooks;
    },
  };
}

// SPDX-License-Identifier: Apache-2.0
/*
 * Test hooks of ThreadedAuditLogRecordProcessor. They are not options: a test that needs them
 * builds its processor with `createThreadedProcessor()` (./create.ts), which hands them to the
 * constructor through this module. Neither module is exported by the package.
 */

export interface ThreadedProcessorInternals {
  /** Batches posted and not yet written before emit waits for the delivery thread [64]. */
  maxUnconfirmedBatches?: number;
  /** The delivery thread blocks this long after each batch it writes (a slow disk). */
  commitDelayMillis?: number;
}

let pending: ThreadedProcessorInternals | undefined;

/** Runs `construct` with `internals` waiting for the constructor that `construct` calls. */
export function withThreadedInternals<T>(
  internals: ThreadedProcessorInternals,
  construct: () => T,
): T {
  pending = internals;
  try {
    return construct();
  } finally {
    pending = undefined;
  }
}

/** The hooks handed to the processor being constructed ({} for ordinary construction). */
export function takeThreadedInternals(): ThreadedProcessorInternals {
  const internals = pending ?? {};
  pending = undefined;
  return internals;
}

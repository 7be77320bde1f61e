// SPDX-License-Identifier: Apache-2.0
/*
 * Test hooks of ThreadedAuditLogRecordProcessor. They are not options: a test that needs them
 * builds its processor with `createThreadedProcessor()` (./create.ts), which hands them to the
 * constructor through this module. Neither module is exported by the package.
 */

import { handoff } from '../config/handoff.ts';

export interface ThreadedProcessorInternals {
  /** Batches posted and not yet written before emit waits for the delivery thread [64]. */
  maxUnconfirmedBatches?: number;
  /** The delivery thread blocks this long after each batch it writes (a slow disk). */
  commitDelayMillis?: number;
  /** The delivery thread's entry module instead of the one beside this package's (a missing one). */
  threadFile?: string;
  /** The module the delivery thread's entry loads instead of its own (one that fails to load). */
  threadMainFile?: string;
  /** How often the delivery thread looks for leftover default spools (ms): processor/leftovers.ts. */
  leftoverCheckMillis?: number;
}

/** `withThreadedInternals(internals, construct)`: hooks for the constructor `construct` calls, which `takeThreadedInternals()`s them. */
export const { run: withThreadedInternals, take: takeThreadedInternals } =
  handoff<ThreadedProcessorInternals>();

// SPDX-License-Identifier: Apache-2.0
/*
 * Test hooks of AuditLogRecordProcessor. They are not options: a test that needs them builds its
 * processor with `createProcessor()` (./create.ts), which hands them to the constructor through
 * this module. Neither module is exported by the package.
 */
import { handoff } from '../config/handoff.ts';

import type { ResolvedProcessorConfig } from '../config/processor-options.ts';
import type { SpoolFs } from '../spool/fs.ts';

export interface ProcessorInternals {
  /** The spool's filesystem (fault injection). */
  fs?: SpoolFs;
  /** Memory budget of frames per sender lane. */
  laneBudgetBytes?: number;
  /** A lane's coalescing window under load (ms; 0: none). */
  coalesceMillis?: number;
  /** How often leftover default spools are looked for (ms): processor/leftovers.ts. */
  leftoverCheckMillis?: number;
  /** Called after each leftover check. */
  onLeftoverCheck?: () => void;
  /** The options resolved already (the delivery thread: its application thread resolved them). */
  resolved?: ResolvedProcessorConfig;
}

/** `withProcessorInternals(internals, construct)`: hooks for the constructor `construct` calls, which `takeProcessorInternals()`s them. */
export const { run: withProcessorInternals, take: takeProcessorInternals } =
  handoff<ProcessorInternals>();

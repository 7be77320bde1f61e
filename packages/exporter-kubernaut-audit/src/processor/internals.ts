// SPDX-License-Identifier: Apache-2.0
/*
 * Test hooks of AuditLogRecordProcessor. They are not options: a test that needs them builds its
 * processor with `createProcessor()` (./create.ts), which hands them to the constructor through
 * this module. Neither module is exported by the package.
 */
import type { ResolvedProcessorConfig } from '../config/processor-options.ts';
import type { SpoolFs } from '../spool/fs.ts';

export interface ProcessorInternals {
  /** The spool's filesystem (fault injection). */
  fs?: SpoolFs;
  /** Memory budget of frames per sender lane. */
  laneBudgetBytes?: number;
  /** A lane's coalescing window under load (ms; 0: none). */
  coalesceMillis?: number;
  /** The options resolved already (the delivery thread: its application thread resolved them). */
  resolved?: ResolvedProcessorConfig;
}

let pending: ProcessorInternals | undefined;

/** Runs `construct` with `internals` waiting for the constructor that `construct` calls. */
export function withProcessorInternals<T>(internals: ProcessorInternals, construct: () => T): T {
  pending = internals;
  try {
    return construct();
  } finally {
    pending = undefined;
  }
}

/** The hooks handed to the processor being constructed ({} for ordinary construction). */
export function takeProcessorInternals(): ProcessorInternals {
  const internals = pending ?? {};
  pending = undefined;
  return internals;
}

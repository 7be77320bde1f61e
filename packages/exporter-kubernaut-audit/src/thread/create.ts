// SPDX-License-Identifier: Apache-2.0
/* Builds a threaded processor with test hooks (not exported by the package; tests import this file). */
import type { AuditLogRecordProcessorOptions } from '../config/processor-options.ts';
import { type ThreadedProcessorInternals, withThreadedInternals } from './internals.ts';
import { ThreadedAuditLogRecordProcessor } from './threaded-processor.ts';

/** A ThreadedAuditLogRecordProcessor with a slow delivery thread or a small backlog bound. */
export function createThreadedProcessor(
  options: AuditLogRecordProcessorOptions,
  internals: ThreadedProcessorInternals,
): ThreadedAuditLogRecordProcessor {
  return withThreadedInternals(internals, () => new ThreadedAuditLogRecordProcessor(options));
}

// SPDX-License-Identifier: Apache-2.0
/* Builds a processor with test hooks (not exported by the package; tests import this file). */
import type { AuditLogRecordProcessorOptions } from '../config/processor-options.ts';
import { AuditLogRecordProcessor } from './audit-log-record-processor.ts';
import { type ProcessorInternals, withProcessorInternals } from './internals.ts';

export type { ProcessorInternals } from './internals.ts';

/** An AuditLogRecordProcessor whose spool filesystem or lane budget a test sets. */
export function createProcessor(
  options: AuditLogRecordProcessorOptions,
  internals: ProcessorInternals,
): AuditLogRecordProcessor {
  return withProcessorInternals(internals, () => new AuditLogRecordProcessor(options));
}

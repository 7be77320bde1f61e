// SPDX-License-Identifier: Apache-2.0
/*
 * Set-up checks and adapters the processor and the exporter run so that a first run explains
 * itself (an unsupported Node.js, no service.name, attribute limits that cut audit records, loggers configured to drop some, a spool on a memory filesystem, logging libraries whose audit lines do not
 * arrive, the two logs-API globals). The processor and the exporter call these hooks, one line
 * each; everything else lives here.
 */

import { installApiLogsBridge } from '../logging/api-logs-bridge.ts';
import { checkAuditLines, noteAuditRecordReceived, noteProcessor } from '../logging/sightings.ts';
import type { ComponentDiag } from '../measure/diag.ts';
import { checkLoggerConfig } from './logger-config.ts';
import { checkNodeVersion } from './node-version.ts';
import { checkRecordLimits } from './record-limits.ts';
import { checkServiceName, type RecordWithResource } from './service-name.ts';
import { checkSpoolVolume } from './spool-volume.ts';

/** Hook: an AuditLogRecordProcessor was constructed. */
export function processorCreated(diag: ComponentDiag): void {
  checkNodeVersion(diag);
  installApiLogsBridge(diag);
  noteProcessor(1);
}

/** Hook: the processor's spool directory opened (at construction or later). */
export function spoolOpened(directory: string | undefined, diag: ComponentDiag): void {
  checkSpoolVolume(directory, diag);
}

/** Hook: a KubernautAuditExporter was constructed. */
export function exporterCreated(diag: ComponentDiag): void {
  checkNodeVersion(diag);
}

/**
 * Hook: the processor received an audit record (before mapping it). `emittedTo`: the processor,
 * when the record came through a Logger's emit (onEmit), not through offer().
 */
export function auditRecordReceived(
  record: RecordWithResource & { instrumentationScope?: { name?: string } },
  diag: ComponentDiag,
  emittedTo?: object,
): void {
  noteAuditRecordReceived(record.instrumentationScope?.name);
  checkServiceName(record, diag);
  checkRecordLimits(record, diag);
  if (emittedTo !== undefined) checkLoggerConfig(record, emittedTo, diag);
}

/**
 * Hook: the processor received the audit record it received last once more: it is registered
 * twice with a LoggerProvider (e.g. both in `processors` and through a wrapper), which calls
 * each processor in turn. The copy is ignored: stored twice, under two seqs, it would look like
 * two events to an auditor.
 */
export function registeredTwice(diag: ComponentDiag): void {
  diag.report(
    'warn',
    'registered-twice',
    'this processor is registered more than once with a LoggerProvider (each audit record reached it twice): the extra copies are ignored; give it to the provider once',
    1,
  );
}

/** Hook: the processor is shutting down. */
export function processorShuttingDown(): void {
  checkAuditLines();
  noteProcessor(-1);
}

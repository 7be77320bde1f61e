// SPDX-License-Identifier: Apache-2.0
/*
 * Public API of @kubernaut/exporter-kubernaut-audit: what an OpenTelemetry user needs (DESIGN §3).
 * Explicit named exports only; anything else is internal (some of it reachable, unstable, through
 * `@kubernaut/exporter-kubernaut-audit/experimental`).
 */
export {
  ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE,
  ENV_KUBERNAUT_AUDIT_ENDPOINT,
  type RetryOptions,
} from './config/exporter-env.ts';
export {
  KubernautAuditExportError,
  KubernautAuditExporter,
  type KubernautAuditExporterOptions,
} from './exporter/kubernaut-audit-exporter.ts';
export {
  AuditFlushTimeoutError,
  AuditLogRecordProcessor,
  type AuditLogRecordProcessorOptions,
} from './processor/audit-log-record-processor.ts';
export { excludeAuditRecords } from './select/index.ts';
export { ThreadedAuditLogRecordProcessor } from './thread/threaded-processor.ts';

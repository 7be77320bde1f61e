// Public API of @kubernaut/exporter-kubernaut-audit. Explicit named exports only.
export {
  ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE,
  ENV_KUBERNAUT_AUDIT_ENDPOINT,
  type RetryOptions,
} from './config/exporter-env.ts';
export type { AuditEventRequest, ContractViolation, ViolationReason } from './contract/index.ts';
export {
  DEFAULT_DEAD_LETTER_MAX_BYTES,
  type DeadLetterEntry,
  DeadLetterWriter,
  type DeadLetterWriterOptions,
  defaultDeadLetterPath,
} from './dead-letter/dead-letter-writer.ts';
export {
  type DeliveryOutcome,
  type DeliveryResult,
  KubernautAuditExportError,
  KubernautAuditExporter,
  type KubernautAuditExporterOptions,
} from './exporter/kubernaut-audit-exporter.ts';
export { isAuditRecord, type MapOptions, type MapResult, mapLogRecord } from './mapping/index.ts';

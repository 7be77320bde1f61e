// Public API of @kubernaut/exporter-kubernaut-audit. Explicit named exports only.

export {
  canonicalize,
  computeProvenanceHash,
  type Provenance,
  readProvenance,
} from '@kubernaut/audit-provenance';
export type {
  AuditEventRequest,
  ContractViolation,
  ViolationReason,
} from '@kubernaut/datastorage-contract';
export {
  ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE,
  ENV_KUBERNAUT_AUDIT_ENDPOINT,
  type RetryOptions,
} from './config/exporter-env.ts';
export { type ProcessorEnvConfig, readProcessorEnv } from './config/processor-env.ts';
export {
  DEFAULT_DEAD_LETTER_MAX_BYTES,
  type DeadLetterEntry,
  DeadLetterWriter,
  type DeadLetterWriterOptions,
  defaultDeadLetterPath,
} from './dead-letter/dead-letter-writer.ts';
export { excludeAuditRecords } from './exclude.ts';
export {
  type DeliveryOutcome,
  type DeliveryResult,
  KubernautAuditExportError,
  KubernautAuditExporter,
  type KubernautAuditExporterOptions,
} from './exporter/kubernaut-audit-exporter.ts';
export { isAuditRecord, type MapOptions, type MapResult, mapLogRecord } from './mapping/index.ts';
export {
  AuditFlushTimeoutError,
  AuditLogRecordProcessor,
  type AuditLogRecordProcessorOptions,
} from './processor/audit-log-record-processor.ts';
export {
  ProvenanceStamper,
  type ProvenanceStamperOptions,
  type ReservedSeq,
} from './provenance/index.ts';
export {
  type AppendResult,
  type AuditSpool,
  FileSpool,
  MemorySpool,
  type MemorySpoolOptions,
  openSpool,
  type SpoolEntry,
  SpoolOpenError,
  type SpoolOpenErrorCode,
  type SpoolOptions,
  type SpoolStats,
} from './spool/index.ts';

// SPDX-License-Identifier: Apache-2.0
/**
 * `@kubernaut/exporter-kubernaut-audit/experimental`: internals that other packages of this
 * repository build on (the audit OTLP bridge, the verifier's tests, the benchmarks, spool
 * inspection), among them the one rate-limited component diag logger (ComponentDiag).
 *
 * Unstable: every name here may change in any release, without notice and without a major
 * version. Applications use the main entry.
 *
 * @experimental
 * @packageDocumentation
 */
export { type ProcessorEnvConfig, readProcessorEnv } from './config/processor-env.ts';
export {
  type AuditDelivererOptions,
  createAuditDeliverer,
  type DeliveryOutcome,
  type DeliveryResult,
  deliverEvents,
  type ExporterDeliverer,
  isKubernautAuditExporter,
} from './exporter/kubernaut-audit-exporter.ts';
export {
  encodeEvent,
  type MapLogRecordOptions,
  type MapResult,
  mapLogRecord,
  mapRecord,
} from './map/index.ts';
export {
  ComponentDiag,
  type ComponentDiagOptions,
  type DiagLevel,
} from './measure/diag.ts';
export { type AuditOfferResult, spoolUsageOf } from './processor/audit-log-record-processor.ts';
export {
  PROVENANCE_STATE_FILE,
  ProvenanceStamper,
  type ProvenanceStamperOptions,
  type ReservedSeq,
} from './provenance/index.ts';
export { isAuditRecord } from './select/index.ts';
export {
  DEFAULT_DEAD_LETTER_MAX_BYTES,
  type DeadLetter,
  type DeadLetterEntry,
  DeadLetterFile,
  type DeadLetterFileOptions,
  defaultDeadLetterPath,
} from './spool/dead-letter.ts';
/** The frame encoder (FORMAT.md), for the benchmarks' design-floor reference. */
export { frameBytesOf, writeFrame } from './spool/frame.ts';
export {
  type AppendOutcome,
  type AuditSpool,
  DEFAULT_SPOOL_MAX_BYTES,
  type EncodedEvent,
  type Frame,
  openSpool,
  type Reservation,
  Spool,
  SpoolOpenError,
  type SpoolOptions,
  type SpoolStats,
} from './spool/index.ts';

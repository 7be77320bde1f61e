// SPDX-License-Identifier: Apache-2.0
// Public API of @kubernaut/audit-otlp-bridge. Explicit named exports only.
export {
  type BridgeLogger,
  DEFAULT_BODY_BYTES_PER_VALUE,
  DEFAULT_BRIDGE_SPOOL_MAX_BYTES,
  DEFAULT_MAX_REQUEST_BODY_BYTES,
  OTLP_LOGS_PATH,
  type OtlpBridge,
  type OtlpBridgeOptions,
  startOtlpBridge,
} from './bridge.ts';
export {
  BridgedLogRecord,
  type ConvertedRecord,
  convertExportRequest,
  convertLogRecord,
  nanosToHrTime,
  toApiAnyValue,
} from './convert.ts';
export {
  decodeExportLogsRequest,
  decodeExportLogsResponse,
  encodeExportLogsRequest,
  encodeExportLogsResponse,
  type OtlpAnyValue,
  OtlpDecodeError,
  type OtlpDecodeOptions,
  type OtlpEncoding,
  type OtlpExportLogsRequest,
  type OtlpKeyValue,
  type OtlpLogRecord,
  type OtlpPartialSuccess,
  type OtlpResourceLogs,
  type OtlpScopeLogs,
} from './proto/codec.ts';

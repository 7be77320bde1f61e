// SPDX-License-Identifier: Apache-2.0
/*
 * Public API of @kubernaut/datastorage-contract: the DataStorage contract (DESIGN §5), written
 * once and shared by the exporter (client-side validation), the reference server and the
 * verifier. Full OpenAPI validation is the `./openapi` subpath. Explicit named exports only.
 */

export { parseDateTime } from './datetime.ts';
export {
  AUDIT_EVENT_VERSION,
  AUDIT_EVENTS_BATCH_PATH,
  AUDIT_EVENTS_PATH,
  DEFAULT_ACTOR_TYPE,
  FIELD_MAX_LENGTH,
  type LimitedField,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_DURATION_MS,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_DATA_DEPTH,
  MAX_FUTURE_SKEW_MS,
  MAX_RETENTION_DAYS,
  MIN_RETENTION_DAYS,
  READYZ_PATH,
  VERIFY_CHAIN_PATH,
} from './limits.ts';
export {
  eventIndexFromProblem,
  isBatchSizeExceeded,
  PROBLEM_CONTENT_TYPE,
  PROBLEM_TYPE_BASE,
  problem,
} from './problem.ts';
export { isStorableString, type JsonShape, jsonShape } from './storable.ts';
export type {
  AsyncAcceptanceResponse,
  AuditEvent,
  AuditEventRequest,
  AuditEventsQueryResponse,
  BatchAuditEventResponse,
  JsonObject,
  JsonValue,
  ProblemDetails,
  VerifyChainResponse,
} from './types.ts';
export {
  type ContractViolation,
  isRequiredField,
  jsonByteLength,
  jsonDepth,
  REQUIRED_FIELDS,
  type ValidateOptions,
  type ViolationReason,
  validateAuditEventRequest,
  validateEnvelope,
  validateEventData,
} from './validate.ts';

// SPDX-License-Identifier: Apache-2.0
/*
 * @kubernaut/test-kit (private): what the test suites of several packages share. It depends on
 * the leaf packages and external libraries only, never on the exporter, the server or the
 * bridge (they devDepend on it); a test that needs a real reference server starts one itself.
 * Explicit named exports only.
 */
export { type ManualClock, manualClock, recordingSleeper } from './clock.ts';
export {
  at,
  type Backend,
  createScratchDatabase,
  type Harness,
  type JsonResponse,
  minimalEvent,
  type OpenedPglite,
  PG_ADMIN_URL,
  postBatch,
  type QueriedEvent,
  queryEvents,
  request,
  type ScratchDatabase,
  type StartServer,
  type StorageOption,
  storageBackends,
  TcpProxy,
  type TcpProxyOptions,
  type TcpProxyRoute,
  TEST_AUTH_HEADERS,
  TEST_TOKEN,
  testAuth,
  testPgliteCacheDir,
  testTokenFile,
  verifyChain,
} from './datastorage.ts';
export { captureDiag, type DiagCapture } from './diag.ts';
export {
  auditEvent,
  auditEvents,
  IMPOSSIBLE_DATE_TIMES,
  reorder,
  sampleEvent,
  storedForm,
} from './events.ts';
export {
  type Fault,
  FaultServer,
  type FaultServerOptions,
  type PoisonMode,
  type RequestLogEntry,
  type SpecViolationRecord,
  type StoredEvent,
} from './fault-server.ts';
export { cleanupTempDirs, readJsonLines, tempDir } from './fs.ts';
export { TestMetricReader, type TestMetrics, testMetrics } from './metrics.ts';
export { assertExactlyOnce, countIds, newRun, oracleRecord, readRun } from './oracle.ts';
export {
  type AuditRecordOptions,
  auditLogRecord,
  type CapturingLoggerProvider,
  categories,
  createCapturingLoggerProvider,
  type EventTypeInfo,
  eventTypeInfo,
  eventTypes,
  type JsonObject,
  type JsonValue,
  makeAuditLogRecord,
  realisticPayload,
  sampleEventTypes,
  TEST_RESOURCE_ATTRIBUTES,
} from './payloads.ts';
export {
  type CollectorOptions,
  type CollectorProcess,
  freePort,
  type Peers,
  peers,
  run,
  startCollector,
  waitFor,
} from './peers.ts';
export { announce, type ChildLines, childLines, nodeBinary } from './process.ts';
export {
  type PrometheusSample,
  type PrometheusText,
  parsePrometheusText,
  scrape,
} from './prometheus-text.ts';
export { type AppEncoding, type SdkApp, SUCCESS, startSdkApp } from './sdk-app.ts';
export { eventTypesPath, REPO_ROOT, specPath } from './spec.ts';

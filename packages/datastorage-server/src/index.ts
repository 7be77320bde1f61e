// SPDX-License-Identifier: Apache-2.0
// Public API of @kubernaut/datastorage-server. Explicit named exports only.

export type { AuthOptions, KubernetesAuthOptions } from './auth.ts';
export type { DlqSnapshot, RedisDlqOptions } from './dlq.ts';
export { computeEventHash, type HashedEventFields } from './hash.ts';
export {
  createJsonLogger,
  type DataStorageLogger,
  type JsonLoggerOptions,
  type LogLevel,
} from './logger.ts';
export {
  type DataStorageServer,
  type DataStorageServerOptions,
  type StorageOptions,
  startDataStorageServer,
} from './server.ts';
export {
  createCachedPglite,
  PGLITE_CACHE_FILE,
  type PgliteCacheOptions,
  type PgliteStart,
} from './storage/pglite-cache.ts';
export type { PgliteHandle, PgliteQueryable } from './storage/pglite-handle.ts';
export type {
  AuditEventStore,
  ChainVerification,
  StoredEventRow,
  TamperedEvent,
} from './storage/repository.ts';

// SPDX-License-Identifier: Apache-2.0
/* The audit spool: a durable, bounded write-ahead log of opaque payloads (DESIGN §6). */
export {
  DEFAULT_FSYNC_INTERVAL_MILLIS,
  DEFAULT_SEGMENT_BYTES,
  DEFAULT_SPOOL_MAX_BYTES,
  FileSpool,
} from './file-spool.ts';
export { MemorySpool, type MemorySpoolOptions } from './memory-spool.ts';
export { openSpool } from './open-spool.ts';
export {
  type AppendResult,
  type AuditSpool,
  type SpoolEntry,
  SpoolOpenError,
  type SpoolOpenErrorCode,
  type SpoolOptions,
  type SpoolStats,
} from './types.ts';

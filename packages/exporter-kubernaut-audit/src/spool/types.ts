// SPDX-License-Identifier: Apache-2.0
/*
 * Public types of the audit spool: a durable, bounded write-ahead log of opaque UTF-8
 * payloads that sits between the processor's batching stage and the sender (DESIGN §6).
 */

/** Options of a file spool. */
export interface SpoolOptions {
  /** Directory that holds the spool; created when missing. One live process owns it. */
  directory: string;
  /** Bound on live (unacknowledged) record bytes, frame headers included [1 GiB]. */
  maxBytes?: number;
  /**
   * Recorded for stats only: both modes write with `writeSync` before `append` returns, so an
   * appended record survives a process crash (SIGKILL). Power loss is bounded by the fsync cadence.
   */
  durability?: 'batch' | 'sync';
  /** fsync cadence in ms, the bound on what a power loss can take [1000]; 0 = fsync every append. */
  fsyncIntervalMillis?: number;
  /** Segment rotation size [64 MiB]; capped at a quarter of `maxBytes` (min 64 KiB, max 256 MiB). */
  segmentBytes?: number;
  /**
   * A lock held by a process on another host counts as stale when its heartbeat (the lock
   * file's mtime, refreshed every third of this) is older than this [60000].
   * @experimental
   */
  foreignLockStaleMillis?: number;
}

/** One spooled record. */
export interface SpoolEntry {
  /** Sequence number: unique and increasing for the life of the spool directory. */
  seq: number;
  /** Epoch ms when the record was appended. */
  appendedAt: number;
  payload: string;
}

/** What `append` did with a call's payloads. */
export interface AppendResult {
  /** Payloads written. They took consecutive seqs from `firstSeq`, in payload order. */
  appended: number;
  /** Payloads not written (spool full or write error); see `droppedIndexes`. */
  dropped: number;
  /** Seq of the first appended payload (absent when none was appended). */
  firstSeq?: number;
  /** Indexes (into the call's `payloads`) of the dropped payloads, present when `dropped > 0`. */
  droppedIndexes?: number[];
  /** Set when payloads were dropped because the write failed (disk full, I/O error). */
  error?: Error;
}

/** Spool counters and gauges. */
export interface SpoolStats {
  /** Live (unacknowledged) records. */
  records: number;
  /** Live record bytes (frame headers included): what `maxBytes` bounds. */
  bytes: number;
  /** `appendedAt` of the oldest live record. */
  oldestAppendedAt?: number;
  /** Damaged regions (torn tail, bad checksum, garbage) skipped since open; each lost ≥ 0 records. */
  corruptedSkipped: number;
  /** Records dropped because they would have pushed live bytes over `maxBytes`. */
  droppedFull: number;
  /** Records dropped because a write failed. */
  droppedWriteError?: number;
  /** Payloads dropped because they were not strings. */
  droppedInvalid?: number;
  /** Bytes of damaged regions skipped since open. */
  corruptedBytes?: number;
  /** Segment files on disk. */
  segments?: number;
  /** Bytes of all segment files on disk (live plus acknowledged-but-not-yet-deleted). */
  diskBytes?: number;
  durability?: 'batch' | 'sync';
}

/** A durable (file) or memory-only spool. Methods never throw into the caller except `FileSpool.open`. */
export interface AuditSpool {
  /**
   * Appends payloads in one write. Synchronous; on return the written records survive a
   * process crash. Never throws: drops are reported in the result and counted in stats.
   */
  append(payloads: readonly string[]): AppendResult;
  /** Up to `limit` unacknowledged entries with seq > `afterSeq`, ascending by seq. */
  readUnacked(limit: number, afterSeq?: number): SpoolEntry[];
  /** Acknowledges entries (any order; unknown or repeated seqs are ignored). Persisted. */
  ack(seqs: readonly number[]): void;
  stats(): SpoolStats;
  /** Flushes, fsyncs and releases the spool. Idempotent. */
  close(): void;
  readonly kind: 'file' | 'memory';
  /** Stable producer id (uuid): per spool directory for a file spool, per instance in memory. */
  readonly producerId: string;
}

/** Why a file spool could not be opened. */
export type SpoolOpenErrorCode = 'locked' | 'unwritable' | 'corrupt' | 'invalid_options';

/** Thrown by `FileSpool.open` only. */
export class SpoolOpenError extends Error {
  readonly code: SpoolOpenErrorCode | string;
  readonly directory: string;
  constructor(
    code: SpoolOpenErrorCode | string,
    directory: string,
    message: string,
    cause?: unknown,
  ) {
    super(`audit spool ${directory}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'SpoolOpenError';
    this.code = code;
    this.directory = directory;
  }
}

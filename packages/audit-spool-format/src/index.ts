// SPDX-License-Identifier: Apache-2.0
/*
 * @kubernaut/audit-spool-format: the read side of the audit spool's on-disk format 2
 * (packages/exporter-kubernaut-audit/src/spool/FORMAT.md), shared by the exporter's spool
 * recovery and `kubernaut-audit spool inspect|check`. Node.js builtins only.
 */
export {
  ACK_MAGIC,
  DEAD_LETTER_FILE,
  DEAD_LETTER_NAME,
  FRAME_HEAD_BYTES,
  FRAME_MAGIC,
  INDEX_ENTRY_BYTES,
  LEGACY_ACK_LOG,
  LEGACY_LOCK,
  LEGACY_SEGMENT_NAME,
  LOCK_DB,
  LOCK_FALLBACK,
  LOCK_OWNER,
  LOG_FILE,
  LOG_HEAD_BYTES,
  MAX_BODY_BYTES,
  MAX_FRAME_BYTES,
  MAX_FRAME_EVENTS,
  MAX_LANES,
  MAX_LOG_FILE_BYTES,
  MAX_SEGMENT_FILE_BYTES,
  META_FILE,
  PROVENANCE_STATE,
  SEGMENT_NAME,
  SENT_MAGIC,
  SPOOL_FORMAT,
  segmentName,
} from './constants.ts';
export {
  checkFrame,
  type DecodedFrame,
  decodeFrame,
  type FrameHead,
  type IndexMemory,
  indexArrays,
  isTornFrame,
  type LogVisitor,
  maxProvSeq,
  nextMagic,
  scanLog,
} from './frame.ts';
export { LEGACY_ACK_MAGIC, LEGACY_RECORD_MAGIC, walkLegacyFrames } from './legacy.ts';
export { type KernelLockState, loadDatabaseSync, probeKernelLock } from './lock-probe.ts';
export {
  openRegularSync,
  readRegularFileBounded,
  readRegularFileSync,
} from './regular-file.ts';
export {
  type DamagedRegion,
  membership,
  type SegmentScan,
  SpoolReadError,
  type SpoolScan,
  scanSpool,
} from './scan.ts';
export { type MissingRun, missingSeqRuns, type SeqGapInput } from './seq-gaps.ts';

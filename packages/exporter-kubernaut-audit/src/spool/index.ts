// SPDX-License-Identifier: Apache-2.0
/* spool/: the write-ahead log between intake and the sender (invariants in ./spool.ts, format in FORMAT.md). */
export { chooseSpool } from './choose.ts';
export {
  DEAD_LETTER_FILE,
  DEFAULT_DEAD_LETTER_MAX_BYTES,
  type DeadLetter,
  DeadLetterFile,
  type DeadLetterFileOptions,
} from './dead-letter.ts';
export { nodeFs, type SpoolFs } from './fs.ts';
export {
  DEFAULT_MEMORY_MAX_BYTES,
  DEFAULT_SPOOL_MAX_BYTES,
  laneOf,
  openSpool,
  Spool,
  type SpoolCounters,
  SpoolOpenError,
  type SpoolOptions,
  type SpoolTailInfo,
} from './spool.ts';
export type {
  AppendOutcome,
  AuditSpool,
  EncodedEvent,
  Frame,
  Reservation,
  SeqRange,
  SpoolMeta,
  SpoolStats,
} from './types.ts';

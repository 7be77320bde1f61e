// SPDX-License-Identifier: Apache-2.0
/*
 * The names and sizes of the spool's on-disk format 2 (packages/exporter-kubernaut-audit/src/spool/
 * FORMAT.md): magics, head sizes, file names. Constants only: the writer (the exporter's spool)
 * and the readers (its recovery, `kubernaut-audit spool inspect|check`) take them from here, so
 * that they cannot disagree.
 */

/** On-disk format these constants describe. */
export const SPOOL_FORMAT = 2;
/** Most lanes a spool may have. */
export const MAX_LANES = 64;
/** Most events in one frame (DataStorage's batch limit). */
export const MAX_FRAME_EVENTS = 500;
/** A frame's body stays below this (DataStorage's request limit, 5 MiB). */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;

/** Magic of an event frame. */
export const FRAME_MAGIC = Buffer.from('KAF2', 'latin1');
/** Magic of an ACK log frame. */
export const ACK_MAGIC = Buffer.from('KAK2', 'latin1');
/** Magic of a SENT log frame. */
export const SENT_MAGIC = Buffer.from('KAS2', 'latin1');
/** Bytes before a frame's index. */
export const FRAME_HEAD_BYTES = 32;
/** Bytes of one index entry. */
export const INDEX_ENTRY_BYTES = 24;
/** Bytes before a log frame's ranges. */
export const LOG_HEAD_BYTES = 12;
/** Largest frame a reader accepts (a body < 5 MiB, 500 events of index, the head). */
export const MAX_FRAME_BYTES =
  FRAME_HEAD_BYTES + MAX_FRAME_EVENTS * INDEX_ENTRY_BYTES + MAX_BODY_BYTES;

/**
 * The most a segment file holds: a writer starts a new segment once the active one would pass
 * its segmentBytes (at most 256 MiB), and a frame larger than that goes alone into one. Readers
 * read no further: what a larger file holds past it (grown by damage or by hand) is damage.
 */
export const MAX_SEGMENT_FILE_BYTES = 256 * 1024 * 1024 + MAX_FRAME_BYTES;
/**
 * The most the sent/ack log holds: it is compacted past 1 MiB while running and rewritten
 * compact at every open; even a fragmented one stays well under this. Readers read no further.
 */
export const MAX_LOG_FILE_BYTES = 256 * 1024 * 1024;

/** `meta.json`: what the directory is. */
export const META_FILE = 'meta.json';
/** The sent/ack log. */
export const LOG_FILE = 'sent-ack.log';
/** The kernel lock (a node:sqlite database held EXCLUSIVE by the owner). */
export const LOCK_DB = 'lock.db';
/** The lock holder, for information only. */
export const LOCK_OWNER = 'lock.owner';
/** The lock file used when node:sqlite cannot be loaded. */
export const LOCK_FALLBACK = 'lock.fallback';
/** The provenance stamper's state. */
export const PROVENANCE_STATE = 'provenance.state';
/** The lock holder's dead letters (`dead-letter.<session>.jsonl`: another process's). */
export const DEAD_LETTER_FILE = 'dead-letter.jsonl';
/** Segment files: `<20-digit first seq>.kaf`. */
export const SEGMENT_NAME = /^(\d{20})\.kaf$/;
/** Dead-letter files of the lock holder and of other processes. */
export const DEAD_LETTER_NAME = /^dead-letter(\.[^/]+)?\.jsonl$/;

/** Format 1 (earlier versions): segments, ack log, lock file. */
export const LEGACY_SEGMENT_NAME = /^(\d{20})\.seg$/;
export const LEGACY_ACK_LOG = 'acks.log';
export const LEGACY_LOCK = 'lock';

/** The file name of the segment whose first on-disk seq is `base`. */
export function segmentName(base: number): string {
  return `${String(base).padStart(20, '0')}.kaf`;
}

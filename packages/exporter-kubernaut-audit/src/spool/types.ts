// SPDX-License-Identifier: Apache-2.0
/*
 * The spool's side of the interface between the two halves of the delivery core (intake → spool
 * and spool → DataStorage). Binding: the send/deliver half codes against these types exactly.
 *
 * The interface is the design's, word for word; one addition: `SpoolStats` names the counters
 * the spool keeps (optional here, so that a small spool of a test may report only `records` and
 * `bytes`; the spool of this package reports them all, see `SpoolCounters` in spool.ts). What
 * only the processor uses (the destination adopted into meta.json, damage reported while
 * running) is on the Spool class, not in this interface.
 */
import type { DecodedFrame } from '@kubernaut/audit-spool-format';

/** One encoded event to append (produced by intake at drain). */
export interface EncodedEvent {
  /** Canonical JSON of the AuditEventRequest (UTF-8 when written); '' when `utf8` holds it. */
  json: string;
  /** UTF-8 byte length of json. */
  bytes: number;
  /** emit() time, ms since the epoch (for the delivery-latency metric). */
  emittedAt: number;
  /** Provenance seq (0 when provenance is off). */
  provSeq: number;
  /** Lane = fnv1a32(correlation_id) % lanes. */
  lane: number;
  /**
   * The JSON already written in UTF-8: bytes [utf8At, utf8At + bytes) of this buffer. When
   * given, append() copies these bytes instead of encoding `json`.
   */
  utf8?: Buffer | undefined;
  utf8At?: number | undefined;
}

/**
 * A frame as held in memory by the sender or read back from disk: the format's decoded frame
 * (its `body`, `[e0,e1,…]`, is the request body when every event is pending; `frameBytes` is
 * what maxBytes and the lane budgets count), plus what the spool knows of earlier sends.
 */
export interface Frame extends DecodedFrame {
  /** Events of this frame that a previous process had marked SENT and not acked (possible duplicates). */
  sentBefore?: Uint8Array;
}

/** Inclusive range of spool seqs. */
export interface SeqRange {
  from: number;
  to: number;
}

export interface AppendOutcome {
  /** Frames written, in input order, each with its seqs. */
  frames: Frame[];
  /** Events not written (spool full, write error, closed): the caller counts and reports them. */
  dropped: { events: EncodedEvent[]; reason: 'full' | 'error' | 'closed'; error?: Error }[];
}

export interface Reservation {
  readonly bytes: number;
  release(): void;
}

export interface SpoolMeta {
  producerId: string;
  /** Normalised DataStorage base URL the records are for (undefined until one is known). */
  destination: string | undefined;
  service: string | undefined;
  lanes: number;
  format: number;
}

/** Counters and gauges of a spool. */
export interface SpoolStats {
  /** Unacknowledged events. */
  records: number;
  /** Live frame bytes (frames holding an unacknowledged event): what `maxBytes` bounds. */
  bytes: number;
  /** `appendedAt` of the oldest unacknowledged event. */
  oldestAppendedAt?: number | undefined;
  /** Damaged regions skipped: at recovery and while running. */
  corrupted?: number;
  /** Bytes reserved (admission) and not yet used or released. */
  reservedBytes?: number;
  /** Events dropped because they did not fit `maxBytes`. */
  droppedFull?: number;
  /** Events dropped because a write failed (or the spool was closed). */
  droppedError?: number;
  /** Bytes of the spool's data files on disk (0 in memory). */
  diskBytes?: number;
  /** Segment files on disk (0 in memory). */
  segments?: number;
  /** The bound of live frame bytes. */
  maxBytes?: number;
  [more: string]: number | undefined;
}

export interface AppendOptions {
  /**
   * Write on the thread pool: append() returns once the frames are placed and registered, their
   * write under way (settleWrites() completes it synchronously). Ignored under a reservation.
   */
  deferWrite?: boolean;
}

export interface AuditSpool {
  readonly kind: 'file' | 'memory';
  readonly meta: SpoolMeta;
  /** Cuts events (already grouped per lane, in order) into frames ≤ 500 events / < 5 MiB body and appends them in ONE write. Under a reservation (its room first, then free room) the append is all or nothing for lack of room. The frames it returns hold their own bytes, except where a reused append buffer was supplied (Spool.setAppendBuffer): then they are valid until the next append. Never throws. */
  append(
    events: readonly EncodedEvent[],
    reservation?: Reservation,
    options?: AppendOptions,
  ): AppendOutcome;
  /** Writes, synchronously, what deferred appends still have under way (see AppendOptions). Never throws. */
  settleWrites(): void;
  /** Reserves room for `bytes` of frame bytes (admission); undefined when it does not fit. */
  reserve(bytes: number): Reservation | undefined;
  /** Frames of `lane` holding unacked events with seq > afterSeq, in order, up to maxBytes (at least one frame). Only unacked events are pending in them (acked ones are skipped by the sender using isAcked). Never throws; I/O errors end the read early and are counted. A frame read from disk is read into `alloc(bytes)` when given (the sender's read arena), else into a buffer of its own. */
  readLane(
    lane: number,
    afterSeq: number,
    maxBytes: number,
    alloc?: (bytes: number) => Buffer,
  ): Frame[];
  isAcked(seq: number): boolean;
  /**
   * True when `lane` has a frame with unacked events after `afterSeq` (from the in-memory frame
   * table: no read). Optional: a sender without it assumes there may be. Never throws.
   */
  hasFramesAfter?(lane: number, afterSeq: number): boolean;
  /** Marks seqs as sent (before a request). One write. */
  markSent(ranges: readonly SeqRange[]): void;
  /** Acknowledges settled seqs (accepted or dead-lettered). One write. */
  ack(ranges: readonly SeqRange[]): void;
  /** O(1): lowest unacked seq (Infinity when none). */
  oldestUnackedSeq(): number;
  /** O(1): highest seq appended so far (0 when none). */
  lastSeq(): number;
  /** records, bytes, oldestAppendedAt, corrupted, droppedFull, droppedError, diskBytes, segments … */
  stats(): SpoolStats;
  close(): void;
}

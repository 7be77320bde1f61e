// SPDX-License-Identifier: Apache-2.0
/*
 * The interface between the sender (send/) and the deliverer (deliver/), as fixed by the
 * delivery-core v2 design ("The interface between the two halves").
 *
 * One addition to the design's text, optional so that every OutgoingBatch written against the
 * design still fits: `OutgoingBatch.eventTime(i)`. The deliverer must dead-letter an event older
 * than DataStorage's 7-day window without sending it, which needs the event's
 * `event_timestamp`; a frame's index does not hold it. A batch that knows it (the standalone
 * exporter's) says so; for the others the deliverer reads it from the event's JSON bytes.
 */
import type { RequestBody } from '../deliver/request-body.ts';

/** What became of one event handed to the deliverer. */
export type EventOutcome = 'accepted' | 'dead_lettered' | 'pending';

/** A request's worth of events of one lane, in order (a frame or a slice of frames). */
export interface OutgoingBatch {
  /** Spool seqs, in order. */
  seqs: number[];
  /**
   * The body for a subset (indexes into seqs), without decoding: `[` + slices + `]`, as one
   * buffer or as parts written in order (see deliver/request-body.ts).
   */
  body(indexes?: readonly number[]): RequestBody;
  /** The JSON text of event i (for dead letters / bisection diagnostics only). */
  eventJson(i: number): string;
  emittedAt(i: number): number;
  provSeq(i: number): number;
  /** Events a previous process may already have delivered (count duplicates_possible when resent). */
  possiblyDelivered(i: number): boolean;
  /**
   * `event_timestamp` of event i in ms since the epoch, when the batch knows it without
   * parsing (NaN or absent: the deliverer reads it from the event's JSON).
   */
  eventTime?(i: number): number;
}

export interface AuditDeliverer {
  /**
   * Sends until every event is accepted or dead-lettered, or the signal aborts (then the rest
   * is 'pending'), or — only after `moreBehind()` answered true — until the events left are
   * ones DataStorage rejected with no acceptance anywhere since (then they are 'pending', and
   * the sender sends them again with the events behind them). Never rejects.
   */
  deliver(
    batch: OutgoingBatch,
    options: {
      signal: AbortSignal;
      health: DeliveryHealth;
      /** Called each time a request of the batch failed and is about to be retried after a wait. */
      onRetry?: () => void;
      /** True when the lane holds events behind this batch. */
      moreBehind?: () => boolean;
    },
  ): Promise<EventOutcome[]>;
}

/** Shared across lanes: has DataStorage accepted anything lately? */
export interface DeliveryHealth {
  lastAcceptedAt(): number | undefined;
  accepted(now: number): void;
  /**
   * Calls `listener` at the next acceptance reported (once); returns a function that cancels
   * it. A lane backing off after DataStorage was unreachable wakes when another lane got an
   * acceptance: DataStorage is back.
   */
  onNextAccepted?(listener: () => void): () => void;
}

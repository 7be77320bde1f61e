// SPDX-License-Identifier: Apache-2.0
/*
 * The send/deliver half's side of the interface between the two halves of the delivery core
 * (binding; see spool/types.ts for the spool's side).
 */

export type EventOutcome = 'accepted' | 'dead_lettered' | 'pending';

/** A request's worth of events of one lane, in order (a frame or a slice of frames). */
export interface OutgoingBatch {
  /** Spool seqs, in order. */
  seqs: number[];
  /** Builds the body for a subset (indexes into seqs), without decoding: `[` + slices + `]`. */
  body(indexes?: readonly number[]): Buffer;
  /** The JSON text of event i (for dead letters / bisection diagnostics only). */
  eventJson(i: number): string;
  emittedAt(i: number): number;
  provSeq(i: number): number;
  /** Events a previous process may already have delivered (count duplicates_possible when resent). */
  possiblyDelivered(i: number): boolean;
}

/** Shared across lanes: has DataStorage accepted anything lately? */
export interface DeliveryHealth {
  lastAcceptedAt(): number | undefined;
  accepted(now: number): void;
}

export interface AuditDeliverer {
  /** Sends until every event is accepted or dead-lettered, or the signal aborts (then the rest is 'pending'). Never rejects. */
  deliver(
    batch: OutgoingBatch,
    options: { signal: AbortSignal; health: DeliveryHealth },
  ): Promise<EventOutcome[]>;
}

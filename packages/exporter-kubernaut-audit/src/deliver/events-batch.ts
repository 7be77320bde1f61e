// SPDX-License-Identifier: Apache-2.0
/*
 * An OutgoingBatch over events serialised in this process (the standalone exporter's records,
 * or AuditEventRequests handed to `deliverEvents`): the body is built by concatenation of the
 * JSON texts, the whole batch's body once and only when asked for.
 */
import type { OutgoingBatch } from '../send/types.ts';

export interface EventsBatchInput {
  /** JSON text of each event, in order. */
  json: readonly string[];
  /** `event_timestamp` of each event in ms since the epoch (NaN when unknown). */
  eventTime?: Float64Array;
  /** emit() time of each event (0 when unknown). */
  emittedAt?: Float64Array;
}

/** An OutgoingBatch whose seqs are 0..n-1. */
export function eventsBatch(input: EventsBatchInput): OutgoingBatch {
  const { json, eventTime, emittedAt } = input;
  const n = json.length;
  let whole: Buffer | undefined;
  return {
    seqs: Array.from({ length: n }, (_, i) => i),
    body(indexes?: readonly number[]): Buffer {
      if (indexes === undefined || indexes.length === n) {
        whole ??= Buffer.from(`[${json.join(',')}]`, 'utf8');
        return whole;
      }
      let text = '[';
      for (let k = 0; k < indexes.length; k++) {
        if (k > 0) text += ',';
        text += json[indexes[k] as number];
      }
      return Buffer.from(`${text}]`, 'utf8');
    },
    eventJson: (i) => json[i] ?? '',
    emittedAt: (i) => emittedAt?.[i] ?? 0,
    provSeq: () => 0,
    possiblyDelivered: () => false,
    eventTime: (i) => eventTime?.[i] ?? Number.NaN,
  };
}

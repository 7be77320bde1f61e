// SPDX-License-Identifier: Apache-2.0
/*
 * An OutgoingBatch over events serialised in this process (the standalone exporter's records,
 * or AuditEventRequests handed to `deliverEvents`): the body is `[` + the JSON texts joined by
 * `,` + `]`, written straight into one buffer (no intermediate string), the whole batch's body
 * once and only when asked for.
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

/** `[` + texts + `]` as UTF-8, sized by the texts' lengths first (exact when all are ASCII). */
export function arrayBody(json: readonly string[], indexes?: readonly number[]): Buffer {
  const n = indexes === undefined ? json.length : indexes.length;
  let units = 1 + Math.max(1, n);
  for (let k = 0; k < n; k++)
    units += (json[indexes === undefined ? k : (indexes[k] as number)] as string).length;
  const ascii = write(json, indexes, n, Buffer.allocUnsafe(units), true);
  if (ascii !== undefined) return ascii;
  // Not all ASCII: size by UTF-8 bytes.
  let bytes = 1 + Math.max(1, n);
  for (let k = 0; k < n; k++) {
    bytes += Buffer.byteLength(
      json[indexes === undefined ? k : (indexes[k] as number)] as string,
      'utf8',
    );
  }
  return write(json, indexes, n, Buffer.allocUnsafe(bytes), false) as Buffer;
}

function write(
  json: readonly string[],
  indexes: readonly number[] | undefined,
  n: number,
  out: Buffer,
  asciiOnly: boolean,
): Buffer | undefined {
  out[0] = 0x5b;
  let pos = 1;
  for (let k = 0; k < n; k++) {
    if (k > 0) out[pos++] = 0x2c;
    const s = json[indexes === undefined ? k : (indexes[k] as number)] as string;
    const written = out.write(s, pos, 'utf8');
    // An ASCII text takes one byte per unit; anything else did not fit this sizing.
    if (asciiOnly && written !== s.length) return undefined;
    pos += written;
  }
  out[pos++] = 0x5d;
  return pos === out.length ? out : out.subarray(0, pos);
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
        whole ??= arrayBody(json);
        return whole;
      }
      return arrayBody(json, indexes);
    },
    eventJson: (i) => json[i] ?? '',
    emittedAt: (i) => emittedAt?.[i] ?? 0,
    provSeq: () => 0,
    possiblyDelivered: () => false,
    eventTime: (i) => eventTime?.[i] ?? Number.NaN,
  };
}

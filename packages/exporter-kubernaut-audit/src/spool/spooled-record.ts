// SPDX-License-Identifier: Apache-2.0
/*
 * What the processor stores in the spool for one record: the mapped AuditEventRequest and
 * the emit time (for the emit→accepted latency). One JSON object per spool record.
 */
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';

export interface SpooledRecord {
  /** emit() time, ms since the epoch. */
  emittedAt: number;
  event: AuditEventRequest;
}

/** Serialises one record for the spool (`{"t":<ms>,"e":<event>}`). */
export function encodeSpooled(event: AuditEventRequest, emittedAt: number): string {
  return `{"t":${Math.round(emittedAt)},"e":${JSON.stringify(event)}}`;
}

/** Parses a spool payload; undefined when it is not one of ours (counted as corrupted). */
export function decodeSpooled(payload: string): SpooledRecord | undefined {
  try {
    const v = JSON.parse(payload) as { t?: unknown; e?: unknown };
    if (
      v === null ||
      typeof v !== 'object' ||
      typeof v.t !== 'number' ||
      v.e === null ||
      typeof v.e !== 'object' ||
      Array.isArray(v.e)
    )
      return undefined;
    return { emittedAt: v.t, event: v.e as AuditEventRequest };
  } catch {
    return undefined;
  }
}

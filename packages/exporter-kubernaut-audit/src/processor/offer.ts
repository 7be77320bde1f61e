// SPDX-License-Identifier: Apache-2.0
/*
 * The processor's entry for a receiver that must know what became durable (the audit OTLP
 * bridge): `offer(records, reservation)` selects the audit records, hands them to the intake,
 * which drains them at once (the spool append is synchronous), and reports per record what
 * happened. A receiver answers "success" only for what is on the spool.
 */
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { RecordOutcome } from '../intake/drain.ts';
import { isAuditRecord } from '../select/index.ts';

/**
 * What became of the records given to `AuditLogRecordProcessor.offer()`.
 * @experimental
 */
export interface AuditOfferResult {
  /** Audit records now on the spool (as durable as the spool is: on disk for a file spool). */
  appended: number;
  /** Records that are not audit records (left untouched, as `onEmit` leaves them). */
  ignored: number;
  /**
   * Audit records DataStorage can never store, dead-lettered (with why), by index into the
   * records given. A receiver reports them as rejected: resending cannot help.
   */
  invalid: Array<{ index: number; detail: string }>;
  /**
   * Audit records that are NOT on the spool (it is full, a write failed, or the processor is
   * shut down), by index. A receiver must not acknowledge them.
   */
  dropped: Array<{ index: number; reason: 'full' | 'error' | 'closed' }>;
}

/** Splits `records` into audit records (with their indexes) and a count of the others. */
export function selectAudit(records: readonly ReadableLogRecord[]): {
  audit: ReadableLogRecord[];
  indexes: number[];
  ignored: number;
} {
  const audit: ReadableLogRecord[] = [];
  const indexes: number[] = [];
  records.forEach((r, i) => {
    if (!isAuditRecord(r)) return;
    audit.push(r);
    indexes.push(i);
  });
  return { audit, indexes, ignored: records.length - audit.length };
}

/** The result of an offer from the intake's outcome of each audit record. */
export function offerResult(
  indexes: readonly number[],
  outcomes: readonly RecordOutcome[],
  ignored: number,
): AuditOfferResult {
  const result: AuditOfferResult = { appended: 0, ignored, invalid: [], dropped: [] };
  outcomes.forEach((o, k) => {
    const index = indexes[k] as number;
    if (o.kind === 'appended') result.appended++;
    else if (o.kind === 'invalid') result.invalid.push({ index, detail: o.detail });
    else result.dropped.push({ index, reason: o.reason });
  });
  return result;
}

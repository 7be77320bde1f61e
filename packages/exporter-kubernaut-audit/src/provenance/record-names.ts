// SPDX-License-Identifier: Apache-2.0
/*
 * OTEP 0267 names on the OTel record (processor option `recordAttributes`, @experimental): at
 * emit, before the record becomes read-only, the processor sets `audit.sequence.number` (the
 * provenance seq) and `audit.record.id` (`<producer_id>/<seq>`) when the record does not carry
 * them, so that processors and exporters that read the record later (an OTLP exporter to a
 * Collector) carry them too. `audit.prev.hash` is not set: the chain is built at drain, after
 * emit() returned and the record became read-only.
 *
 * Invariant: never throws; a record that cannot be written to (not an SDK ReadWriteLogRecord) is
 * left as it is.
 */
import {
  ATTR_AUDIT_RECORD_ID,
  ATTR_AUDIT_SEQUENCE_NUMBER,
} from '@kubernaut/audit-semantic-conventions';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';

export function nameRecord(record: ReadableLogRecord, producerId: string, seq: number): void {
  try {
    const w = record as ReadableLogRecord & { setAttribute?: (k: string, v: unknown) => unknown };
    if (typeof w.setAttribute !== 'function') return;
    const attrs = record.attributes as Record<string, unknown>;
    if (attrs[ATTR_AUDIT_SEQUENCE_NUMBER] === undefined)
      w.setAttribute(ATTR_AUDIT_SEQUENCE_NUMBER, seq);
    if (attrs[ATTR_AUDIT_RECORD_ID] === undefined) {
      w.setAttribute(ATTR_AUDIT_RECORD_ID, `${producerId}/${seq}`);
    }
  } catch {
    // a record that cannot be written to keeps what it has
  }
}

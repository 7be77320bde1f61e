// SPDX-License-Identifier: Apache-2.0
/*
 * The standalone exporter's encoding: each audit record mapped, validated and serialised once
 * into the JSON text of its AuditEventRequest, with its event_timestamp in ms (so that the
 * deliverer never parses it back).
 */
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import { parseDateTime } from '@kubernaut/datastorage-contract';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { mapLogRecord } from '../mapping/index.ts';
import type { SpecValidator } from './openapi-spec.ts';

export interface EncodedRecords {
  /** JSON text of each valid event, in record order. */
  json: string[];
  /** event_timestamp of each, ms since the epoch. */
  eventTime: Float64Array;
  /** Invalid optional fields left out, count by reason. */
  omitted: Map<string, number>;
  /** Records that cannot be delivered, with why. */
  invalid: Array<{ record: ReadableLogRecord; violations: ContractViolation[] }>;
}

/** Encodes audit records (see the module comment). Never throws. */
export function encodeRecords(
  records: readonly ReadableLogRecord[],
  now: number,
  validator: SpecValidator | undefined,
): EncodedRecords {
  const json: string[] = [];
  const eventTime = new Float64Array(records.length);
  const omitted = new Map<string, number>();
  const invalid: EncodedRecords['invalid'] = [];
  for (const record of records) {
    const mapped = mapLogRecord(record, { now, ...(validator ? { openApi: validator } : {}) });
    if (!mapped.ok) {
      invalid.push({ record, violations: mapped.violations });
      continue;
    }
    for (const o of mapped.omitted) omitted.set(o.reason, (omitted.get(o.reason) ?? 0) + 1);
    let text: string;
    try {
      text = JSON.stringify(mapped.event);
    } catch (err) {
      invalid.push({
        record,
        violations: [{ field: '', reason: 'invalid_record', message: String(err) }],
      });
      continue;
    }
    eventTime[json.length] = parseDateTime(mapped.event.event_timestamp) ?? Number.NaN;
    json.push(text);
  }
  return { json, eventTime: eventTime.subarray(0, json.length), omitted, invalid };
}

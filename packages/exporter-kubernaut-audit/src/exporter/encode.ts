// SPDX-License-Identifier: Apache-2.0
/*
 * The standalone exporter's encoding: each audit record mapped, validated and serialised once
 * into the canonical JSON text of its AuditEventRequest by the mapping's own encoder (map/,
 * the processor's drain uses the same one), with its event_timestamp in ms (so that the
 * deliverer never parses it back).
 *
 * Invariant: the result is exactly the mapping's (`mapLogRecord`): same JSON text, same invalid
 * records with the same violations, same omitted fields.
 */
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { encodeRecord } from '../map/index.ts';
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
  const options = validator === undefined ? { now } : { now, openApi: validator };
  for (const record of records) {
    const e = encodeRecord(record, options);
    if (!e.ok) {
      invalid.push({ record, violations: e.violations });
      continue;
    }
    for (const o of e.omitted) omitted.set(o.reason, (omitted.get(o.reason) ?? 0) + 1);
    eventTime[json.length] = e.timeMs;
    json.push(e.json);
  }
  return { json, eventTime: eventTime.subarray(0, json.length), omitted, invalid };
}

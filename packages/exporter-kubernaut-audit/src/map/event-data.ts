// SPDX-License-Identifier: Apache-2.0
/*
 * Where `event_data` comes from: a plain map (the body or the `audit.event.data` attribute), or
 * `audit.event.data` given as a JSON string, parsed here (bounded by its length).
 */

import {
  type ContractViolation,
  type JsonObject,
  MAX_EVENT_DATA_BYTES,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';

/** A `audit.event.data` JSON string longer than this is rejected as too large without parsing. */
export const MAX_EVENT_DATA_JSON_STRING_LENGTH = 4 * MAX_EVENT_DATA_BYTES;

export type EventDataResult =
  | { ok: true; data: JsonObject }
  | { ok: false; violation: ContractViolation };

/** True for a plain object: what OTel calls a map (`AnyValueMap`). */
export function isPlainMap(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Parses `audit.event.data` given as a JSON string; it must hold a JSON object. */
export function parseEventData(text: string): EventDataResult {
  if (text.length > MAX_EVENT_DATA_JSON_STRING_LENGTH) {
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'event_data_too_large',
        message: `audit.event.data is a ${text.length}-character string, over the size limit`,
      },
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'invalid_json',
        message: `audit.event.data is not valid JSON: ${errorText(err, 200)}`,
      },
    };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'invalid_type',
        message: 'audit.event.data must hold a JSON object',
      },
    };
  }
  return { ok: true, data: parsed as JsonObject };
}

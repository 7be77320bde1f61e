// SPDX-License-Identifier: Apache-2.0
/*
 * Turns a log record's body or `audit.event.data` attribute into a fresh JSON object for
 * `event_data`, without ever throwing and without touching the record. Bounded work:
 * nesting deeper than MAX_EVENT_DATA_DEPTH stops the walk (so cycles and hostile depth
 * end early) and a running lower bound of the JSON size stops it once the payload is
 * certainly over MAX_EVENT_DATA_BYTES (so huge strings and exploding shared references
 * are never serialised). The exact size is measured once, by the contract validation.
 */

import {
  type ContractViolation,
  type JsonObject,
  type JsonValue,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_DATA_DEPTH,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';

/** A `audit.event.data` JSON string longer than this is rejected as too large without parsing. */
export const MAX_EVENT_DATA_JSON_STRING_LENGTH = 4 * MAX_EVENT_DATA_BYTES;

export type EventDataResult =
  | { ok: true; data: JsonObject }
  | { ok: false; violation: ContractViolation };

interface WalkState {
  /** Lower bound of the compact JSON bytes still allowed. */
  budget: number;
  ancestors: object[];
  /** Keys from the failing value up to the root (filled while unwinding). */
  path: string[];
  failure: ContractViolation | undefined;
  /** Set as the root's `event_type` when given. */
  eventType: string | undefined;
}

const FAIL: unique symbol = Symbol('fail');
const SKIP: unique symbol = Symbol('skip');
type Walked = JsonValue | typeof FAIL | typeof SKIP;

/** True for a plain object: what OTel calls a map (`AnyValueMap`). */
export function isPlainMap(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function fail(st: WalkState, reason: ContractViolation['reason'], what: string): typeof FAIL {
  st.failure = { field: 'event_data', reason, message: what };
  return FAIL;
}

function kindOf(v: object): string {
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name.length > 0 ? `a ${name}` : 'a non-plain object';
}

function setOwn(target: Record<string, JsonValue>, key: string, value: JsonValue): void {
  if (key === '__proto__') {
    // Keep it as data, never as the prototype.
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

function walk(v: unknown, depth: number, st: WalkState, inArray: boolean): Walked {
  switch (typeof v) {
    case 'string':
      st.budget -= v.length + 2;
      if (st.budget < 0) return fail(st, 'event_data_too_large', 'is over the size limit');
      return v;
    case 'number':
      st.budget -= 1;
      if (!Number.isFinite(v)) return fail(st, 'invalid_type', `is ${v}, not a JSON number`);
      return v;
    case 'boolean':
      st.budget -= 4;
      return v;
    case 'undefined':
      // As JSON.stringify does: dropped from objects, null in arrays.
      st.budget -= inArray ? 4 : 0;
      return inArray ? null : SKIP;
    case 'bigint':
      return fail(st, 'invalid_type', 'is a BigInt, not a JSON value');
    case 'function':
    case 'symbol':
      return fail(st, 'invalid_type', `is a ${typeof v}, not a JSON value`);
  }
  if (v === null) {
    st.budget -= 4;
    return null;
  }
  const obj = v as object;
  if (obj instanceof Uint8Array) {
    // OTel bytes values travel as base64, as in OTLP/JSON.
    const s = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64');
    return walk(s, depth, st, inArray);
  }
  if (obj instanceof Date) {
    const t = obj.getTime();
    if (Number.isNaN(t)) return fail(st, 'invalid_type', 'is an invalid Date');
    return walk(obj.toISOString(), depth, st, inArray);
  }
  const isArray = Array.isArray(obj);
  if (!isArray && !isPlainMap(obj)) {
    return fail(st, 'invalid_type', `is ${kindOf(obj)}, not a JSON value`);
  }
  if (depth > MAX_EVENT_DATA_DEPTH) {
    return fail(st, 'event_data_too_deep', `nests deeper than ${MAX_EVENT_DATA_DEPTH} levels`);
  }
  if (st.ancestors.includes(obj)) {
    return fail(st, 'invalid_type', 'is a circular reference');
  }
  st.budget -= 2;
  st.ancestors.push(obj);
  let result: Walked;
  if (isArray) {
    const arr = obj as unknown[];
    const out: JsonValue[] = new Array(arr.length);
    result = out;
    for (let i = 0; i < arr.length; i++) {
      if (i > 0) st.budget -= 1; // comma
      const c = walk(arr[i], depth + 1, st, true);
      if (c === FAIL) {
        st.path.push(`[${i}]`);
        result = FAIL;
        break;
      }
      out[i] = c as JsonValue;
      if (st.budget < 0) {
        result = fail(st, 'event_data_too_large', 'is over the size limit');
        break;
      }
    }
  } else {
    const src = obj as Record<string, unknown>;
    const out: Record<string, JsonValue> = {};
    result = out;
    let first = true;
    if (depth === 1 && st.eventType !== undefined) {
      // The root's event_type is the record's event type, first; the body's own is replaced.
      out.event_type = st.eventType;
      st.budget -= st.eventType.length + 15;
      first = false;
    }
    for (const key of Object.keys(src)) {
      if (depth === 1 && st.eventType !== undefined && key === 'event_type') continue;
      const c = walk(src[key], depth + 1, st, false);
      if (c === SKIP) continue;
      // "key": plus a comma before every member but the first.
      st.budget -= key.length + (first ? 3 : 4);
      first = false;
      if (c === FAIL) {
        st.path.push(`.${key.length > 64 ? `${key.slice(0, 64)}…` : key}`);
        result = FAIL;
        break;
      }
      setOwn(out, key, c);
      if (st.budget < 0) {
        result = fail(st, 'event_data_too_large', 'is over the size limit');
        break;
      }
    }
  }
  st.ancestors.pop();
  return result;
}

/**
 * Copies a map into a JSON object. Fails (never throws) on values JSON cannot carry
 * (BigInt, functions, symbols, non-finite numbers, class instances, cycles), on nesting
 * deeper than the limit and when the payload is certainly over the size limit.
 * Uint8Array becomes base64 and Date an ISO string. When `eventType` is given it becomes
 * the copy's `event_type` (first key), replacing the source's.
 */
export function copyEventData(value: Record<string, unknown>, eventType?: string): EventDataResult {
  const st: WalkState = {
    budget: MAX_EVENT_DATA_BYTES,
    ancestors: [],
    path: [],
    failure: undefined,
    eventType,
  };
  let walked: Walked;
  try {
    walked = walk(value, 1, st, false);
  } catch (err) {
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'invalid_type',
        message: `event_data cannot be read: ${errorText(err, 200)}`,
      },
    };
  }
  if (walked === FAIL || walked === SKIP || st.failure !== undefined) {
    const f = st.failure ?? {
      field: 'event_data',
      reason: 'invalid_type' as const,
      message: 'is not a JSON object',
    };
    let path = 'event_data';
    for (let i = st.path.length - 1; i >= 0; i--) path += st.path[i];
    return { ok: false, violation: { ...f, message: `${path} ${f.message}` } };
  }
  return { ok: true, data: walked as JsonObject };
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

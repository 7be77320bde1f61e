// SPDX-License-Identifier: Apache-2.0
/*
 * The serialise-once encoder: a mapped event (envelope + event_data source) and its provenance
 * → the canonical JSON (RFC 8785) of the AuditEventRequest, with the provenance hash computed
 * over the same bytes.
 *
 * Invariants:
 * - The output is `canonicalize(request)` of @kubernaut/audit-provenance: members sorted by
 *   UTF-16 code units, ECMAScript number form, JSON.stringify string escaping, no whitespace.
 * - With provenance, `hash` = SHA-256 hex of the output without its `actor_ip` member and without
 *   the `hash` member itself, which is exactly `canonicalize(hashView(request))` because the
 *   envelope is in hash-view form (see map.ts). `computeProvenanceHash(JSON.parse(json))` is
 *   therefore `hash` (property-tested); the hash member is spliced in after hashing.
 * - `event_data` is serialised straight from the application's object, once: never copied,
 *   never serialised twice. The walk is bounded: nesting deeper than MAX_EVENT_DATA_DEPTH (so
 *   cycles end), output beyond MAX_EVENT_DATA_BYTES characters (so huge strings and exploding
 *   shared references end) and more members than that (walk budget) stop it with a violation.
 *   A key `__proto__` is data: keys are the object's own enumerable keys, read as own members.
 * - Values JSON cannot carry (BigInt, functions, symbols, non-finite numbers, class instances)
 *   and strings DataStorage cannot store (NUL, unpaired surrogates, in keys too) are violations.
 *   Uint8Array travels as base64 and Date as an ISO string (as before).
 * - The limit of 256 KiB applies to `event_data` *with* its provenance stamp, in UTF-8 bytes.
 * - Never throws.
 */
import { hash as oneShotHash } from 'node:crypto';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import {
  type ContractViolation,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_DATA_DEPTH,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { Envelope } from './map.ts';

/** What a crashed predecessor left unaccounted (see provenance/). */
export interface RecoveredDeclaration {
  session_id: string;
  spooled_through: number;
  reserved_through: number;
}

/** The provenance stamped into `event_data.audit_provenance` (without its hash). */
export interface ProvenanceFields {
  producer_id: string;
  session_id: string;
  seq: number;
  prev_hash: string | null;
  /** On the first record a session stamps after its predecessor crashed. */
  recovered?: RecoveredDeclaration | undefined;
  /** The record's own timestamp when `monotonicTimestamps` moved it forward. */
  original_timestamp?: string | undefined;
}

export type Encoded =
  | { ok: true; json: string; bytes: number; hash: string | undefined }
  | { ok: false; violation: ContractViolation };

const q = JSON.stringify;
const HASH_MEMBER_CHARS = '"hash":"",'.length + 64;

/** Bounded canonical writer of one event_data value. */
class DataWriter {
  out = '';
  /** Characters the output may still take. */
  budget: number;
  /** Members and elements the walk may still visit. */
  work: number;
  failure: ContractViolation | undefined = undefined;
  path: string[] = [];
  /** What "too large" says (the limit counts the provenance stamp when there is one). */
  readonly tooLarge: string;

  constructor(budget: number, stamped: boolean) {
    this.budget = budget;
    this.work = budget;
    this.tooLarge = `is over the limit of ${MAX_EVENT_DATA_BYTES} bytes${stamped ? ' with its provenance stamp' : ''}`;
  }

  fail(reason: ContractViolation['reason'], message: string): false {
    this.failure = { field: 'event_data', reason, message };
    return false;
  }

  add(s: string): boolean {
    this.budget -= s.length;
    if (this.budget < 0) return this.fail('event_data_too_large', this.tooLarge);
    this.out += s;
    return true;
  }

  string(s: string): boolean {
    if (s.length + 2 > this.budget) return this.fail('event_data_too_large', this.tooLarge);
    return this.add(q(s));
  }

  value(v: unknown, depth: number): boolean {
    switch (typeof v) {
      case 'string':
        return this.string(v);
      case 'number':
        if (!Number.isFinite(v)) return this.fail('invalid_type', `is ${v}, not a JSON number`);
        return this.add(String(v));
      case 'boolean':
        return this.add(v ? 'true' : 'false');
      case 'bigint':
        return this.fail('invalid_type', 'is a BigInt, not a JSON value');
      case 'function':
      case 'symbol':
      case 'undefined':
        return this.fail('invalid_type', `is a ${typeof v}, not a JSON value`);
    }
    if (v === null) return this.add('null');
    const obj = v as object;
    if (obj instanceof Uint8Array) {
      // OTel bytes values travel as base64, as in OTLP/JSON.
      if (obj.byteLength > this.budget) {
        return this.fail('event_data_too_large', this.tooLarge);
      }
      return this.string(
        Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64'),
      );
    }
    if (obj instanceof Date) {
      const t = obj.getTime();
      if (Number.isNaN(t)) return this.fail('invalid_type', 'is an invalid Date');
      return this.string(obj.toISOString());
    }
    if (depth > MAX_EVENT_DATA_DEPTH) {
      return this.fail('event_data_too_deep', `nests deeper than ${MAX_EVENT_DATA_DEPTH} levels`);
    }
    if (Array.isArray(obj)) return this.array(obj, depth);
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      return this.fail('invalid_type', `is ${kindOf(obj)}, not a JSON value`);
    }
    return this.object(obj as Record<string, unknown>, depth, undefined);
  }

  array(arr: readonly unknown[], depth: number): boolean {
    const n = arr.length;
    this.work -= n;
    if (this.work < 0 || n * 2 > this.budget) {
      return this.fail('event_data_too_large', this.tooLarge);
    }
    if (!this.add('[')) return false;
    for (let i = 0; i < n; i++) {
      if (i > 0 && !this.add(',')) return false;
      const c = arr[i];
      const ok = c === undefined ? this.add('null') : this.value(c, depth + 1);
      if (!ok) {
        this.path.push(`[${i}]`);
        return false;
      }
    }
    return this.add(']');
  }

  /**
   * Writes a plain object with sorted keys. At the root (`root` given) the record's event type
   * replaces the object's own `event_type`, and with provenance its `audit_provenance` member is
   * ours: `root.provenance` is written after `{`, and `root.split` receives the output offset
   * where the hash member goes.
   */
  object(src: Record<string, unknown>, depth: number, root: RootMembers | undefined): boolean {
    let keys = Object.keys(src);
    this.work -= keys.length;
    if (this.work < 0) return this.fail('event_data_too_large', 'has too many members');
    if (root !== undefined) {
      keys = keys.filter(
        (k) => k !== 'event_type' && (root.provenance === undefined || k !== PROV_KEY),
      );
      keys.push('event_type');
      if (root.provenance !== undefined) keys.push(PROV_KEY);
    }
    keys.sort();
    if (!this.add('{')) return false;
    let first = true;
    for (const key of keys) {
      let ok: boolean;
      if (root !== undefined && key === 'event_type') {
        ok = this.member(first, key) && this.string(root.eventType);
      } else if (root?.provenance !== undefined && key === PROV_KEY) {
        ok = this.member(first, key) && this.add('{');
        root.split = this.out.length;
        ok = ok && this.add(root.provenance) && this.add('}');
      } else {
        const c = src[key];
        if (c === undefined) continue; // as JSON.stringify: left out of objects
        ok = this.member(first, key) && this.value(c, depth + 1);
      }
      first = false;
      if (!ok) {
        this.path.push(`.${key.length > 64 ? `${key.slice(0, 64)}…` : key}`);
        return false;
      }
    }
    return this.add('}');
  }

  member(first: boolean, key: string): boolean {
    return (first || this.add(',')) && this.string(key) && this.add(':');
  }
}

interface RootMembers {
  eventType: string;
  /** Canonical members of the provenance object after `hash` (undefined: provenance off). */
  provenance: string | undefined;
  split: number;
}

const PROV_KEY = AUDIT_EVENT_DATA_PROVENANCE_KEY;

function kindOf(v: object): string {
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name.length > 0 ? `a ${name}` : 'a non-plain object';
}

/** The canonical members of the provenance object, without `hash` (keys in sorted order). */
export function provenanceMembers(p: ProvenanceFields): string {
  let s = '';
  if (p.original_timestamp !== undefined) s += `"original_timestamp":${q(p.original_timestamp)},`;
  s += `"prev_hash":${p.prev_hash === null ? 'null' : q(p.prev_hash)},"producer_id":${q(p.producer_id)}`;
  const r = p.recovered;
  if (r !== undefined) {
    s += `,"recovered":{"reserved_through":${r.reserved_through},"session_id":${q(r.session_id)},"spooled_through":${r.spooled_through}}`;
  }
  return `${s},"seq":${p.seq},"session_id":${q(p.session_id)}`;
}

// JSON.stringify escapes only NUL and the other control characters and lone surrogates as \u:
// a \u escape (not itself escaped) of NUL or of a surrogate marks a string DataStorage cannot store.
const ESCAPES = /\\(?:\\|u(?:0000|d[89a-f][0-9a-f]{2}))/g;

function hasUnstorableEscape(json: string): boolean {
  if (json.indexOf('\\u') < 0) return false;
  ESCAPES.lastIndex = 0;
  for (let m = ESCAPES.exec(json); m !== null; m = ESCAPES.exec(json)) {
    if (m[0].length > 2) return true;
  }
  return false;
}

function violationAt(w: DataWriter): ContractViolation {
  const f = w.failure ?? {
    field: 'event_data',
    reason: 'invalid_type' as const,
    message: 'is not a JSON object',
  };
  let path = 'event_data';
  for (let i = w.path.length - 1; i >= 0; i--) path += w.path[i];
  return { ...f, message: `${path} ${f.message}` };
}

/**
 * Encodes one event. `prov` undefined: no provenance (the source's own `audit_provenance`, if
 * any, travels as data). Never throws.
 */
export function encodeEvent(
  ev: Envelope,
  data: Record<string, unknown>,
  prov: ProvenanceFields | undefined,
): Encoded {
  const root: RootMembers = {
    eventType: ev.event_type as string,
    provenance: prov === undefined ? undefined : provenanceMembers(prov),
    split: -1,
  };
  const w = new DataWriter(
    MAX_EVENT_DATA_BYTES - (prov === undefined ? 0 : HASH_MEMBER_CHARS),
    prov !== undefined,
  );
  let ok: boolean;
  try {
    ok = w.object(data, 1, root);
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
  if (!ok) return { ok: false, violation: violationAt(w) };
  const dataJson = w.out;
  if (hasUnstorableEscape(dataJson)) {
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'unstorable_string',
        message: 'event_data contains a NUL character or an unpaired surrogate',
      },
    };
  }

  // The envelope, members in sorted order; actor_id and actor_type are always present.
  const a = `{"actor_id":${q(ev.actor_id)},`;
  const ip = ev.actor_ip === undefined ? '' : `"actor_ip":${q(ev.actor_ip)},`;
  let b = `"actor_type":${q(ev.actor_type)}`;
  if (ev.cluster_id !== undefined) b += `,"cluster_id":${q(ev.cluster_id)}`;
  b += `,"correlation_id":${q(ev.correlation_id)}`;
  if (ev.duration_ms !== undefined) b += `,"duration_ms":${ev.duration_ms}`;
  if (ev.error_code !== undefined) b += `,"error_code":${q(ev.error_code)}`;
  if (ev.error_message !== undefined) b += `,"error_message":${q(ev.error_message)}`;
  b += `,"event_action":${q(ev.event_action)},"event_category":${q(ev.event_category)},"event_data":`;
  let c = `,"event_outcome":${q(ev.event_outcome)},"event_timestamp":${q(ev.event_timestamp)},"event_type":${q(ev.event_type)},"is_sensitive":${ev.is_sensitive === true}`;
  if (ev.namespace !== undefined) c += `,"namespace":${q(ev.namespace)}`;
  if (ev.parent_event_id !== undefined) c += `,"parent_event_id":${q(ev.parent_event_id)}`;
  c += `,"resource_id":${q(ev.resource_id)},"resource_type":${q(ev.resource_type)},"retention_days":${ev.retention_days}`;
  if (ev.severity !== undefined) c += `,"severity":${q(ev.severity)}`;
  c += `,"version":${q(ev.version)}}`;

  let json: string;
  let hash: string | undefined;
  if (prov === undefined) {
    json = a + ip + b + dataJson + c;
  } else {
    hash = oneShotHash('sha256', a + b + dataJson + c, 'hex');
    const stamped = `${dataJson.slice(0, root.split)}"hash":"${hash}",${dataJson.slice(root.split)}`;
    json = a + ip + b + stamped + c;
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_EVENT_DATA_BYTES) {
    // event_data with its stamp, in UTF-8 bytes (the limit is checked after stamping).
    const start = a.length + ip.length + b.length;
    const dataBytes = Buffer.byteLength(json.slice(start, json.length - c.length), 'utf8');
    if (dataBytes > MAX_EVENT_DATA_BYTES) {
      return {
        ok: false,
        violation: {
          field: 'event_data',
          reason: 'event_data_too_large',
          message: `event_data is ${dataBytes} bytes with its provenance stamp, over the limit of ${MAX_EVENT_DATA_BYTES}`,
        },
      };
    }
  }
  return { ok: true, json, bytes, hash };
}

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

/**
 * The violation encodeEvent reports when an envelope string holds a NUL or an unpaired surrogate
 * (mapped without the storability check): map the record again with it to learn which field.
 */
export const ENVELOPE_UNSTORABLE: ContractViolation = Object.freeze({
  field: '',
  reason: 'unstorable_string',
  message: 'a member of the event holds a NUL character or an unpaired surrogate',
});

const q = JSON.stringify;
const HASH_MEMBER_CHARS = '"hash":"",'.length + 64;

/** Why an event_data value cannot be encoded; thrown through the walk, caught by encodeEvent. */
class Refusal {
  readonly reason: ContractViolation['reason'];
  readonly message: string;
  /** Keys and indexes from the failing value up to the root (filled while unwinding). */
  readonly path: string[] = [];
  constructor(reason: ContractViolation['reason'], message: string) {
    this.reason = reason;
    this.message = message;
  }
}

/** The bounds of one walk. */
interface Walk {
  /** Characters the whole event_data may take. */
  max: number;
  /** Members and elements the walk may still visit. */
  work: number;
  /** The limit counts the provenance stamp. */
  stamped: boolean;
}

function tooLarge(w: Walk): never {
  const stamp = w.stamped ? ' with its provenance stamp' : '';
  throw new Refusal(
    'event_data_too_large',
    `is over the limit of ${MAX_EVENT_DATA_BYTES} bytes${stamp}`,
  );
}

/** The canonical JSON of one value of event_data (see the module comment); throws a Refusal. */
function encodeValue(v: unknown, depth: number, w: Walk): string {
  switch (typeof v) {
    case 'string':
      if (v.length > w.max) tooLarge(w);
      return q(v);
    case 'number':
      if (!Number.isFinite(v)) throw new Refusal('invalid_type', `is ${v}, not a JSON number`);
      return q(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      break;
    case 'bigint':
      throw new Refusal('invalid_type', 'is a BigInt, not a JSON value');
    default:
      throw new Refusal('invalid_type', `is a ${typeof v}, not a JSON value`);
  }
  if (v === null) return 'null';
  if (v instanceof Uint8Array) {
    // OTel bytes values travel as base64, as in OTLP/JSON.
    if (v.byteLength > w.max) tooLarge(w);
    return q(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new Refusal('invalid_type', 'is an invalid Date');
    return q(v.toISOString());
  }
  if (depth > MAX_EVENT_DATA_DEPTH) {
    throw new Refusal('event_data_too_deep', `nests deeper than ${MAX_EVENT_DATA_DEPTH} levels`);
  }
  if (Array.isArray(v)) {
    w.work -= v.length;
    if (w.work < 0) tooLarge(w);
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      const c: unknown = v[i];
      try {
        s += i === 0 ? '' : ',';
        s += c === undefined ? 'null' : encodeValue(c, depth + 1, w);
      } catch (e) {
        if (e instanceof Refusal) e.path.push(`[${i}]`);
        throw e;
      }
      if (s.length > w.max) tooLarge(w);
    }
    return `${s}]`;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new Refusal('invalid_type', `is ${kindOf(v)}, not a JSON value`);
  }
  const src = v as Record<string, unknown>;
  const keys = sortedKeys(src, w);
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const c = src[k];
    if (c === undefined) continue; // as JSON.stringify: left out of objects
    try {
      s += s.length === 1 ? q(k) : `,${q(k)}`;
      s += `:${encodeValue(c, depth + 1, w)}`;
    } catch (e) {
      if (e instanceof Refusal) e.path.push(`.${k.length > 64 ? `${k.slice(0, 64)}…` : k}`);
      throw e;
    }
    if (s.length > w.max) tooLarge(w);
  }
  return `${s}}`;
}

/** Own enumerable keys in UTF-16 order (the walk's work counted). */
function sortedKeys(src: Record<string, unknown>, w: Walk): string[] {
  const keys = Object.keys(src);
  w.work -= keys.length;
  if (w.work < 0) tooLarge(w);
  for (let i = 1; i < keys.length; i++) {
    if (!((keys[i - 1] as string) < (keys[i] as string))) return keys.sort();
  }
  return keys;
}

/**
 * The root object: the record's event type replaces the object's own `event_type`, and with
 * provenance its `audit_provenance` member is ours (`members` written after `{`). Returns the JSON
 * and the offset where the hash member goes (-1 without provenance).
 */
function encodeRoot(
  src: Record<string, unknown>,
  eventType: string,
  members: string | undefined,
  w: Walk,
): { json: string; split: number } {
  const own = sortedKeys(src, w);
  const keys: string[] = [];
  for (const k of own)
    if (k !== 'event_type' && (members === undefined || k !== PROV_KEY)) keys.push(k);
  keys.push('event_type');
  if (members !== undefined) keys.push(PROV_KEY);
  keys.sort();
  let s = '{';
  let split = -1;
  for (const k of keys) {
    const sep = s.length === 1 ? '' : ',';
    if (k === 'event_type') s += `${sep}"event_type":${q(eventType)}`;
    else if (members !== undefined && k === PROV_KEY) {
      s += `${sep}${PROV_MEMBER}{`;
      split = s.length;
      s += `${members}}`;
    } else {
      const c = src[k];
      if (c === undefined) continue;
      try {
        s += `${sep}${q(k)}:${encodeValue(c, 2, w)}`;
      } catch (e) {
        if (e instanceof Refusal) e.path.push(`.${k.length > 64 ? `${k.slice(0, 64)}…` : k}`);
        throw e;
      }
    }
    if (s.length > w.max) tooLarge(w);
  }
  return { json: `${s}}`, split };
}

const PROV_KEY = AUDIT_EVENT_DATA_PROVENANCE_KEY;
const PROV_MEMBER = `${q(PROV_KEY)}:`;

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

function violationOf(r: Refusal): ContractViolation {
  let path = 'event_data';
  for (let i = r.path.length - 1; i >= 0; i--) path += r.path[i];
  return { field: 'event_data', reason: r.reason, message: `${path} ${r.message}` };
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
  const walk: Walk = {
    max: MAX_EVENT_DATA_BYTES - (prov === undefined ? 0 : HASH_MEMBER_CHARS),
    work: MAX_EVENT_DATA_BYTES,
    stamped: prov !== undefined,
  };
  let root: { json: string; split: number };
  try {
    root = encodeRoot(
      data,
      ev.event_type as string,
      prov === undefined ? undefined : provenanceMembers(prov),
      walk,
    );
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, violation: violationOf(err) };
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'invalid_type',
        message: `event_data cannot be read: ${errorText(err, 200)}`,
      },
    };
  }
  const dataJson = root.json;
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
  if (
    hasUnstorableEscape(a) ||
    hasUnstorableEscape(ip) ||
    hasUnstorableEscape(b) ||
    hasUnstorableEscape(c)
  ) {
    return { ok: false, violation: ENVELOPE_UNSTORABLE };
  }

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

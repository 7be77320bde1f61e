// SPDX-License-Identifier: Apache-2.0
/*
 * The serialise-once encoder: a mapped event (envelope + event_data source) and its provenance
 * → the canonical JSON (RFC 8785) of the AuditEventRequest, with the provenance hash computed
 * over the same bytes.
 *
 * Invariants:
 * - With provenance the output is `canonicalize(request)` of @kubernaut/audit-provenance:
 *   members sorted by UTF-16 code units, ECMAScript number form, JSON.stringify string escaping,
 *   no whitespace. Without provenance (nothing is hashed) only the envelope is canonical:
 *   event_data that is plain JSON data is written by JSON.stringify as it is, in its own member
 *   order (no copy), after a walk that reads it and copies nothing has found it within the same
 *   bounds; anything else goes through the copy below. A getter that answers differently on the
 *   second read gains nothing: what only the output shows (NUL, unpaired surrogates, the size
 *   limit) is checked on the output, and a throw falls back to the copy.
 * - With provenance, `hash` = SHA-256 hex of the output without its `actor_ip` member and without
 *   the `hash` member itself, which is exactly `canonicalize(hashView(request))` because the
 *   envelope is in hash-view form (see map.ts). `computeProvenanceHash(JSON.parse(json))` is
 *   therefore `hash` (property-tested); the hash member is spliced in after hashing.
 * - The event is serialised once, by one JSON.stringify of a canonical copy: the envelope in
 *   sorted member order and a copy of `event_data` whose objects have their keys inserted in
 *   sorted order (an object with array-index keys, which JavaScript orders first, is written by
 *   a walk and put in place afterwards). Placeholders — random per process — mark where the
 *   provenance object goes. The copy is bounded: nesting deeper than MAX_EVENT_DATA_DEPTH (so
 *   cycles end), more than MAX_EVENT_DATA_BYTES characters (so huge strings and exploding shared
 *   references end) and more members than that (walk budget) stop it with a violation. A key
 *   `__proto__` is data: keys are the object's own enumerable keys, copied as own members.
 * - Values JSON cannot carry (BigInt, functions, symbols, non-finite numbers, class instances)
 *   and strings DataStorage cannot store (NUL, unpaired surrogates, in keys too) are violations.
 *   Uint8Array travels as base64 and Date as an ISO string (as before).
 * - The limit of 256 KiB applies to `event_data` *with* its provenance stamp, in UTF-8 bytes.
 * - Never throws.
 */
import { hash as oneShotHash, randomUUID } from 'node:crypto';
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
  /** The caller's `audit.record.id` (OTEP 0267), when the record carried one. */
  record_id?: string | undefined;
}

export type Encoded =
  | {
      ok: true;
      json: string;
      bytes: number;
      hash: string | undefined;
      /** With provenance: the index of the provenance object's closing brace in `json`. */
      provEnd?: number;
    }
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
  /** A lower bound of the characters written so far. */
  chars: number;
  /** JSON of subtrees the walk wrote (objects with array-index keys), by placeholder number. */
  raws: string[];
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
  // Insertion sort by UTF-16 code units: objects of event_data have few keys, where it beats
  // Array.prototype.sort (and is free when the keys already come in order).
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    if ((keys[j] as string) < k) continue;
    if (keys.length > 32) return keys.sort();
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** Sets a member of a copy. A key `__proto__` is data: an own property, never the prototype. */
function putMember(out: Record<string, unknown>, k: string, value: unknown): void {
  if (k === '__proto__') {
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  } else out[k] = value;
}

/** Thrown by copyCanonical for an object JSON.stringify cannot write in canonical order. */
const NOT_COPYABLE: unique symbol = Symbol('not copyable');

/** An own key that JavaScript orders first (an array index): a copy cannot keep key order. */
function isIndexKey(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 48 && c <= 57 && /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295;
}

/**
 * A copy of an event_data value that JSON.stringify writes in canonical form (keys inserted in
 * sorted order; bytes as base64, dates as ISO strings), checked and bounded like encodeValue;
 * throws a Refusal, or NOT_COPYABLE for an object with array-index keys (encodeValue writes it).
 * JSON.stringify of the copy is one flat string: no rope of small pieces to flatten later.
 */
function copyCanonical(v: unknown, depth: number, w: Walk): unknown {
  const chars = w.chars;
  const work = w.work;
  try {
    return copyValue(v, depth, w);
  } catch (e) {
    if (e !== NOT_COPYABLE) throw e;
    // Written by the walk, put in place of a placeholder after JSON.stringify.
    w.chars = chars;
    w.work = work;
    const raw = encodeValue(v, depth, w);
    w.chars += raw.length;
    w.raws.push(raw);
    return `${RAW_PLACEHOLDER}${w.raws.length - 1}`;
  }
}

function copyValue(v: unknown, depth: number, w: Walk): unknown {
  switch (typeof v) {
    case 'string':
      w.chars += v.length + 2;
      if (w.chars > w.max) tooLarge(w);
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw new Refusal('invalid_type', `is ${v}, not a JSON number`);
      w.chars += 1;
      return v;
    case 'boolean':
      w.chars += 4;
      return v;
    case 'object':
      break;
    case 'bigint':
      throw new Refusal('invalid_type', 'is a BigInt, not a JSON value');
    default:
      throw new Refusal('invalid_type', `is a ${typeof v}, not a JSON value`);
  }
  if (v === null) return null;
  if (v instanceof Uint8Array) {
    if (v.byteLength > w.max) tooLarge(w);
    return copyCanonical(
      Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'),
      depth,
      w,
    );
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new Refusal('invalid_type', 'is an invalid Date');
    return copyValue(v.toISOString(), depth, w);
  }
  if (depth > MAX_EVENT_DATA_DEPTH) {
    throw new Refusal('event_data_too_deep', `nests deeper than ${MAX_EVENT_DATA_DEPTH} levels`);
  }
  w.chars += 2;
  if (Array.isArray(v)) {
    w.work -= v.length;
    if (w.work < 0) tooLarge(w);
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const c: unknown = v[i];
      try {
        out[i] = c === undefined ? null : copyCanonical(c, depth + 1, w);
      } catch (e) {
        if (e instanceof Refusal) e.path.push(`[${i}]`);
        throw e;
      }
    }
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new Refusal('invalid_type', `is ${kindOf(v)}, not a JSON value`);
  }
  const src = v as Record<string, unknown>;
  const keys = sortedKeys(src, w);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (isIndexKey(k)) throw NOT_COPYABLE;
    const c = src[k];
    if (c === undefined) continue;
    w.chars += k.length + 4;
    let copied: unknown;
    try {
      copied = copyCanonical(c, depth + 1, w);
    } catch (e) {
      if (e instanceof Refusal) e.path.push(`.${k.length > 64 ? `${k.slice(0, 64)}…` : k}`);
      throw e;
    }
    putMember(out, k, copied);
  }
  return out;
}

const PROV_KEY = AUDIT_EVENT_DATA_PROVENANCE_KEY;
/**
 * Per-process placeholders: where the provenance object goes, and where a walked subtree goes.
 * Each starts with U+0001, which JSON.stringify writes as `\u0001`: the search for it in the
 * output starts at a backslash, rare in JSON, instead of a quote, found at every member (a
 * search from a quote costs more than the SHA-256 of the event).
 */
const TOKEN = randomUUID();
const PROV_PLACEHOLDER = `\u0001kubernaut-audit-provenance-${TOKEN}`;
const PROV_PLACEHOLDER_JSON = q(PROV_PLACEHOLDER);
/** The placeholder's JSON without its opening quote (found at index + 1). */
const PROV_NEEDLE = PROV_PLACEHOLDER_JSON.slice(1);
const RAW_PLACEHOLDER = `\u0001kubernaut-audit-raw-${TOKEN}-`;

function kindOf(v: object): string {
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name.length > 0 ? `a ${name}` : 'a non-plain object';
}

/** The JSON of the producer and session ids: the same for every record of a session. */
let idsOf: { producer: string; session: string; producerJson: string; sessionJson: string } = {
  producer: '',
  session: '',
  producerJson: '""',
  sessionJson: '""',
};

/** The canonical members of the provenance object, without `hash` (keys in sorted order). */
export function provenanceMembers(p: ProvenanceFields): string {
  let ids = idsOf;
  if (ids.producer !== p.producer_id || ids.session !== p.session_id) {
    ids = {
      producer: p.producer_id,
      session: p.session_id,
      producerJson: q(p.producer_id),
      sessionJson: q(p.session_id),
    };
    idsOf = ids;
  }
  let s = '';
  if (p.original_timestamp !== undefined) s += `"original_timestamp":${q(p.original_timestamp)},`;
  s += `"prev_hash":${p.prev_hash === null ? 'null' : q(p.prev_hash)},"producer_id":${ids.producerJson}`;
  if (p.record_id !== undefined) s += `,"record_id":${q(p.record_id)}`;
  const r = p.recovered;
  if (r !== undefined) {
    s += `,"recovered":{"reserved_through":${r.reserved_through},"session_id":${q(r.session_id)},"spooled_through":${r.spooled_through}}`;
  }
  return `${s},"seq":${p.seq},"session_id":${ids.sessionJson}`;
}

// JSON.stringify escapes only NUL and the other control characters and lone surrogates as \u
// (lowercase hex): a \u escape (not itself escaped) of NUL or of a surrogate marks a string
// DataStorage cannot store. Found by jumping from backslash to backslash (rare in JSON).
function hasUnstorableEscape(json: string): boolean {
  let i = json.indexOf('\\');
  while (i >= 0) {
    const c = json.charCodeAt(i + 1);
    if (c === 0x75 /* u */) {
      const h0 = json.charCodeAt(i + 2);
      if (h0 === 0x30 /* 0 */ && json.startsWith('000', i + 3)) return true;
      if (h0 === 0x64 /* d */) {
        const h1 = json.charCodeAt(i + 3);
        // d8–df: a surrogate JSON.stringify left alone (lone)
        if ((h1 >= 0x38 && h1 <= 0x39) || (h1 >= 0x61 && h1 <= 0x66)) return true;
      }
    }
    // Skip the escaped character (an escaped backslash is not the start of another escape).
    i = json.indexOf('\\', i + 2);
  }
  return false;
}

function violationOf(r: Refusal): ContractViolation {
  let path = 'event_data';
  for (let i = r.path.length - 1; i >= 0; i--) path += r.path[i];
  return { field: 'event_data', reason: r.reason, message: `${path} ${r.message}` };
}

/** The copy of the root object: the record's event type, and with provenance our placeholder. */
function copyRoot(
  src: Record<string, unknown>,
  eventType: string,
  stamped: boolean,
  w: Walk,
): Record<string, unknown> {
  const own = sortedKeys(src, w);
  const out: Record<string, unknown> = {};
  let typeDone = false;
  let provDone = !stamped;
  w.chars += eventType.length + 15;
  // Merge the two members we set into the sorted own keys (no second sort).
  for (let i = 0; i < own.length; i++) {
    const k = own[i] as string;
    if (!provDone && PROV_KEY < k) {
      out[PROV_KEY] = PROV_PLACEHOLDER;
      provDone = true;
    }
    if (!typeDone && 'event_type' < k) {
      out.event_type = eventType;
      typeDone = true;
    }
    if (k === 'event_type' || (stamped && k === PROV_KEY)) continue;
    if (isIndexKey(k)) throw NOT_COPYABLE;
    const c = src[k];
    if (c === undefined) continue;
    w.chars += k.length + 4;
    let copied: unknown;
    try {
      copied = copyCanonical(c, 2, w);
    } catch (e) {
      if (e instanceof Refusal) e.path.push(`.${k.length > 64 ? `${k.slice(0, 64)}…` : k}`);
      throw e;
    }
    putMember(out, k, copied);
    if (w.chars > w.max) tooLarge(w);
  }
  if (!provDone) out[PROV_KEY] = PROV_PLACEHOLDER;
  if (!typeDone) out.event_type = eventType;
  return out;
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
  const p = prepareEvent(ev, data, prov !== undefined);
  return p.ok ? stampPrepared(p, prov) : p;
}

/**
 * An event encoded up to its provenance: the canonical JSON with a placeholder where the stamp
 * goes (when `stamped`), checked for storability. `ipLength`: the JSON length of `actor_ip`
 * (the hash view leaves it out). Plain data: it can cross to another thread.
 */
export type Prepared =
  | {
      ok: true;
      json: string;
      stamped: boolean;
      ipLength: number | undefined;
      /** Where the placeholder's JSON starts, and its length (placeholders differ per thread). */
      provAt: number;
      provLength: number;
    }
  | { ok: false; violation: ContractViolation };

/** The first half of encodeEvent: everything but the stamp. Never throws. */
export function prepareEvent(
  ev: Envelope,
  data: Record<string, unknown>,
  stamped: boolean,
): Prepared {
  const w: Walk = {
    max: MAX_EVENT_DATA_BYTES - (stamped ? HASH_MEMBER_CHARS : 0),
    work: MAX_EVENT_DATA_BYTES,
    stamped,
    chars: 0,
    raws: [],
  };
  if (!stamped) {
    const plain = plainRequestJson(ev, data);
    if (plain !== undefined) return storable(plain, ev, false);
  }
  let copy: Record<string, unknown>;
  try {
    copy = copyRoot(data, ev.event_type as string, stamped, w);
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, violation: violationOf(err) };
    if (err === NOT_COPYABLE) {
      // A root with array-index keys: rare; the walk writes it, members in canonical order.
      return prepareWalked(ev, data, stamped);
    }
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'invalid_type',
        message: `event_data cannot be read: ${errorText(err, 200)}`,
      },
    };
  }
  // One JSON.stringify of the whole request, members in sorted order (DataStorage's defaults
  // written out by the mapping; optional members left out when undefined).
  let json = requestJson(ev, copy);
  if (w.raws.length > 0) json = putRaws(json, w.raws);
  return storable(json, ev, stamped);
}

/**
 * An unstamped request (nothing is hashed) whose event_data is plain JSON data, written by
 * JSON.stringify as it is: its members in their own order, the envelope canonical. Undefined
 * when event_data needs the copy: a value to convert (bytes, dates) or to refuse (the copy says
 * why and where), an event_type of its own that differs from the record's, a `toJSON` member
 * JSON.stringify would call, a shape past the copy's bounds. What only the output shows (NUL,
 * unpaired surrogates, the byte limit) is checked on it, as for the copy's output.
 */
function plainRequestJson(ev: Envelope, data: Record<string, unknown>): string | undefined {
  const type = ev.event_type as string;
  let own: boolean;
  try {
    // A data member, read once: a getter could answer differently to JSON.stringify.
    const d = Object.getOwnPropertyDescriptor(data, 'event_type');
    own = d !== undefined;
    if (d !== undefined && (!('value' in d) || d.value !== type)) return undefined;
    const w: Walk = {
      max: MAX_EVENT_DATA_BYTES,
      work: MAX_EVENT_DATA_BYTES,
      stamped: false,
      chars: 0,
      raws: [],
    };
    if (!isPlainData(data, 1, w)) return undefined;
  } catch {
    return undefined; // a getter threw: the copy reports it
  }
  let dataJson: string;
  try {
    dataJson = JSON.stringify(data);
  } catch {
    return undefined; // changed under us (a getter): the copy decides
  }
  if (typeof dataJson !== 'string' || dataJson.charCodeAt(0) !== 0x7b /* { */) return undefined;
  if (!own) {
    dataJson = `{"event_type":${q(type)}${dataJson.length > 2 ? ',' : ''}${dataJson.slice(1)}`;
  }
  // Inside a JSON string a quote is escaped: the member found is the envelope's own.
  const env = requestJson(ev, 0);
  const member = env.indexOf(',"event_data":0');
  if (member < 0) return undefined;
  const at = member + 14;
  return `${env.slice(0, at)}${dataJson}${env.slice(at + 1)}`;
}

/**
 * Whether a value is data JSON.stringify writes as it is, within the copy's bounds: strings,
 * finite numbers, booleans, null, and arrays and plain objects of them (no `toJSON` of their
 * own). Reads each member once; copies nothing. Getters may throw (the caller catches).
 */
function isPlainData(v: unknown, depth: number, w: Walk): boolean {
  switch (typeof v) {
    case 'string':
      w.chars += v.length + 2;
      return w.chars <= w.max;
    case 'number':
      return Number.isFinite(v);
    case 'boolean':
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (v === null) return true;
  if (depth > MAX_EVENT_DATA_DEPTH) return false;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    w.work -= v.length;
    if (w.work < 0) return false;
    for (let i = 0; i < v.length; i++) if (!isPlainData(v[i], depth + 1, w)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  const o = v as Record<string, unknown>;
  for (const k in o) {
    if (--w.work < 0) return false;
    w.chars += k.length + 4;
    const c = o[k];
    if (k === 'toJSON' && typeof c === 'function') return false;
    if (!isPlainData(c, depth + 1, w)) return false;
  }
  return w.chars <= w.max;
}

/** Replaces the placeholders of walked subtrees with their JSON. */
function putRaws(json: string, raws: readonly string[]): string {
  let out = json;
  for (let i = 0; i < raws.length; i++)
    out = out.replace(q(`${RAW_PLACEHOLDER}${i}`), () => raws[i] as string);
  return out;
}

/** Storability of the canonical JSON with the provenance placeholder. */
function storable(json: string, ev: Envelope, stamped: boolean): Prepared {
  if (hasUnstorableEscape(json)) {
    // Which part: a member of the envelope, or event_data (the region up to the envelope's
    // event_outcome, the last occurrence: nested data may hold the same text).
    const dataStart = json.indexOf(',"event_data":');
    const dataEnd = json.lastIndexOf(',"event_outcome":');
    const inEnvelope =
      hasUnstorableEscape(json.slice(0, dataStart)) || hasUnstorableEscape(json.slice(dataEnd));
    if (inEnvelope) return { ok: false, violation: ENVELOPE_UNSTORABLE };
    return {
      ok: false,
      violation: {
        field: 'event_data',
        reason: 'unstorable_string',
        message: 'event_data contains a NUL character or an unpaired surrogate',
      },
    };
  }
  return {
    ok: true,
    json,
    stamped,
    ipLength: ev.actor_ip === undefined ? undefined : q(ev.actor_ip).length,
    provAt: stamped ? json.indexOf(PROV_NEEDLE) - 1 : -1,
    provLength: PROV_PLACEHOLDER_JSON.length,
  };
}

/**
 * The second half of encodeEvent: the provenance object (hashed without `actor_ip` and without
 * `hash`) put in place of the placeholder, the byte size and its limit. `prov` must be given
 * exactly when the event was prepared `stamped`. Never throws.
 */
export function stampPrepared(
  p: Extract<Prepared, { ok: true }>,
  prov: ProvenanceFields | undefined,
): Encoded {
  const json = p.json;
  let out = json;
  let hash: string | undefined;
  let provEnd: number | undefined;
  if (prov !== undefined && p.stamped) {
    const at = p.provAt;
    const before = json.slice(0, at);
    const after = json.slice(at + p.provLength);
    const members = provenanceMembers(prov);
    // The hash view leaves actor_ip out: it is the member right after actor_id.
    let hashed = before;
    if (p.ipLength !== undefined) {
      const ipAt = json.indexOf(',"actor_ip":');
      const ipEnd = ipAt + 12 + p.ipLength;
      hashed = before.slice(0, ipAt) + before.slice(ipEnd);
    }
    hash = oneShotHash('sha256', `${hashed}{${members}}${after}`, 'hex');
    out = `${before}{"hash":"${hash}",${members}}${after}`;
    provEnd = before.length + 1 + HASH_MEMBER_CHARS + members.length;
  }
  const bytes = Buffer.byteLength(out, 'utf8');
  if (bytes > MAX_EVENT_DATA_BYTES) {
    // event_data with its stamp, in UTF-8 bytes (the limit is checked after stamping).
    const start = out.indexOf(',"event_data":') + 14;
    const end = out.lastIndexOf(',"event_outcome":');
    const dataBytes = Buffer.byteLength(out.slice(start, end), 'utf8');
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
  return provEnd === undefined
    ? { ok: true, json: out, bytes, hash }
    : { ok: true, json: out, bytes, hash, provEnd };
}

/** What stampPreparedInto wrote. */
export interface StampedBytes {
  /** UTF-8 bytes of the stamped event at the offset given. */
  bytes: number;
  hash: string | undefined;
  /** As Encoded's: the index of the provenance object's closing brace in the event's JSON. */
  provEnd?: number | undefined;
}

/**
 * Copies `buf[start, end)` to `buf[target…]` (overlap allowed) and returns the bytes moved:
 * TypedArray copyWithin, a memmove without Buffer.copy's argument checks (cheaper per call, and
 * stampPreparedInto moves bytes several times per record).
 */
function moveWithin(buf: Buffer, target: number, start: number, end: number): number {
  buf.copyWithin(target, start, end);
  return end - start;
}

/** Room stampPreparedInto may use past its offset for `p` (the scratch for the hashed form). */
export function stampRoom(p: Extract<Prepared, { ok: true }>): number {
  return 2 * p.json.length + STAMP_ROOM_BYTES;
}

/** Room for the provenance members (twice: hashed and final form) beyond two copies of the JSON. */
const STAMP_ROOM_BYTES = 4096;

/**
 * stampPrepared's result written as UTF-8 into `buf` at `at`, with no event-sized string on the
 * way: the prepared JSON is written once, the hashed form (without `actor_ip`, the provenance
 * members in place of the placeholder) is assembled from its bytes right after it and hashed
 * there, then the final form is put in place over the prepared bytes. Same bytes, same hash as
 * stampPrepared (property-tested). Only for JSON whose bytes are its characters (ASCII, nearly
 * every audit event): for anything else, an event over the size limit once stamped, or too
 * little room (`stampRoom`), it writes nothing useful and returns undefined, and the caller takes
 * stampPrepared. With `out` the answer is written there (no object per record). Never throws.
 */
export function stampPreparedInto(
  p: Extract<Prepared, { ok: true }>,
  prov: ProvenanceFields | undefined,
  buf: Buffer,
  at: number,
  out?: StampedBytes,
): StampedBytes | undefined {
  const json = p.json;
  const n = json.length;
  if (at + stampRoom(p) > buf.length) return undefined;
  try {
    // As many UTF-8 bytes as characters: every character is ASCII (any other takes two or more).
    if (buf.write(json, at, 'utf8') !== n) return undefined;
    if (prov === undefined || !p.stamped) {
      return n > MAX_EVENT_DATA_BYTES ? undefined : stamped(out, n, undefined, undefined);
    }
    const pa = p.provAt;
    const afterAt = pa + p.provLength;
    const members = provenanceMembers(prov);
    const prov1 = `{${members}}`;
    // The prepared bytes, then the hashed form; the final form is shorter than the two. The
    // members take at most 3 UTF-8 bytes per UTF-16 unit: their byte count is what is written.
    if (at + 2 * n + 3 * prov1.length > buf.length) return undefined;
    // The hashed form, after the prepared bytes: without actor_ip (the member right after
    // actor_id), the members in place of the placeholder.
    const h = at + n;
    let w = h;
    if (p.ipLength !== undefined) {
      const ipAt = json.indexOf(',"actor_ip":');
      const ipEnd = ipAt + 12 + p.ipLength;
      w += moveWithin(buf, w, at, at + ipAt);
      w += moveWithin(buf, w, at + ipEnd, at + pa);
    } else {
      w += moveWithin(buf, w, at, at + pa);
    }
    const m = buf.write(prov1, w, 'utf8');
    w += m;
    w += moveWithin(buf, w, at + afterAt, at + n);
    const hash = oneShotHash('sha256', buf.subarray(h, w), 'hex');
    // The final form over the prepared bytes: the tail moved to its place, the stamp before it.
    const stamp = `{"hash":"${hash}",${members}}`;
    const stampBytes = m + HASH_MEMBER_CHARS;
    moveWithin(buf, at + pa + stampBytes, at + afterAt, at + n);
    buf.write(stamp, at + pa, stampBytes, 'utf8');
    const bytes = n - p.provLength + stampBytes;
    if (bytes > MAX_EVENT_DATA_BYTES) return undefined;
    return stamped(out, bytes, hash, pa + stamp.length - 1);
  } catch {
    return undefined;
  }
}

/** stampPreparedInto's answer: written into `out` when given (a caller's one object), else new. */
function stamped(
  out: StampedBytes | undefined,
  bytes: number,
  hash: string | undefined,
  provEnd: number | undefined,
): StampedBytes {
  if (out === undefined) return provEnd === undefined ? { bytes, hash } : { bytes, hash, provEnd };
  out.bytes = bytes;
  out.hash = hash;
  out.provEnd = provEnd;
  return out;
}

/** The whole request by the walk (a root with array-index keys): same result, slower. */
function prepareWalked(ev: Envelope, data: Record<string, unknown>, stamped: boolean): Prepared {
  const w: Walk = {
    max: MAX_EVENT_DATA_BYTES - (stamped ? HASH_MEMBER_CHARS : 0),
    work: MAX_EVENT_DATA_BYTES,
    stamped,
    chars: 0,
    raws: [],
  };
  const root: Record<string, unknown> = {};
  for (const k of Object.keys(data)) {
    if (k !== 'event_type' && !(stamped && k === PROV_KEY)) {
      Object.defineProperty(root, k, {
        value: data[k],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  root.event_type = ev.event_type;
  if (stamped) root[PROV_KEY] = PROV_PLACEHOLDER;
  let dataJson: string;
  try {
    dataJson = encodeValue(root, 1, w);
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
  const marker = `${RAW_PLACEHOLDER}root`;
  const json = requestJson(ev, marker).replace(q(marker), () => dataJson);
  return storable(json, ev, stamped);
}

/** The request's canonical JSON: members in sorted order, optional ones left out when undefined. */
function requestJson(ev: Envelope, eventData: unknown): string {
  return JSON.stringify({
    actor_id: ev.actor_id,
    actor_ip: ev.actor_ip,
    actor_type: ev.actor_type,
    cluster_id: ev.cluster_id,
    correlation_id: ev.correlation_id,
    duration_ms: ev.duration_ms,
    error_code: ev.error_code,
    error_message: ev.error_message,
    event_action: ev.event_action,
    event_category: ev.event_category,
    event_data: eventData,
    event_outcome: ev.event_outcome,
    event_timestamp: ev.event_timestamp,
    event_type: ev.event_type,
    is_sensitive: ev.is_sensitive === true,
    namespace: ev.namespace,
    parent_event_id: ev.parent_event_id,
    resource_id: ev.resource_id,
    resource_type: ev.resource_type,
    retention_days: ev.retention_days,
    severity: ev.severity,
    version: ev.version,
  });
}

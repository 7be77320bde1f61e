// SPDX-License-Identifier: Apache-2.0
/*
 * The per-correlation hash chain (pure). Each stored event carries
 *   event_hash = hex(SHA-256(previous_event_hash || canonical(event)))            (sha256-unkeyed)
 *   event_hash = hex(HMAC-SHA256(key, previous_event_hash || canonical(event)))   (hmac-sha256)
 * where previous_event_hash is the event_hash of the event before it in the chain of its
 * correlation_id ('' for the first) and canonical(event) is the JSON document of the hashed
 * fields with keys sorted at every level. The same function runs at write time (over the
 * prepared row) and in verify-chain (over the row read back), so every hashed field must read
 * back exactly as written: timestamps are canonical microsecond strings, actor_ip is the
 * database's own text form, and event_data is compared through its canonical JSON (the one
 * writer of @kubernaut/audit-provenance).
 *
 * Unkeyed, anyone with write access to the database can recompute the hashes after altering a
 * row. With a chain key (kept outside the database) a forged row cannot be given a valid hash.
 */
import { createHash, hash } from 'node:crypto';

/** The hash algorithms of the chain, as stored in `hash_algorithm` (upstream's names). */
export const HASH_SHA256_UNKEYED = 'sha256-unkeyed';
export const HASH_HMAC_SHA256 = 'hmac-sha256';
export type HashAlgorithm = typeof HASH_SHA256_UNKEYED | typeof HASH_HMAC_SHA256;

/** The stored fields that the chain protects. */
export interface HashedEventFields {
  event_id: string;
  version: string;
  event_timestamp: string;
  event_type: string;
  event_category: string;
  event_action: string;
  event_outcome: string;
  correlation_id: string;
  actor_type: string;
  actor_id: string;
  actor_ip: string | null;
  resource_type: string;
  resource_id: string;
  parent_event_id: string | null;
  namespace: string | null;
  cluster_id: string | null;
  severity: string | null;
  duration_ms: number | null;
  error_code: string | null;
  error_message: string | null;
  retention_days: number;
  is_sensitive: boolean;
}

// Strings that JSON writes as is between quotes (no quote, backslash, control character or
// surrogate): the common case, encoded without calling JSON.stringify.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is excluded.
const PLAIN_RE = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** True when JSON writes `v` as it is between quotes (short strings: a scan, no regex call). */
export function isPlainJsonString(v: string): boolean {
  const n = v.length;
  if (n > 64) return PLAIN_RE.test(v);
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/** A field's value as JSON writes it. */
const s = (v: string | number | boolean | null): string =>
  typeof v === 'string' && isPlainJsonString(v) ? `"${v}"` : JSON.stringify(v);

/** A string field known to need no JSON escaping, or null, as JSON writes it. */
const q = (v: string | null): string => (v === null ? 'null' : `"${v}"`);

/**
 * The canonical document of an event: hashed fields in sorted key order. `plainStrings`: the
 * caller knows that no string field holds a character JSON escapes (a quote, a backslash, a
 * control character, a surrogate), e.g. fields parsed from JSON text without a backslash and
 * values the server wrote itself; they are then written without being scanned.
 */
export function canonicalEventDocument(
  e: HashedEventFields,
  eventDataJson: string,
  plainStrings = false,
): string {
  if (plainStrings) {
    return (
      `{"actor_id":"${e.actor_id}","actor_ip":${q(e.actor_ip)},"actor_type":"${e.actor_type}"` +
      `,"cluster_id":${q(e.cluster_id)},"correlation_id":"${e.correlation_id}"` +
      `,"duration_ms":${e.duration_ms === null ? 'null' : s(e.duration_ms)},"error_code":${q(e.error_code)}` +
      `,"error_message":${q(e.error_message)},"event_action":"${e.event_action}"` +
      `,"event_category":"${e.event_category}","event_data":${eventDataJson}` +
      `,"event_id":"${e.event_id}","event_outcome":"${e.event_outcome}"` +
      `,"event_timestamp":"${e.event_timestamp}","event_type":"${e.event_type}"` +
      `,"is_sensitive":${e.is_sensitive ? 'true' : 'false'},"namespace":${q(e.namespace)}` +
      `,"parent_event_id":${q(e.parent_event_id)},"resource_id":"${e.resource_id}"` +
      `,"resource_type":"${e.resource_type}","retention_days":${s(e.retention_days)}` +
      `,"severity":${q(e.severity)},"version":"${e.version}"}`
    );
  }
  return (
    `{"actor_id":${s(e.actor_id)},"actor_ip":${s(e.actor_ip)},"actor_type":${s(e.actor_type)}` +
    `,"cluster_id":${s(e.cluster_id)},"correlation_id":${s(e.correlation_id)}` +
    `,"duration_ms":${e.duration_ms === null ? 'null' : s(e.duration_ms)},"error_code":${s(e.error_code)}` +
    `,"error_message":${s(e.error_message)},"event_action":${s(e.event_action)}` +
    `,"event_category":${s(e.event_category)},"event_data":${eventDataJson}` +
    // event_id (a uuid), event_timestamp (canonical form) and is_sensitive need no escaping.
    `,"event_id":"${e.event_id}","event_outcome":${s(e.event_outcome)}` +
    `,"event_timestamp":"${e.event_timestamp}","event_type":${s(e.event_type)}` +
    `,"is_sensitive":${e.is_sensitive ? 'true' : 'false'},"namespace":${s(e.namespace)}` +
    `,"parent_event_id":${s(e.parent_event_id)},"resource_id":${s(e.resource_id)}` +
    `,"resource_type":${s(e.resource_type)},"retention_days":${s(e.retention_days)}` +
    `,"severity":${s(e.severity)},"version":${s(e.version)}}`
  );
}

const SHA256_BLOCK = 64;
const HMAC_BUFFER_KEPT = 256 * 1024;

/**
 * HMAC-SHA256 (RFC 2104) of UTF-8 text under one key, computed with two one-shot SHA-256 calls
 * over a reused buffer: H((K ^ opad) || H((K ^ ipad) || text)). The same bytes as
 * createHmac('sha256', key), which costs an order of magnitude more per call (a new HMAC
 * context and key object each time).
 */
class HmacSha256 {
  /** K ^ ipad, followed by room for the text. */
  #inner: Buffer;
  /** K ^ opad, followed by the inner digest. */
  readonly #outer = Buffer.alloc(SHA256_BLOCK + 32);
  readonly #ipad = Buffer.alloc(SHA256_BLOCK);

  constructor(key: Buffer) {
    const k = Buffer.alloc(SHA256_BLOCK);
    (key.length > SHA256_BLOCK ? createHash('sha256').update(key).digest() : key).copy(k);
    for (let i = 0; i < SHA256_BLOCK; i++) {
      this.#ipad[i] = k[i]! ^ 0x36;
      this.#outer[i] = k[i]! ^ 0x5c;
    }
    this.#inner = Buffer.allocUnsafe(SHA256_BLOCK + 4096);
    this.#ipad.copy(this.#inner);
  }

  hex(text: string): string {
    // At most 3 UTF-8 bytes per UTF-16 unit; a buffer grown for a huge text is not kept.
    const need = SHA256_BLOCK + text.length * 3;
    let buf = this.#inner;
    if (buf.length < need) {
      buf = Buffer.allocUnsafe(need);
      this.#ipad.copy(buf);
      if (need <= HMAC_BUFFER_KEPT) this.#inner = buf;
    }
    const end = SHA256_BLOCK + buf.write(text, SHA256_BLOCK, 'utf8');
    const inner = hash('sha256', buf.subarray(0, end), 'binary');
    this.#outer.write(inner, SHA256_BLOCK, 'latin1');
    return hash('sha256', this.#outer, 'hex');
  }
}

// One HMAC state per key buffer (a key is never changed once given to the store).
const hmacs = new WeakMap<Buffer, HmacSha256>();

/**
 * SHA-256 (hex) of the previous hash followed by a canonical document; HMAC-SHA256 with `key`
 * when one is given.
 */
export function hashDocument(previousHash: string, document: string, key?: Buffer): string {
  return hashText(previousHash + document, key);
}

/** SHA-256 (hex) of UTF-8 text; HMAC-SHA256 with `key` when one is given. */
export function hashText(text: string, key?: Buffer): string {
  if (key === undefined) return hash('sha256', text, 'hex');
  let hmac = hmacs.get(key);
  if (hmac === undefined) {
    hmac = new HmacSha256(key);
    hmacs.set(key, hmac);
  }
  return hmac.hex(text);
}

/**
 * event_hash of an event given the previous hash of its chain ('' for the first event):
 * HMAC-SHA256 with `key` when one is given, else SHA-256.
 */
export function computeEventHash(
  previousHash: string,
  fields: HashedEventFields,
  eventDataJson: string,
  key?: Buffer,
): string {
  return hashDocument(previousHash, canonicalEventDocument(fields, eventDataJson), key);
}

/** Advisory-lock key of a correlation id: the first 8 bytes of its SHA-256, as a signed int64. */
export function correlationLockKey(correlationId: string): bigint {
  const digest = createHash('sha256').update(correlationId, 'utf8').digest();
  return digest.readBigInt64BE(0);
}

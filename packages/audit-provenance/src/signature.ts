// SPDX-License-Identifier: Apache-2.0
/*
 * Signed chain heads (DESIGN §11, issue 16): a producer signs the head of its provenance chain
 * with Ed25519 so that whoever holds the public key can tell a record the producer wrote from
 * one rewritten later with every hash recomputed.
 *
 *   head      = { producer_id, session_id, seq, hash, time, key_id }
 *   signed    = the UTF-8 bytes of canonicalize(head)                       (RFC 8785)
 *   sig       = base64 of the 64-byte Ed25519 signature of `signed` (RFC 4648 §4, padded: the
 *               one 88-character text of those bytes; any other text of them is refused, so a
 *               lenient and a strict base64 decoder agree on every head)
 *   key_id    = the first 16 hex digits of the SHA-256 of the raw 32-byte public key
 *
 * `seq` and `hash` are those of the record the head names (the last record a drain stamped);
 * `time` is when it was signed (RFC 3339, UTC). The signature travels in that record's stamp as
 * `audit_provenance.signature = { key_id, time, sig }` (left out of the provenance hash, which it
 * covers), and in the producer's digest log as one JSON line `{ ...head, sig }`.
 *
 * Pure functions over node:crypto; nothing here throws but for key parsing (loadSigningKey,
 * loadPublicKey), which the callers wrap.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { canonicalize } from './canonical-json.ts';

/** What a signature covers. */
export interface ChainHead {
  producer_id: string;
  session_id: string;
  seq: number;
  hash: string;
  /** When the head was signed (RFC 3339). */
  time: string;
  key_id: string;
}

/** A head with its signature: one line of a digest log. */
export interface SignedChainHead extends ChainHead {
  /** base64 Ed25519 signature of {@link chainHeadText}. */
  sig: string;
}

/** The signature member of a stamp (`audit_provenance.signature`). */
export interface StampSignature {
  key_id: string;
  time: string;
  sig: string;
}

/** The bytes that are signed: the canonical JSON of the six members (extra members ignored). */
export function chainHeadText(head: ChainHead): string {
  return canonicalize({
    producer_id: head.producer_id,
    session_id: head.session_id,
    seq: head.seq,
    hash: head.hash,
    time: head.time,
    key_id: head.key_id,
  });
}

/** key_id of an Ed25519 public (or private) key: 16 hex of the SHA-256 of the raw public key. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' }) as { x?: string };
  const raw = Buffer.from(jwk.x ?? '', 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/** An Ed25519 private key from PEM (PKCS#8). Throws with a reason when it is not one. */
export function loadSigningKey(pem: string | Buffer): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`not an Ed25519 key (${key.asymmetricKeyType ?? 'unknown type'})`);
  }
  return key;
}

/** An Ed25519 public key from PEM (SPKI; a private key's PEM gives its public key). Throws. */
export function loadPublicKey(pem: string | Buffer): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`not an Ed25519 key (${key.asymmetricKeyType ?? 'unknown type'})`);
  }
  return key;
}

/** base64 Ed25519 signature of the head. */
export function signChainHead(head: ChainHead, privateKey: KeyObject): string {
  return sign(null, Buffer.from(chainHeadText(head), 'utf8'), privateKey).toString('base64');
}

/** The one base64 text of 64 bytes: 85 characters, one with 2 zero padding bits, then `==`. */
const SIG_RE = /^[A-Za-z0-9+/]{85}[AQgw]==$/;

/**
 * True when `sig` is a valid Ed25519 signature of the head by `publicKey`, written in the one
 * base64 text of its 64 bytes. Never throws.
 */
export function verifyChainHead(head: ChainHead, sig: string, publicKey: KeyObject): boolean {
  try {
    if (typeof sig !== 'string' || !SIG_RE.test(sig)) return false;
    // A key of another algorithm never verifies (a 512-bit RSA key makes 64-byte signatures).
    if (publicKey.asymmetricKeyType !== 'ed25519') return false;
    const bytes = Buffer.from(sig, 'base64');
    return verify(null, Buffer.from(chainHeadText(head), 'utf8'), publicKey, bytes);
  } catch {
    return false;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The signature member of a stamp, when well formed. */
export function asStampSignature(v: unknown): StampSignature | undefined {
  if (!isObject(v)) return undefined;
  const { key_id, time, sig } = v;
  if (typeof key_id !== 'string' || typeof time !== 'string' || typeof sig !== 'string') {
    return undefined;
  }
  return { key_id, time, sig };
}

/** A digest-log line's head, when well formed. */
export function asSignedChainHead(v: unknown): SignedChainHead | undefined {
  if (!isObject(v)) return undefined;
  const { producer_id, session_id, seq, hash, time, key_id, sig } = v;
  if (
    typeof producer_id !== 'string' ||
    typeof session_id !== 'string' ||
    typeof seq !== 'number' ||
    !Number.isSafeInteger(seq) ||
    seq < 1 ||
    typeof hash !== 'string' ||
    typeof time !== 'string' ||
    typeof key_id !== 'string' ||
    typeof sig !== 'string'
  ) {
    return undefined;
  }
  return { producer_id, session_id, seq, hash, time, key_id, sig };
}

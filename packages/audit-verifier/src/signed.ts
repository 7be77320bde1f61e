// SPDX-License-Identifier: Apache-2.0
/*
 * Signed chain heads and digest logs (issue 16), per producer. Pure: the producer's records as
 * read back, the trusted public keys and the digest-log heads in; findings out.
 *
 * - A head names (producer, session, seq, hash, time, key_id) and carries an Ed25519 signature;
 *   it comes from a record's stamp (`audit_provenance.signature`, over that record's seq and
 *   hash) or from a digest log line. It verifies when a trusted key has its key_id, the head's
 *   time is not before the key's `from`, and the signature is valid.
 * - Anchors: seqs whose record hashes (recomputed from what is stored) to the hash of a verified
 *   head. From each anchor, coverage walks back along prev_hash to the previous intact record;
 *   every record reached is proven as the producer wrote it (signed coverage).
 * - Altered: a head that fails (a record's own signature no longer matches its stored seq and
 *   hash, or a verified digest head names a hash the stored record does not have) means a record
 *   in (the previous anchor, that head] was altered after it was signed — every hash recomputed
 *   or not. The resolution is one drain: the first altered record is at or after `from`.
 *   Consecutive failing heads are one range.
 * - Unsigned: records no anchor covers and no altered range holds.
 * - Truncated: the newest digest head (within the window; with keys, the newest that verifies)
 *   names a seq above the highest seq read back: the records after it were delivered (the head is written after its records reach
 *   the spool) and are missing — deleted, or not yet delivered.
 */
import type { KeyObject } from 'node:crypto';
import {
  keyIdOf,
  type Provenance,
  type SignedChainHead,
  type StampSignature,
  verifyChainHead,
} from '@kubernaut/audit-provenance';
import { parseDateTime } from '@kubernaut/datastorage-contract';

/** A public key the auditor trusts, valid for heads signed at or after `from`. */
export interface TrustedKey {
  key: KeyObject;
  /**
   * RFC 3339 date-time with an offset; heads signed earlier are refused for this key [always
   * valid]. Anything else makes `analyze` throw a TypeError naming the key.
   */
  from?: string;
  /** Where it came from (a file name), for the report. */
  name?: string;
}

/** What the signature check reads of one delivered record (its chosen copy). */
export interface SignedRecord {
  seq: number;
  event_id: string;
  prov: Provenance;
  /** The hash recomputed from what is stored; undefined when it cannot be computed. */
  computed: string | undefined;
  signature: StampSignature | undefined;
}

export interface HeadProblem {
  seq: number;
  source: 'record' | 'digest';
  event_id?: string;
  key_id: string;
  reason: string;
}

export interface AlteredRange {
  /** The first altered record is at or after this seq. */
  from: number;
  /** The last seq of the range (a failing head). */
  to: number;
  /** Event id of the first record read back in the range. */
  first_event_id: string;
  /** Event id of the record of the failing head, when it was read back. */
  head_event_id?: string;
  detail: string;
}

export interface SignatureReport {
  /** Heads found for this producer (in records and digest logs). */
  heads: number;
  /** Heads whose signature verified with a trusted key. */
  verified: number;
  /** Heads that did not verify (unknown key, before the key's time, bad signature). */
  problems: HeadProblem[];
  altered: AlteredRange[];
  /** Records no verified head covers (not in an altered range). */
  unsigned: Array<{ from: number; to: number }>;
  unsigned_count: number;
  /** Records missing after the newest digest-log head. */
  truncated?: { from: number; to: number; head_time: string; head_session: string };
  /** The newest digest-log head's seq, when a digest log named this producer. */
  digest_last_seq?: number;
  /** key_ids of the verified heads. */
  keys: string[];
}

interface Head {
  source: 'record' | 'digest';
  producer_id: string;
  session_id: string;
  seq: number;
  hash: string;
  time: string;
  key_id: string;
  sig: string;
  event_id?: string;
}

/** A trusted key with its `from` read (ms since the epoch). */
interface RingKey extends TrustedKey {
  fromMs?: number;
}

interface Keyring {
  byId: Map<string, RingKey[]>;
  any: boolean;
}

/**
 * Indexes trusted keys by key_id. A `from` that is not an RFC 3339 date-time with an offset
 * (`2026-01-01`, `tomorrow`, `1`, `2026-13-45T00:00:00Z`) is a configuration error: TypeError
 * naming the key, never a lenient or NaN reading.
 */
export function keyring(keys: readonly TrustedKey[]): Keyring {
  const byId = new Map<string, RingKey[]>();
  for (const k of keys) {
    const id = keyIdOf(k.key);
    let rk: RingKey = k;
    if (k.from !== undefined) {
      const fromMs = typeof k.from === 'string' ? parseDateTime(k.from) : undefined;
      if (fromMs === undefined) {
        throw new TypeError(
          `trusted key ${k.name ?? id}: from ${JSON.stringify(k.from)} is not an RFC 3339 date-time (e.g. 2027-01-01T00:00:00Z)`,
        );
      }
      rk = { ...k, fromMs };
    }
    const l = byId.get(id);
    if (l) l.push(rk);
    else byId.set(id, [rk]);
  }
  return { byId, any: keys.length > 0 };
}

function check(h: Head, ring: Keyring): string | undefined {
  const candidates = ring.byId.get(h.key_id);
  if (candidates === undefined)
    return `signed by key ${h.key_id}, which is not among the trusted keys`;
  // The signed time decides which keys were valid: only an RFC 3339 date-time with an offset is
  // read (a lenient reading could move a head into or out of a key's validity).
  const t = parseDateTime(h.time);
  if (t === undefined) {
    return `its signed time ${JSON.stringify(h.time)} is not an RFC 3339 date-time`;
  }
  let early: RingKey | undefined;
  for (const k of candidates) {
    if (k.fromMs !== undefined && !(t >= k.fromMs)) {
      early = k;
      continue;
    }
    if (verifyChainHead(h, h.sig, k.key)) return undefined;
    return 'the signature does not match the head (seq, hash, session, time)';
  }
  return `signed at ${h.time}, before key ${h.key_id} is valid (from ${early?.from})`;
}

/** The signature findings of one producer. `records` sorted by seq. */
export function checkSignatures(
  producerId: string,
  records: readonly SignedRecord[],
  ring: Keyring,
  digestHeads: readonly SignedChainHead[],
): SignatureReport | undefined {
  const heads: Head[] = [];
  const bySeq = new Map<number, SignedRecord>();
  for (const r of records) {
    bySeq.set(r.seq, r);
    const s = r.signature;
    if (s === undefined) continue;
    heads.push({
      source: 'record',
      producer_id: producerId,
      session_id: r.prov.session_id,
      seq: r.seq,
      hash: r.prov.hash,
      time: s.time,
      key_id: s.key_id,
      sig: s.sig,
      event_id: r.event_id,
    });
  }
  for (const d of digestHeads) {
    if (d.producer_id !== producerId) continue;
    heads.push({ ...d, source: 'digest' });
  }
  // The newest digest head: with keys, the newest that verifies (a forged line proves nothing).
  let digestLast: Head | undefined;
  if (heads.length === 0 && !ring.any) return undefined;

  const problems: HeadProblem[] = [];
  const failing = new Set<number>();
  const anchors = new Set<number>();
  const keys = new Set<string>();
  let verified = 0;
  for (const h of heads) {
    const reason = ring.any ? check(h, ring) : 'no public key given (--public-key)';
    const rec = bySeq.get(h.seq);
    if (
      !ring.any &&
      h.source === 'digest' &&
      (digestLast === undefined || h.seq > digestLast.seq)
    ) {
      digestLast = h; // without keys the digest log is taken as it is
    }
    if (reason !== undefined) {
      if (ring.any) {
        problems.push({
          seq: h.seq,
          source: h.source,
          key_id: h.key_id,
          reason,
          ...(rec ? { event_id: rec.event_id } : {}),
        });
        // A record whose own signature fails was altered, or its signature forged.
        if (h.source === 'record') failing.add(h.seq);
      }
      continue;
    }
    verified++;
    keys.add(h.key_id);
    if (h.source === 'digest' && (digestLast === undefined || h.seq > digestLast.seq)) {
      digestLast = h;
    }
    if (rec === undefined) continue; // a digest head beyond what was read back: see truncated
    if (rec.computed === h.hash && rec.prov.hash === h.hash) anchors.add(h.seq);
    else failing.add(h.seq);
  }

  // Coverage: back from every anchor along prev_hash links to intact records.
  const seqs = records.map((r) => r.seq);
  const index = new Map<number, number>();
  for (let i = 0; i < seqs.length; i++) index.set(seqs[i] as number, i);
  const covered = new Set<number>();
  for (const a of [...anchors].sort((x, y) => y - x)) {
    let i = index.get(a) as number;
    for (;;) {
      const r = records[i] as SignedRecord;
      if (covered.has(r.seq)) break;
      covered.add(r.seq);
      const prev = records[i - 1];
      if (
        prev === undefined ||
        r.prov.prev_hash === null ||
        prev.prov.hash !== r.prov.prev_hash ||
        prev.computed !== prev.prov.hash ||
        failing.has(prev.seq)
      ) {
        break;
      }
      i--;
    }
  }

  // Altered ranges: from the last anchor below a failing head; consecutive failures merge.
  const altered: AlteredRange[] = [];
  const sortedAnchors = [...anchors].sort((x, y) => x - y);
  for (const f of [...failing].sort((x, y) => x - y)) {
    const below = sortedAnchors.filter((a) => a < f).pop();
    const from = below === undefined ? (seqs[0] ?? f) : below + 1;
    const last = altered[altered.length - 1];
    if (last !== undefined && (below === undefined || below < last.to)) {
      last.to = f;
      continue;
    }
    const first = records.find((r) => r.seq >= from);
    altered.push({
      from,
      to: f,
      first_event_id: first?.event_id ?? '',
      ...(bySeq.get(f) ? { head_event_id: (bySeq.get(f) as SignedRecord).event_id } : {}),
      detail: '',
    });
  }
  for (const a of altered) {
    a.detail = `a record in seqs ${a.from}..${a.to} was altered after it was signed (the signed head at seq ${a.to} no longer matches what is stored): the first altered record is at or after seq ${a.from} (event ${a.first_event_id})`;
  }
  const inAltered = (s: number) => altered.some((a) => s >= a.from && s <= a.to);

  const unsigned: Array<{ from: number; to: number }> = [];
  let unsignedCount = 0;
  for (const s of seqs) {
    if (covered.has(s) || inAltered(s)) continue;
    unsignedCount++;
    const last = unsigned[unsigned.length - 1];
    if (last && index.get(s) === (index.get(last.to) as number) + 1) last.to = s;
    else unsigned.push({ from: s, to: s });
  }

  const hi = seqs[seqs.length - 1] ?? 0;
  const truncated =
    digestLast !== undefined && digestLast.seq > hi
      ? {
          from: hi + 1,
          to: digestLast.seq,
          head_time: digestLast.time,
          head_session: digestLast.session_id,
        }
      : undefined;
  return {
    heads: heads.length,
    verified,
    problems,
    altered,
    unsigned,
    unsigned_count: unsignedCount,
    ...(truncated ? { truncated } : {}),
    ...(digestLast ? { digest_last_seq: digestLast.seq } : {}),
    keys: [...keys].sort(),
  };
}

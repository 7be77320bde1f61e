// SPDX-License-Identifier: Apache-2.0
/*
 * Reading a format 1 spool (written by earlier versions) for migration. Read only: it never
 * writes, so it works on a full or read-only volume.
 *
 *   record frame (`<20-digit seq>.seg`) = "KAUR" | crc32 | bodyLength u32 |
 *       seq f64 | appendedAt f64 | payload `{"t":<emittedAt ms>,"e":<AuditEventRequest>}`
 *   ack frame (`acks.log`)              = "KAUA" | crc32 | bodyLength u32 | n × (from f64, to f64)
 *   crc32 covers bodyLength and body.
 *
 * Damaged frames are skipped by resyncing at the next magic and counted.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { SpoolFs } from './fs.ts';

const RECORD_MAGIC = Buffer.from('KAUR', 'latin1');
const ACK_MAGIC = Buffer.from('KAUA', 'latin1');
const SEGMENT_NAME = /^(\d{20})\.seg$/;
/** Files of a format 1 spool (removed once its records are migrated). */
export const LEGACY_ACK_LOG = 'acks.log';
export const LEGACY_LOCK = 'lock';

/** One unacknowledged format 1 record. */
export interface LegacyRecord {
  seq: number;
  emittedAt: number;
  /** The AuditEventRequest's JSON as it was spooled. */
  eventJson: string;
  correlationId: string;
  provSeq: number;
}

export interface LegacyContents {
  records: LegacyRecord[];
  /** Highest seq seen. */
  lastSeq: number;
  corrupted: number;
  /** Format 1 files to remove after migration. */
  files: string[];
}

function walk(buf: Buffer, magic: Buffer, visit: (bodyAt: number, len: number) => boolean): number {
  let damaged = 0;
  let at = 0;
  let inDamage = false;
  while (at + 12 <= buf.length) {
    if (buf.compare(magic, 0, 4, at, at + 4) === 0) {
      const len = buf.readUInt32LE(at + 8);
      if (
        at + 12 + len <= buf.length &&
        crc32(buf.subarray(at + 8, at + 12 + len)) === buf.readUInt32LE(at + 4) &&
        visit(at + 12, len)
      ) {
        at += 12 + len;
        inDamage = false;
        continue;
      }
    }
    if (!inDamage) damaged++;
    inDamage = true;
    const next = buf.indexOf(magic, at + 1);
    at = next < 0 ? buf.length : next;
  }
  if (at < buf.length && !inDamage) damaged++;
  return damaged;
}

/** True when `names` (a directory listing) holds format 1 segments. */
export function hasLegacySegments(names: readonly string[]): boolean {
  return names.some((n) => SEGMENT_NAME.test(n));
}

/** Reads the unacknowledged records of the format 1 spool in `directory`. Throws on I/O errors. */
export function readLegacySpool(fs: SpoolFs, directory: string): LegacyContents {
  const names = fs.readdirSync(directory);
  const segments = names.filter((n) => SEGMENT_NAME.test(n)).sort();
  const acked: Array<[number, number]> = [];
  let corrupted = 0;
  if (names.includes(LEGACY_ACK_LOG)) {
    const buf = fs.readFileSync(join(directory, LEGACY_ACK_LOG));
    corrupted += walk(buf, ACK_MAGIC, (bodyAt, len) => {
      if (len % 16 !== 0) return false;
      for (let p = bodyAt; p < bodyAt + len; p += 16) {
        acked.push([buf.readDoubleLE(p), buf.readDoubleLE(p + 8)]);
      }
      return true;
    });
  }
  acked.sort((a, b) => a[0] - b[0]);
  // Disjoint, sorted ranges: a binary search finds the one that may hold a seq.
  const merged: Array<[number, number]> = [];
  for (const r of acked) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const isAcked = (seq: number): boolean => {
    let lo = 0;
    let hi = merged.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((merged[mid] as [number, number])[0] <= seq) lo = mid + 1;
      else hi = mid;
    }
    const r = merged[lo - 1];
    return r !== undefined && seq <= r[1];
  };
  const records: LegacyRecord[] = [];
  let lastSeq = 0;
  for (const name of segments) {
    const buf = fs.readFileSync(join(directory, name));
    corrupted += walk(buf, RECORD_MAGIC, (bodyAt, len) => {
      if (len < 16) return false;
      const seq = buf.readDoubleLE(bodyAt);
      if (!Number.isSafeInteger(seq) || seq <= lastSeq) return false;
      lastSeq = seq;
      if (isAcked(seq)) return true;
      const payload = buf.toString('utf8', bodyAt + 16, bodyAt + len);
      const rec = parsePayload(seq, payload);
      if (rec === undefined) corrupted++;
      else records.push(rec);
      return true;
    });
  }
  const files = names.filter(
    (n) =>
      SEGMENT_NAME.test(n) ||
      n === LEGACY_ACK_LOG ||
      n === LEGACY_LOCK ||
      n.startsWith(`${LEGACY_LOCK}.stale-`) ||
      n === `${LEGACY_ACK_LOG}.tmp`,
  );
  return { records, lastSeq, corrupted, files };
}

function parsePayload(seq: number, payload: string): LegacyRecord | undefined {
  try {
    const v = JSON.parse(payload) as { t?: unknown; e?: unknown };
    const e = v.e as Record<string, unknown> | null;
    if (typeof v.t !== 'number' || e === null || typeof e !== 'object' || Array.isArray(e)) {
      return undefined;
    }
    const prov = (e.event_data as Record<string, unknown> | undefined)?.audit_provenance as
      | { seq?: unknown }
      | undefined;
    return {
      seq,
      emittedAt: v.t,
      eventJson: JSON.stringify(e),
      correlationId: typeof e.correlation_id === 'string' ? e.correlation_id : '',
      provSeq: typeof prov?.seq === 'number' ? prov.seq : 0,
    };
  } catch {
    return undefined;
  }
}

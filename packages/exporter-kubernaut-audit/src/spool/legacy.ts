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
 * Damaged frames are skipped by resyncing at the next magic and counted (the walk is
 * @kubernaut/audit-spool-format's, shared with `kubernaut-audit spool inspect|check`).
 */
import { join } from 'node:path';
import {
  LEGACY_ACK_LOG,
  LEGACY_ACK_MAGIC,
  LEGACY_LOCK,
  LEGACY_RECORD_MAGIC,
  LEGACY_SEGMENT_NAME,
  membership,
  walkLegacyFrames,
} from '@kubernaut/audit-spool-format';
import { liveOwnerReason } from './file-lock.ts';
import type { SpoolFs } from './fs.ts';

export { LEGACY_ACK_LOG, LEGACY_LOCK };

/** Files of a format 1 spool (removed once its records are migrated). */

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

/** True when `names` (a directory listing) holds format 1 segments. */
export function hasLegacySegments(names: readonly string[]): boolean {
  return names.some((n) => LEGACY_SEGMENT_NAME.test(n));
}

/** Reads the unacknowledged records of the format 1 spool in `directory`. Throws on I/O errors. */
export function readLegacySpool(fs: SpoolFs, directory: string): LegacyContents {
  const names = fs.readdirSync(directory);
  const segments = names.filter((n) => LEGACY_SEGMENT_NAME.test(n)).sort();
  const acked: Array<[number, number]> = [];
  let corrupted = 0;
  if (names.includes(LEGACY_ACK_LOG)) {
    const buf = fs.readFileSync(join(directory, LEGACY_ACK_LOG));
    corrupted += walkLegacyFrames(buf, LEGACY_ACK_MAGIC, (bodyAt, len) => {
      if (len % 16 !== 0) return false;
      for (let p = bodyAt; p < bodyAt + len; p += 16) {
        acked.push([buf.readDoubleLE(p), buf.readDoubleLE(p + 8)]);
      }
      return true;
    });
  }
  acked.sort((a, b) => a[0] - b[0]);
  const isAcked = membership(acked);
  const records: LegacyRecord[] = [];
  let lastSeq = 0;
  for (const name of segments) {
    const buf = fs.readFileSync(join(directory, name));
    corrupted += walkLegacyFrames(buf, LEGACY_RECORD_MAGIC, (bodyAt, len) => {
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
      LEGACY_SEGMENT_NAME.test(n) ||
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

/** Why a format 1 lock file still counts as held (its owner looks alive), else undefined. */
export function legacyLockHolder(fs: SpoolFs, path: string): string | undefined {
  try {
    const text = fs.readFileSync(path).toString('utf8');
    let owner: { pid: number; hostname: string } | undefined;
    try {
      const o = JSON.parse(text) as { pid?: unknown; hostname?: unknown };
      if (typeof o.pid === 'number' && typeof o.hostname === 'string')
        owner = o as { pid: number; hostname: string };
    } catch {
      owner = undefined;
    }
    return liveOwnerReason(owner as never, fs.statSync(path).mtimeMs, Date.now(), 60_000, false);
  } catch {
    return undefined;
  }
}

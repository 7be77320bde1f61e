// SPDX-License-Identifier: Apache-2.0
/*
 * A read-only scan of a spool directory: what it holds, whom it belongs to, and where it is
 * damaged — what recovery would find, without recovering anything.
 *
 * Invariants:
 * - Reads only: no file is created, written, truncated, renamed or locked (the kernel lock is
 *   probed by ./lock-probe.ts, never taken). Works on a read-only directory and next to a live
 *   owner.
 * - Judges frames exactly as recovery does (./frame.ts: magic, length, crc, seqs increasing
 *   across segments, lane in range); every region recovery would skip is reported with its file
 *   and offset, never silently passed over.
 * - A directory that is not a spool (no meta.json, no segment, no log), or cannot be read, or
 *   holds a newer format, is a {@link SpoolReadError}, not an empty spool.
 */
import { closeSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEAD_LETTER_NAME,
  FRAME_MAGIC,
  LEGACY_ACK_LOG,
  LEGACY_LOCK,
  LEGACY_SEGMENT_NAME,
  LOCK_FALLBACK,
  LOCK_OWNER,
  LOG_FILE,
  MAX_LANES,
  MAX_LOG_FILE_BYTES,
  MAX_SEGMENT_FILE_BYTES,
  META_FILE,
  SEGMENT_NAME,
  SPOOL_FORMAT,
} from './constants.ts';
import { checkFrame, decodeFrame, isTornFrame, nextMagic, scanLog } from './frame.ts';
import { LEGACY_ACK_MAGIC, LEGACY_RECORD_MAGIC, walkLegacyFrames } from './legacy.ts';
import { type KernelLockState, probeKernelLock } from './lock-probe.ts';
import { openRegularSync, readRegularFileBounded, readRegularFileSync } from './regular-file.ts';
import { missingSeqRuns } from './seq-gaps.ts';

/** Why a directory could not be scanned as a spool. */
export class SpoolReadError extends Error {
  readonly code: 'not_found' | 'not_directory' | 'not_spool' | 'unreadable' | 'newer_format';
  constructor(code: SpoolReadError['code'], message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SpoolReadError';
    this.code = code;
  }
}

/** A region recovery would skip. */
export interface DamagedRegion {
  /** File name inside the spool directory. */
  file: string;
  /** Byte offset of the region's start in the file. */
  offset: number;
  /** Bytes up to the next intact frame (or the end of the file). */
  length: number;
  /**
   * What is wrong at `offset`: `magic` (no frame starts there), `checksum` (a frame's magic
   * whose length or crc does not match), `sequence` (an intact frame whose seqs go backwards or
   * whose lane is out of range), `index` (an intact frame whose index points outside its body),
   * `torn_tail` (a frame cut short by the end of the file: an interrupted write), `meta`
   * (meta.json unreadable), `payload` (a format 1 record whose payload is not an event),
   * `missing` (no bytes are wrong, but the seqs show unacknowledged events gone from here: a
   * segment cut at a frame boundary, emptied or removed; `length` is 0 and `events` says how
   * many: ./seq-gaps.ts), `oversized` (what a segment or the sent/ack log holds past the most
   * a writer puts in it: not read, as recovery does not read it).
   */
  reason:
    | 'magic'
    | 'checksum'
    | 'sequence'
    | 'index'
    | 'torn_tail'
    | 'meta'
    | 'payload'
    | 'missing'
    | 'oversized';
  /** With `missing`: the unacknowledged events gone. */
  events?: number;
}

/** One segment file. */
export interface SegmentScan {
  file: string;
  bytes: number;
  /** Intact frames. */
  frames: number;
  /** Events in intact frames (acknowledged or not). */
  events: number;
}

/** What the scan found. */
export interface SpoolScan {
  directory: string;
  /**
   * 2, or 1 for a spool of an earlier version (migrated by the next process that opens it; its
   * records, bytes and damage are read as the migration reads them; lanes do not apply).
   */
  format: number;
  /** From meta.json (undefined when it is missing or damaged). */
  meta:
    | {
        producerId: string;
        createdAt: string;
        destination: string | undefined;
        service: string | undefined;
        lanes: number;
      }
    | undefined;
  /** Events in intact frames not acknowledged: what the next owner will deliver. */
  records: number;
  /** Bytes of the frames holding them (what the spool's bound counts). */
  bytes: number;
  /** Bytes of all segment files. */
  diskBytes: number;
  /** Epoch ms the oldest frame with an unacknowledged event was appended. */
  oldestAppendedAt: number | undefined;
  /** Seconds since then, at the scan's `now` (0 when nothing is unacknowledged). */
  oldestAgeSeconds: number;
  /** Unacknowledged events per lane (the meta's lanes). */
  lanes: Array<{ lane: number; records: number; bytes: number }>;
  /** Unacknowledged events marked SENT: delivered again on restart, possibly duplicates. */
  sentNotAcked: number;
  /**
   * Unacknowledged events gone: their seqs lie between frames the spool still holds (or below
   * what a SENT mark or a later segment shows) and no intact frame holds them (./seq-gaps.ts).
   */
  missing: number;
  /** Highest on-disk seq found. */
  lastSeq: number;
  segments: SegmentScan[];
  /** By file name, then offset. */
  damaged: DamagedRegion[];
  /** Dead-letter files beside the spool. */
  deadLetters: Array<{ file: string; bytes: number; entries: number }>;
  /** lock.owner as written by the last owner (information, not proof). */
  lockOwner: Record<string, unknown> | undefined;
  /** The kernel lock: held by a live process, or not. */
  lock: KernelLockState;
  /** lock.fallback, when present (used where node:sqlite was unavailable). */
  fallbackLock: Record<string, unknown> | undefined;
  /** Leftovers of interrupted atomic writes (ignored by the spool). */
  tmpFiles: string[];
  /** Format 1 files, when the directory holds a format 1 spool. */
  legacy:
    | {
        segments: number;
        bytes: number;
        ackLog: boolean;
        lockFile: boolean;
        /** Format 1's lock file (`lock`): its owner as written (information). */
        lockOwner: Record<string, unknown> | undefined;
      }
    | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Scans the spool in `directory`, read only. Throws {@link SpoolReadError}. */
export function scanSpool(directory: string, options: { now?: number } = {}): SpoolScan {
  const now = options.now ?? Date.now();
  let names: string[];
  try {
    if (!statSync(directory).isDirectory()) {
      throw new SpoolReadError('not_directory', `${directory} is not a directory`);
    }
    names = readdirSync(directory).sort();
  } catch (err) {
    if (err instanceof SpoolReadError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SpoolReadError('not_found', `${directory} does not exist`);
    throw new SpoolReadError('unreadable', `cannot read ${directory}: ${message(err)}`, err);
  }
  const read = (name: string): Buffer => {
    try {
      return readRegularFileSync(join(directory, name));
    } catch (err) {
      throw new SpoolReadError(
        'unreadable',
        `cannot read ${join(directory, name)}: ${message(err)}`,
        err,
      );
    }
  };
  /**
   * A segment or the log, read up to what a writer puts in it; what lies past that is listed as
   * an `oversized` region (`oversized`: there was such a rest; `fileBytes`: the file's size).
   */
  const readBounded = (
    name: string,
    max: number,
  ): { buf: Buffer; fileBytes: number; oversized: boolean } => {
    try {
      const { buf, fileBytes } = readRegularFileBounded(join(directory, name), max);
      const oversized = fileBytes > buf.length;
      if (oversized) {
        damaged.push({
          file: name,
          offset: buf.length,
          length: fileBytes - buf.length,
          reason: 'oversized',
        });
      }
      return { buf, fileBytes, oversized };
    } catch (err) {
      throw new SpoolReadError(
        'unreadable',
        `cannot read ${join(directory, name)}: ${message(err)}`,
        err,
      );
    }
  };
  const segmentNames = names.filter((n) => SEGMENT_NAME.test(n));
  const legacySegments = names.filter((n) => LEGACY_SEGMENT_NAME.test(n));
  if (
    !names.includes(META_FILE) &&
    segmentNames.length === 0 &&
    legacySegments.length === 0 &&
    !names.includes(LOG_FILE)
  ) {
    throw new SpoolReadError(
      'not_spool',
      `${directory} is not an audit spool (no ${META_FILE}, no segment, no ${LOG_FILE})`,
    );
  }

  const damaged: DamagedRegion[] = [];
  let meta: SpoolScan['meta'];
  let format = SPOOL_FORMAT;
  if (names.includes(META_FILE)) {
    const text = read(META_FILE).toString('utf8');
    let m: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed !== null && typeof parsed === 'object') m = parsed as Record<string, unknown>;
    } catch {
      m = undefined;
    }
    const valid = m !== undefined && typeof m.producerId === 'string' && UUID.test(m.producerId);
    const declared = typeof m?.format === 'number' ? m.format : 1; // format 1 wrote none
    // A meta.json that is not a spool's is judged by the files beside it, as recovery does.
    if (valid || declared > SPOOL_FORMAT) format = declared;
    else format = legacySegments.length > 0 ? 1 : SPOOL_FORMAT;
    if (format > SPOOL_FORMAT) {
      throw new SpoolReadError(
        'newer_format',
        `${directory} holds spool format ${format}, newer than this tool understands (${SPOOL_FORMAT})`,
      );
    }
    if (valid && m !== undefined && typeof m.producerId === 'string') {
      const lanes =
        typeof m.lanes === 'number' &&
        Number.isInteger(m.lanes) &&
        m.lanes >= 1 &&
        m.lanes <= MAX_LANES
          ? m.lanes
          : 4;
      meta = {
        producerId: m.producerId,
        createdAt: String(m.createdAt ?? ''),
        destination: typeof m.destination === 'string' ? m.destination : undefined,
        service: typeof m.service === 'string' ? m.service : undefined,
        lanes,
      };
    } else {
      damaged.push({ file: META_FILE, offset: 0, length: text.length, reason: 'meta' });
    }
  } else if (legacySegments.length > 0) {
    format = 1;
  }

  const scan: SpoolScan = {
    directory,
    format,
    meta,
    records: 0,
    bytes: 0,
    diskBytes: 0,
    oldestAppendedAt: undefined,
    oldestAgeSeconds: 0,
    lanes: [],
    sentNotAcked: 0,
    missing: 0,
    lastSeq: 0,
    segments: [],
    damaged,
    deadLetters: [],
    lockOwner: readJson(directory, names, LOCK_OWNER),
    lock: probeKernelLock(directory),
    fallbackLock: readJson(directory, names, LOCK_FALLBACK),
    tmpFiles: names.filter((n) => n.endsWith('.tmp')),
    legacy: undefined,
  };
  for (const name of names.filter((n) => DEAD_LETTER_NAME.test(n))) {
    scan.deadLetters.push({ file: name, ...countLines(join(directory, name)) });
  }

  if (format === 1) {
    scanLegacy(directory, names, legacySegments, read, scan);
    return finish(scan, now);
  }

  // The sent/ack log first: which seqs are settled, which were sent.
  const acked: Array<[number, number]> = [];
  const sent: Array<[number, number]> = [];
  if (names.includes(LOG_FILE)) {
    const { buf } = readBounded(LOG_FILE, MAX_LOG_FILE_BYTES);
    scanLog(buf, {
      ranges: (kind, b, bodyAt, len) => {
        const list = kind === 'ack' ? acked : sent;
        for (let p = bodyAt; p < bodyAt + len; p += 16) {
          const from = b.readDoubleLE(p);
          const to = b.readDoubleLE(p + 8);
          if (Number.isSafeInteger(from) && Number.isSafeInteger(to) && from <= to) {
            list.push([from, to]);
          }
        }
      },
      damaged: (offset, length) => {
        damaged.push({ file: LOG_FILE, offset, length, reason: 'checksum' });
      },
    });
  }
  const isAcked = membership(acked);
  const isSent = membership(sent);

  const lanes = meta?.lanes ?? 4;
  const perLane = Array.from({ length: lanes }, (_, lane) => ({ lane, records: 0, bytes: 0 }));
  let lastDisk = 0;
  /** Intact frames: first and last seq, file, end offset. */
  const intact: Array<{ first: number; last: number; file: string; end: number }> = [];
  const damagedAfter = new Set<number>();
  const segments = segmentNames
    .map((n) => ({ name: n, base: Number((SEGMENT_NAME.exec(n) as RegExpExecArray)[1]) }))
    .filter((s) => Number.isSafeInteger(s.base) && s.base > 0)
    .sort((a, b) => a.base - b.base);
  for (const { name, base } of segments) {
    const { buf, fileBytes, oversized } = readBounded(name, MAX_SEGMENT_FILE_BYTES);
    const seg: SegmentScan = { file: name, bytes: fileBytes, frames: 0, events: 0 };
    scan.diskBytes += fileBytes;
    let at = 0;
    let region: DamagedRegion | undefined;
    const damage = (reason: DamagedRegion['reason']) => {
      if (region === undefined) {
        region = { file: name, offset: at, length: 0, reason };
        damaged.push(region);
        damagedAfter.add(lastDisk);
      }
      at = nextMagic(buf, at + 1, [FRAME_MAGIC]);
      region.length = at - region.offset;
    };
    while (at < buf.length) {
      const head = checkFrame(buf, at);
      if (head === undefined) {
        if (isTornFrame(buf, at)) damage('torn_tail');
        else
          damage(
            buf.compare(FRAME_MAGIC, 0, 4, at, Math.min(at + 4, buf.length)) === 0
              ? 'checksum'
              : 'magic',
          );
        continue;
      }
      if (head.firstSeq < base || head.firstSeq <= lastDisk || head.lane >= MAX_LANES) {
        damage('sequence');
        continue;
      }
      const frame = decodeFrame(buf, at, head);
      if (frame === undefined) {
        damage('index');
        continue;
      }
      region = undefined;
      seg.frames++;
      seg.events += head.count;
      lastDisk = head.firstSeq + head.count - 1;
      intact.push({ first: head.firstSeq, last: lastDisk, file: name, end: at + head.frameBytes });
      let open = 0;
      for (let i = 0; i < head.count; i++) {
        const seq = head.firstSeq + i;
        if (isAcked(seq)) continue;
        open++;
        if (isSent(seq)) scan.sentNotAcked++;
      }
      if (open > 0) {
        scan.records += open;
        scan.bytes += head.frameBytes;
        const lane = perLane[head.lane % lanes] as { records: number; bytes: number };
        lane.records += open;
        lane.bytes += head.frameBytes;
        if (scan.oldestAppendedAt === undefined || head.appendedAt < scan.oldestAppendedAt) {
          scan.oldestAppendedAt = head.appendedAt;
        }
      }
      at += head.frameBytes;
    }
    if (oversized) {
      damagedAfter.add(lastDisk); // the region past the bound, listed by readBounded
    }
    scan.segments.push(seg);
  }
  const runs = missingSeqRuns({
    bases: segments.map((s) => s.base),
    frames: intact.map((f) => [f.first, f.last] as const),
    acked,
    sent,
  });
  for (const r of runs) {
    scan.missing += r.to - r.from + 1;
    if (damagedAfter.has(r.afterFrame)) continue; // listed with its damage
    // Where the events were: after the frame before them, else at the start of the segment
    // that would hold them.
    const before = intact.find((f) => f.last === r.afterFrame);
    const seg = [...segments].reverse().find((s) => s.base <= r.from);
    damaged.push(
      before !== undefined && (seg === undefined || seg.name === before.file)
        ? {
            file: before.file,
            offset: before.end,
            length: 0,
            reason: 'missing',
            events: r.to - r.from + 1,
          }
        : {
            file: seg?.name ?? LOG_FILE,
            offset: 0,
            length: 0,
            reason: 'missing',
            events: r.to - r.from + 1,
          },
    );
  }
  scan.lastSeq = lastDisk;
  scan.lanes = perLane;
  return finish(scan, now);
}

function finish(scan: SpoolScan, now: number): SpoolScan {
  scan.damaged.sort((a, b) => (a.file === b.file ? a.offset - b.offset : a.file < b.file ? -1 : 1));
  if (scan.oldestAppendedAt !== undefined) {
    scan.oldestAgeSeconds = Math.max(0, (now - scan.oldestAppendedAt) / 1000);
  }
  return scan;
}

/**
 * A format 1 spool, judged as the migration reads it (./legacy.ts): its unacknowledged records
 * (what the migration re-frames), their frame bytes, the oldest, and its damaged regions.
 */
function scanLegacy(
  directory: string,
  names: readonly string[],
  segmentNames: readonly string[],
  read: (name: string) => Buffer,
  scan: SpoolScan,
): void {
  const acked: Array<[number, number]> = [];
  if (names.includes(LEGACY_ACK_LOG)) {
    const buf = read(LEGACY_ACK_LOG);
    walkLegacyFrames(
      buf,
      LEGACY_ACK_MAGIC,
      (bodyAt, len) => {
        if (len % 16 !== 0) return false;
        for (let p = bodyAt; p < bodyAt + len; p += 16) {
          acked.push([buf.readDoubleLE(p), buf.readDoubleLE(p + 8)]);
        }
        return true;
      },
      (offset, length) =>
        scan.damaged.push({ file: LEGACY_ACK_LOG, offset, length, reason: 'checksum' }),
    );
  }
  const isAcked = membership(acked);
  let lastSeq = 0;
  let bytes = 0;
  for (const name of [...segmentNames].sort()) {
    const buf = read(name);
    bytes += buf.length;
    const seg: SegmentScan = { file: name, bytes: buf.length, frames: 0, events: 0 };
    walkLegacyFrames(
      buf,
      LEGACY_RECORD_MAGIC,
      (bodyAt, len) => {
        if (len < 16) return false;
        const seq = buf.readDoubleLE(bodyAt);
        if (!Number.isSafeInteger(seq) || seq <= lastSeq) return false;
        lastSeq = seq;
        seg.frames++;
        seg.events++;
        if (isAcked(seq)) return true;
        if (!isLegacyPayload(buf.toString('utf8', bodyAt + 16, bodyAt + len))) {
          scan.damaged.push({
            file: name,
            offset: bodyAt - 12,
            length: len + 12,
            reason: 'payload',
          });
          return true;
        }
        scan.records++;
        scan.bytes += len + 12;
        const appendedAt = buf.readDoubleLE(bodyAt + 8);
        if (scan.oldestAppendedAt === undefined || appendedAt < scan.oldestAppendedAt) {
          scan.oldestAppendedAt = appendedAt;
        }
        return true;
      },
      (offset, length) => {
        const reason =
          buf.compare(LEGACY_RECORD_MAGIC, 0, 4, offset, Math.min(offset + 4, buf.length)) === 0
            ? 'checksum'
            : 'magic';
        scan.damaged.push({ file: name, offset, length, reason });
      },
    );
    scan.segments.push(seg);
  }
  scan.diskBytes = bytes;
  scan.lastSeq = lastSeq;
  scan.legacy = {
    segments: segmentNames.length,
    bytes,
    ackLog: names.includes(LEGACY_ACK_LOG),
    lockFile: names.includes(LEGACY_LOCK),
    lockOwner: readJson(directory, names, LEGACY_LOCK),
  };
}

/** The payload of a format 1 record: `{"t": <ms>, "e": {…}}`. */
function isLegacyPayload(text: string): boolean {
  try {
    const v = JSON.parse(text) as { t?: unknown; e?: unknown };
    return (
      typeof v.t === 'number' && v.e !== null && typeof v.e === 'object' && !Array.isArray(v.e)
    );
  } catch {
    return false;
  }
}

/** A membership test over inclusive seq ranges (merged, binary searched). */
export function membership(ranges: Array<[number, number]>): (seq: number) => boolean {
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return (seq) => {
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
}

function readJson(
  directory: string,
  names: readonly string[],
  name: string,
): Record<string, unknown> | undefined {
  if (!names.includes(name)) return undefined;
  try {
    const v = JSON.parse(readRegularFileSync(join(directory, name)).toString('utf8')) as unknown;
    return v !== null && typeof v === 'object'
      ? (v as Record<string, unknown>)
      : { unreadable: true };
  } catch {
    return { unreadable: true };
  }
}

/** Bytes and lines (entries) of a file, read in chunks. */
function countLines(path: string): { bytes: number; entries: number } {
  let fd: number | undefined;
  let bytes = 0;
  let entries = 0;
  try {
    fd = openRegularSync(path, 'r');
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    let last = 0x0a;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      bytes += n;
      for (let i = chunk.indexOf(0x0a, 0); i >= 0 && i < n; i = chunk.indexOf(0x0a, i + 1)) {
        entries++;
      }
      last = chunk[n - 1] as number;
    }
    if (last !== 0x0a) entries++; // a last line without its newline
  } catch {
    // counted as far as it could be read
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { bytes, entries };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

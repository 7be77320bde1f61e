// SPDX-License-Identifier: Apache-2.0
/*
 * Recovery of a format 2 spool directory (FORMAT.md): the segments' frames and the sent/ack
 * log, read back at open.
 *
 * Invariants: reads only (recovery needs no free space); damage (a torn tail, flipped bits) is
 * skipped by checksums and counted in `corrupted`, never fatal; frames are taken in disk-seq
 * order, each segment's from its base on, so a frame is never counted twice. A segment is read
 * up to MAX_SEGMENT_FILE_BYTES, the most a writer puts in one, and the sent/ack log up to
 * MAX_LOG_FILE_BYTES: what a larger file holds past that (a file grown by damage or by hand) is
 * one damaged region, so memory and start-up time stay bounded whatever the file's size.
 * Events gone without a damaged frame to show for it (a segment cut at a frame boundary,
 * emptied or removed: a gap in the disk seqs, audit-spool-format's missingSeqRuns) are each one
 * more damaged region, unless the gap lies right after damage already counted; `missing` counts
 * the unacknowledged events lost either way.
 */
import { join } from 'node:path';
import {
  LOG_FILE,
  MAX_LOG_FILE_BYTES,
  MAX_SEGMENT_FILE_BYTES,
  missingSeqRuns,
  SEGMENT_NAME,
} from '@kubernaut/audit-spool-format';
import { checkFrame, decodeFrame, FRAME_MAGIC, maxProvSeq, nextMagic, scanLog } from './frame.ts';
import type { SpoolFs } from './fs.ts';
import { MAX_LANES } from './meta.ts';

/** File name suffix of a segment (its base disk seq, 20 digits, before it). */
export const SEGMENT_SUFFIX = '.kaf';

/** The path of the segment whose first disk seq is `base`. */
export function segmentPath(directory: string, base: number): string {
  return join(directory, `${String(base).padStart(20, '0')}${SEGMENT_SUFFIX}`);
}

/** A segment file of the spool. */
export interface Segment {
  id: number;
  /** Disk seq in the file name. */
  base: number;
  path: string;
  fd: number | undefined;
  size: number;
  liveFrames: number;
  dirty: boolean;
  /**
   * Its file is not (or may not be) in the spool's directory any more (the directory was
   * removed or replaced): readable through `fd` only, never written, copied back in the
   * background (spool.ts, rehoming.ts).
   */
  orphaned?: boolean;
}

/** What recovery found in a directory. */
export interface Recovered {
  frames: Array<{
    disk: number;
    count: number;
    lane: number;
    bytes: number;
    offset: number;
    seg: Segment;
    appended: number;
  }>;
  segments: Segment[];
  nextDisk: number;
  acked: Array<[number, number]>;
  sent: Array<[number, number]>;
  corrupted: number;
  /** Events gone without a damaged frame to show for it (see the module comment). */
  missing: number;
  /** Highest provenance seq on the spool and where it is. */
  tail: { provSeq: number; seg: Segment; offset: number; bytes: number; index: number } | undefined;
}

/** A file's first `max` bytes at most, and the file's size. */
function readBounded(fs: SpoolFs, path: string, max: number): { buf: Buffer; fileBytes: number } {
  const fd = fs.openSync(path, 'r');
  try {
    const fileBytes = fs.fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(Math.min(fileBytes, max));
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break; // it shrank meanwhile
      got += n;
    }
    return { buf: got === buf.length ? buf : buf.subarray(0, got), fileBytes };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the segments and the sent/ack log of a format 2 directory. Reads only. */
export function recoverSegments(
  fs: SpoolFs,
  real: string,
  names: string[],
  lanes: number,
): Recovered {
  const bases = names
    .map((n) => SEGMENT_NAME.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .filter((b) => Number.isSafeInteger(b) && b > 0)
    .sort((a, b) => a - b);
  const rec: Recovered = {
    frames: [],
    segments: [],
    nextDisk: 1,
    acked: [],
    sent: [],
    corrupted: 0,
    missing: 0,
    tail: undefined,
  };
  let lastDisk = 0;
  let maxBase = 0;
  /** The last disk seq before each damaged region found (0: before the first frame). */
  const damagedAfter = new Set<number>();
  for (const base of bases) {
    const path = segmentPath(real, base);
    const seg: Segment = { id: 0, base, path, fd: undefined, size: 0, liveFrames: 0, dirty: false };
    maxBase = Math.max(maxBase, base);
    const { buf, fileBytes } = readBounded(fs, path, MAX_SEGMENT_FILE_BYTES);
    let at = 0;
    let end = 0;
    let damaged = false;
    while (at < buf.length) {
      const head = checkFrame(buf, at);
      if (
        head !== undefined &&
        head.firstSeq >= base &&
        head.firstSeq > lastDisk &&
        head.lane < MAX_LANES
      ) {
        const frame = decodeFrame(buf, at, head);
        if (frame !== undefined) {
          damaged = false;
          rec.frames.push({
            disk: head.firstSeq,
            count: head.count,
            lane: head.lane % lanes,
            bytes: head.frameBytes,
            offset: at,
            seg,
            appended: head.appendedAt,
          });
          const m = maxProvSeq(frame);
          if (m.index >= 0 && m.provSeq > (rec.tail?.provSeq ?? 0)) {
            rec.tail = {
              provSeq: m.provSeq,
              seg,
              offset: at,
              bytes: head.frameBytes,
              index: m.index,
            };
          }
          lastDisk = head.firstSeq + head.count - 1;
          at += head.frameBytes;
          end = at;
          continue;
        }
      }
      if (!damaged) {
        rec.corrupted++;
        damagedAfter.add(lastDisk);
      }
      damaged = true;
      at = nextMagic(buf, at + 1, [FRAME_MAGIC]);
    }
    if (fileBytes > buf.length) {
      rec.corrupted++; // what lies past the bound: one region
      damagedAfter.add(lastDisk);
    }
    seg.size = end;
    rec.segments.push(seg);
  }
  rec.nextDisk = Math.max(lastDisk + 1, maxBase, 1);
  if (names.includes(LOG_FILE)) {
    const { buf, fileBytes } = readBounded(fs, join(real, LOG_FILE), MAX_LOG_FILE_BYTES);
    if (fileBytes > buf.length) rec.corrupted++; // what lies past the bound: one region
    scanLog(buf, {
      ranges: (kind, b, bodyAt, len) => {
        const list = kind === 'ack' ? rec.acked : rec.sent;
        for (let p = bodyAt; p < bodyAt + len; p += 16) {
          const from = b.readDoubleLE(p);
          const to = b.readDoubleLE(p + 8);
          if (Number.isSafeInteger(from) && Number.isSafeInteger(to) && from <= to)
            list.push([from, to]);
        }
      },
      damaged: () => {
        rec.corrupted++;
      },
    });
  }
  const runs = missingSeqRuns({
    bases,
    frames: rec.frames.map((f) => [f.disk, f.disk + f.count - 1] as const),
    acked: rec.acked,
    sent: rec.sent,
  });
  for (const r of runs) {
    rec.missing += r.to - r.from + 1;
    if (!damagedAfter.has(r.afterFrame)) rec.corrupted++; // else counted with its damage
  }
  return rec;
}

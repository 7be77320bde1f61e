// SPDX-License-Identifier: Apache-2.0
/*
 * FileSpool: the durable spool. Append-only segment files of CRC-framed records, an append-only
 * ack log of seq ranges, a lock file and meta.json in one directory. See FORMAT.md.
 */

import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { errorText, numberOption } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../diag/component-diag.ts';
import {
  ACK_MAGIC,
  checkFrame,
  encodeAckRanges,
  encodeRecords,
  RECORD_HEAD_BYTES,
  RECORD_MAGIC,
  type RecordInput,
  scanFrames,
} from './frame.ts';
import { ensureDirectory, fsyncDirectory, writeFileAtomic, writeFully } from './fsutil.ts';
import { acquireLock, releaseLock, touchLock } from './lock.ts';
import { loadMeta, META_FILE } from './meta.ts';
import { parseSegmentFileName, Segment } from './segment.ts';
import type { AppendResult, AuditSpool, SpoolEntry, SpoolOptions, SpoolStats } from './types.ts';
import { SpoolOpenError } from './types.ts';

/** Bound of unacknowledged bytes of a spool [1 GiB]. */
export const DEFAULT_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;

const spoolDiag = new ComponentDiag('kubernaut-audit spool');
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_FSYNC_INTERVAL_MILLIS = 1000;
export const DEFAULT_FOREIGN_LOCK_STALE_MILLIS = 60_000;
const MIN_SEGMENT_BYTES = 64 * 1024;
/** Segments are read whole on recovery: keep them well below Buffer limits. */
const MAX_SEGMENT_BYTES = 256 * 1024 * 1024;
export const ACK_LOG_FILE = 'acks.log';
/** The ack log is rewritten (compacted) when it grows past this. */
const ACK_LOG_COMPACT_BYTES = 1024 * 1024;

/** Directories (real paths) with a FileSpool open in this process. */
const openInProcess = new Set<string>();

interface ResolvedOptions {
  directory: string;
  maxBytes: number;
  durability: 'batch' | 'sync';
  fsyncIntervalMillis: number;
  segmentBytes: number;
  foreignLockStaleMillis: number;
}

/** A numeric option: `dflt` when absent; a TypeError naming it when it breaks the rule. */
function positive(
  name: string,
  value: number | undefined,
  dflt: number,
  allowZero = false,
): number {
  const rule = allowZero ? { min: 0 } : { above: 0 };
  const n = numberOption(`spool option ${name}`, value, rule, (message) => {
    throw new TypeError(message);
  });
  return n ?? dflt;
}

function resolveOptions(options: SpoolOptions): ResolvedOptions {
  if (!options || typeof options.directory !== 'string' || options.directory === '') {
    throw new TypeError('spool option directory must be a non-empty path');
  }
  if (
    options.durability !== undefined &&
    options.durability !== 'batch' &&
    options.durability !== 'sync'
  ) {
    throw new TypeError(
      `spool option durability must be 'batch' or 'sync', got ${String(options.durability)}`,
    );
  }
  const maxBytes = positive('maxBytes', options.maxBytes, DEFAULT_SPOOL_MAX_BYTES);
  const requested = positive('segmentBytes', options.segmentBytes, DEFAULT_SEGMENT_BYTES);
  return {
    directory: options.directory,
    maxBytes,
    durability: options.durability ?? 'batch',
    fsyncIntervalMillis: positive(
      'fsyncIntervalMillis',
      options.fsyncIntervalMillis,
      DEFAULT_FSYNC_INTERVAL_MILLIS,
      true,
    ),
    segmentBytes: Math.max(
      MIN_SEGMENT_BYTES,
      Math.min(requested, MAX_SEGMENT_BYTES, Math.floor(maxBytes / 4)),
    ),
    foreignLockStaleMillis: positive(
      'foreignLockStaleMillis',
      options.foreignLockStaleMillis,
      DEFAULT_FOREIGN_LOCK_STALE_MILLIS,
    ),
  };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** Collapses ascending seqs into inclusive ranges. */
function toRanges(sorted: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s === last[1] + 1) last[1] = s;
    else if (!last || s > last[1]) out.push([s, s]);
  }
  return out;
}

/** The durable spool. Open with `FileSpool.open`. */
export class FileSpool implements AuditSpool {
  readonly kind = 'file' as const;
  readonly producerId: string;
  readonly directory: string;
  private readonly opts: ResolvedOptions;
  private readonly realDir: string;
  private readonly lockPath: string;
  private segments: Segment[] = [];
  private active!: Segment;
  private ackFd: number | undefined;
  private ackLogBytes = 0;
  private ackDirty = false;
  private dirDirty = false;
  private nextSeq = 1;
  private liveBytes = 0;
  private liveRecords = 0;
  private corruptedSkipped = 0;
  private corruptedBytes = 0;
  private droppedFull = 0;
  private droppedWriteError = 0;
  private droppedInvalid = 0;
  private fsyncTimer: NodeJS.Timeout | undefined;
  /** Background fsyncs in flight per fd; such an fd is closed only once they are done. */
  private readonly pendingSyncs = new Map<number, { count: number; closeAfter: boolean }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  private ioErrors = 0;
  private lastDamage = '';

  private constructor(
    opts: ResolvedOptions,
    realDir: string,
    lockPath: string,
    producerId: string,
  ) {
    this.opts = opts;
    this.directory = opts.directory;
    this.realDir = realDir;
    this.lockPath = lockPath;
    this.producerId = producerId;
  }

  /**
   * Opens (creating when missing) and recovers the spool in `options.directory`, taking its lock.
   * Damaged records are skipped and counted, never fatal. Throws `SpoolOpenError` when the
   * directory is locked by a live process (`locked`), cannot be written (`unwritable`), or holds
   * a newer format (`corrupt`); `TypeError` for invalid options.
   */
  static open(options: SpoolOptions): FileSpool {
    const opts = resolveOptions(options);
    const dir = opts.directory;
    let realDir: string;
    try {
      ensureDirectory(dir);
      realDir = realpathSync(dir);
      if (!statSync(realDir).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new SpoolOpenError(
        'unwritable',
        dir,
        `cannot create or use the directory: ${errorText(err)}`,
        err,
      );
    }
    let lock: ReturnType<typeof acquireLock>;
    try {
      lock = acquireLock(realDir, opts.foreignLockStaleMillis, openInProcess.has(realDir));
    } catch (err) {
      throw new SpoolOpenError(
        'unwritable',
        dir,
        `cannot create the lock file: ${errorText(err)}`,
        err,
      );
    }
    if (!lock.ok) throw new SpoolOpenError('locked', dir, `locked: ${lock.reason}`);
    openInProcess.add(realDir);
    let spool: FileSpool | undefined;
    try {
      const meta = loadMeta(realDir);
      if (!meta.ok) throw new SpoolOpenError('corrupt', dir, meta.reason);
      if (meta.replacedDamaged) {
        spoolDiag.warn(`${dir}: meta.json was damaged; a new producer id was created`);
      }
      spool = new FileSpool(opts, realDir, lock.path, meta.meta.producerId);
      spool.recover();
      spool.startHeartbeat();
      return spool;
    } catch (err) {
      spool?.closeFds();
      openInProcess.delete(realDir);
      releaseLock(lock.path);
      if (err instanceof SpoolOpenError) throw err;
      throw new SpoolOpenError('unwritable', dir, `cannot open: ${errorText(err)}`, err);
    }
  }

  // ---------------------------------------------------------------- recovery

  /** Counts a damaged region; reported through diag in one summary per open or read call. */
  private damaged(where: string, at: number, length: number): void {
    this.corruptedSkipped++;
    this.corruptedBytes += length;
    this.lastDamage = `${where}:${at} (${length} bytes)`;
  }

  private recover(): void {
    const dir = this.realDir;
    const names = readdirSync(dir);
    // Only our own leftovers: other files (e.g. the processor's dead-letter file) are not ours.
    const ownTemps = new Set([`${META_FILE}.tmp`, `${ACK_LOG_FILE}.tmp`]);
    for (const n of names) {
      if (!ownTemps.has(n) && !n.startsWith('lock.stale-')) continue;
      try {
        const p = join(dir, n);
        // A lock moved aside a moment ago may still be in a competing opener's hands.
        if (n.startsWith('lock.stale-') && Date.now() - statSync(p).mtimeMs < 60_000) continue;
        unlinkSync(p);
      } catch {
        // leftovers are harmless
      }
    }
    const bases = names
      .map(parseSegmentFileName)
      .filter((b): b is number => b !== undefined)
      .sort((a, b) => a - b);
    let lastSeq = 0;
    let maxBase = 0;
    for (const base of bases) {
      const seg = new Segment(dir, base);
      maxBase = Math.max(maxBase, base);
      const buf = readFileSync(seg.path);
      const end = scanFrames(buf, RECORD_MAGIC, {
        frame: (at, bodyAt, bodyLength) => {
          if (bodyLength < 16) return false;
          const seq = buf.readDoubleLE(bodyAt);
          const appendedAt = buf.readDoubleLE(bodyAt + 8);
          if (
            !Number.isSafeInteger(seq) ||
            seq < base ||
            seq <= lastSeq ||
            !Number.isFinite(appendedAt)
          ) {
            return false;
          }
          lastSeq = seq;
          seg.push(seq, at, bodyLength - 16, appendedAt);
          return true;
        },
        damaged: (at, length) => this.damaged(seg.path, at, length),
      });
      seg.size = buf.length;
      if (base === bases[bases.length - 1] && end < buf.length) {
        // Torn or damaged tail of the segment new frames go to: cut it off before appending.
        const fd = openSync(seg.path, 'r+');
        try {
          ftruncateSync(fd, end);
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
        seg.size = end;
      }
      this.segments.push(seg);
      this.liveRecords += seg.count;
      for (let i = 0; i < seg.count; i++) this.liveBytes += seg.frameBytes(i);
    }
    this.nextSeq = Math.max(lastSeq + 1, maxBase, 1);

    // Acks.
    const ackPath = join(dir, ACK_LOG_FILE);
    let ackBuf: Buffer | undefined;
    try {
      ackBuf = readFileSync(ackPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (ackBuf !== undefined) {
      const buf = ackBuf;
      scanFrames(buf, ACK_MAGIC, {
        frame: (_at, bodyAt, bodyLength) => {
          if (bodyLength % 16 !== 0) return false;
          for (let p = bodyAt; p < bodyAt + bodyLength; p += 16) {
            this.applyAckRange(buf.readDoubleLE(p), buf.readDoubleLE(p + 8));
          }
          return true;
        },
        damaged: (at, length) => this.damaged(ackPath, at, length),
      });
    }

    // Active segment: the last one if it still has room and unacknowledged records.
    const last = this.segments[this.segments.length - 1];
    if (last && last.live > 0 && last.size < this.opts.segmentBytes) {
      this.active = last;
      last.fd = openSync(last.path, 'r+');
    } else if (last && last.count === 0 && last.baseSeq === this.nextSeq) {
      this.active = last;
      last.fd = openSync(last.path, 'r+');
    } else {
      this.active = this.createSegment(this.nextSeq);
    }
    this.deleteAckedSegments();

    // Compact the ack log: keep only acks of records still on disk.
    writeFileAtomic(dir, ackPath, this.compactedAcks());
    this.ackFd = openSync(ackPath, 'a');
    this.ackLogBytes = statSync(ackPath).size;
    if (this.corruptedSkipped > 0) {
      spoolDiag.warn(
        `${this.directory}: recovered ${this.liveRecords} records, skipped ${this.corruptedSkipped} damaged regions (${this.corruptedBytes} bytes; last at ${this.lastDamage})`,
      );
    }
  }

  private applyAckRange(from: number, to: number): void {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || to < from) return;
    for (const seg of this.segments) {
      if (seg.count === 0 || seg.lastSeq < from || seg.seqs[0]! > to) continue;
      for (let i = seg.upperBound(from - 1); i < seg.count && seg.seqs[i]! <= to; i++) {
        const freed = seg.markAcked(i);
        if (freed > 0) {
          this.liveBytes -= freed;
          this.liveRecords--;
        }
      }
    }
  }

  private compactedAcks(): Buffer {
    const parts: Buffer[] = [];
    for (const seg of this.segments) {
      if (seg.live === seg.count) continue;
      const acked: number[] = [];
      for (let i = 0; i < seg.count; i++) if (seg.acked[i]) acked.push(seg.seqs[i]!);
      const ranges = toRanges(acked);
      for (let k = 0; k < ranges.length; k += 4096)
        parts.push(encodeAckRanges(ranges.slice(k, k + 4096)));
    }
    return Buffer.concat(parts);
  }

  // ---------------------------------------------------------------- segments

  private createSegment(baseSeq: number): Segment {
    const seg = new Segment(this.realDir, baseSeq);
    seg.fd = openSync(seg.path, 'w+', 0o600);
    this.segments.push(seg);
    this.dirDirty = true;
    return seg;
  }

  private dropSegment(seg: Segment): void {
    if (seg.fd !== undefined) {
      this.closeFd(seg.fd);
      seg.fd = undefined;
    }
    try {
      unlinkSync(seg.path);
    } catch (err) {
      this.ioError(`cannot delete ${seg.path}`, err);
    }
    this.segments.splice(this.segments.indexOf(seg), 1);
    this.dirDirty = true;
  }

  /** Deletes fully acknowledged segments; when everything is acknowledged, starts afresh. */
  private deleteAckedSegments(): void {
    if (this.active.count > 0 && this.active.live === 0) {
      this.active = this.createSegment(this.nextSeq);
    }
    for (const seg of [...this.segments]) {
      if (seg !== this.active && seg.live === 0) this.dropSegment(seg);
    }
    if (
      this.segments.length === 1 &&
      this.active.count === 0 &&
      this.ackFd !== undefined &&
      this.ackLogBytes > 0
    ) {
      try {
        ftruncateSync(this.ackFd, 0);
        this.ackLogBytes = 0;
      } catch (err) {
        this.ioError('cannot truncate the ack log', err);
      }
    }
  }

  // ---------------------------------------------------------------- durability

  /** Reports an I/O error (rate-limited: one line, then one summary with the count per interval). */
  private ioError(what: string, err: unknown): void {
    this.ioErrors++;
    spoolDiag.report(
      'error',
      `io:${this.directory}`,
      `${this.directory}: ${what}: ${errorText(err)}`,
    );
  }

  private syncSegment(seg: Segment): void {
    if (!seg.dirty || seg.fd === undefined) return;
    try {
      fdatasyncSync(seg.fd);
      seg.dirty = false;
    } catch (err) {
      this.ioError(`fsync of ${seg.path} failed`, err);
    }
  }

  /**
   * fsync in the background (libuv thread pool), so that the event loop never waits on the
   * disk: the timer-driven cadence. A failed fsync marks the file dirty again and is counted.
   */
  private syncInBackground(): void {
    for (const seg of this.segments) {
      if (!seg.dirty || seg.fd === undefined) continue;
      seg.dirty = false;
      this.fdatasyncAsync(seg.fd, seg.path, () => {
        seg.dirty = true;
      });
    }
    if (this.ackDirty && this.ackFd !== undefined) {
      this.ackDirty = false;
      this.fdatasyncAsync(this.ackFd, ACK_LOG_FILE, () => {
        this.ackDirty = true;
      });
    }
    if (this.dirDirty) {
      fsyncDirectory(this.realDir);
      this.dirDirty = false;
    }
  }

  private fdatasyncAsync(fd: number, what: string, onFail: () => void): void {
    let p = this.pendingSyncs.get(fd);
    if (p === undefined) {
      p = { count: 0, closeAfter: false };
      this.pendingSyncs.set(fd, p);
    }
    const pending = p;
    pending.count++;
    fdatasync(fd, (err) => {
      pending.count--;
      if (err) {
        onFail();
        this.ioError(`fsync of ${what} failed`, err);
      }
      if (pending.count === 0) {
        this.pendingSyncs.delete(fd);
        if (pending.closeAfter) closeQuietly(fd);
      }
    });
  }

  /** Closes `fd`, or marks it to be closed once its background fsyncs are done. */
  private closeFd(fd: number): void {
    const p = this.pendingSyncs.get(fd);
    if (p !== undefined) p.closeAfter = true;
    else closeQuietly(fd);
  }

  /** fsyncs everything written so far (segments, ack log, directory entries), synchronously. */
  sync(): void {
    if (this.fsyncTimer !== undefined) {
      clearTimeout(this.fsyncTimer);
      this.fsyncTimer = undefined;
    }
    for (const seg of this.segments) this.syncSegment(seg);
    if (this.ackDirty && this.ackFd !== undefined) {
      try {
        fdatasyncSync(this.ackFd);
        this.ackDirty = false;
      } catch (err) {
        this.ioError('fsync of the ack log failed', err);
      }
    }
    if (this.dirDirty) {
      fsyncDirectory(this.realDir);
      this.dirDirty = false;
    }
  }

  private scheduleSync(): void {
    if (this.opts.fsyncIntervalMillis === 0) {
      this.sync();
    } else if (this.fsyncTimer === undefined) {
      this.fsyncTimer = setTimeout(() => {
        this.fsyncTimer = undefined;
        this.syncInBackground();
      }, this.opts.fsyncIntervalMillis);
      this.fsyncTimer.unref();
    }
  }

  private startHeartbeat(): void {
    const every = Math.max(1000, Math.floor(this.opts.foreignLockStaleMillis / 3));
    this.heartbeat = setInterval(() => touchLock(this.lockPath), every);
    this.heartbeat.unref();
  }

  // ---------------------------------------------------------------- API

  append(payloads: readonly string[]): AppendResult {
    const n = payloads.length;
    const dropAll = (error: Error): AppendResult => ({
      appended: 0,
      dropped: n,
      droppedIndexes: Array.from({ length: n }, (_, i) => i),
      error,
    });
    if (this.closed) {
      this.droppedWriteError += n;
      return dropAll(new Error('audit spool is closed'));
    }
    const now = Date.now();
    const records: RecordInput[] = [];
    const droppedIndexes: number[] = [];
    let budget = this.opts.maxBytes - this.liveBytes;
    let total = 0;
    let invalid = 0;
    for (let i = 0; i < n; i++) {
      const payload = payloads[i];
      if (typeof payload !== 'string') {
        invalid++;
        droppedIndexes.push(i);
        continue;
      }
      const payloadBytes = Buffer.byteLength(payload, 'utf8');
      const frame = RECORD_HEAD_BYTES + payloadBytes;
      if (frame > budget) {
        this.droppedFull++;
        droppedIndexes.push(i);
        continue;
      }
      budget -= frame;
      total += frame;
      records.push({ seq: this.nextSeq + records.length, appendedAt: now, payload, payloadBytes });
    }
    const result: AppendResult = { appended: 0, dropped: n - records.length };
    if (droppedIndexes.length > 0) result.droppedIndexes = droppedIndexes;
    if (invalid > 0) {
      this.droppedInvalid += invalid;
      result.error = new TypeError('audit spool payloads must be strings');
    }
    if (records.length === 0) return result;

    let seg = this.active;
    try {
      if (seg.size > 0 && seg.size + total > this.opts.segmentBytes) {
        // The old segment stays open (and dirty) until the fsync timer has synced it.
        seg = this.active = this.createSegment(this.nextSeq);
      }
      const buf = encodeRecords(records);
      writeFully(seg.fd as number, buf, seg.size);
    } catch (err) {
      // Undo a partial write so the next frame starts on a clean boundary.
      try {
        if (seg.fd !== undefined) ftruncateSync(seg.fd, seg.size);
      } catch (truncErr) {
        this.ioError('cannot undo a failed write; damage will be skipped on recovery', truncErr);
      }
      this.droppedWriteError += records.length;
      this.ioError(`append of ${records.length} records failed`, err);
      return dropAll(err instanceof Error ? err : new Error(String(err)));
    }
    let at = seg.size;
    for (const r of records) {
      seg.push(r.seq, at, r.payloadBytes as number, r.appendedAt);
      at += RECORD_HEAD_BYTES + (r.payloadBytes as number);
    }
    seg.size = at;
    seg.dirty = true;
    this.nextSeq += records.length;
    this.liveBytes += total;
    this.liveRecords += records.length;
    this.scheduleSync();
    result.appended = records.length;
    result.firstSeq = records[0]!.seq;
    return result;
  }

  readUnacked(limit: number, afterSeq?: number): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    if (this.closed || !(limit > 0)) return out;
    const damagedBefore = this.corruptedSkipped;
    try {
      this.collectUnacked(limit, afterSeq, out);
    } finally {
      const n = this.corruptedSkipped - damagedBefore;
      if (n > 0) {
        spoolDiag.warn(
          `${this.directory}: ${n} records found damaged on read were skipped (last at ${this.lastDamage})`,
        );
      }
    }
    return out;
  }

  private collectUnacked(limit: number, afterSeq: number | undefined, out: SpoolEntry[]): void {
    for (const seg of [...this.segments]) {
      if (out.length >= limit) break;
      if (seg.live === 0 || (afterSeq !== undefined && seg.lastSeq <= afterSeq)) continue;
      let i = afterSeq === undefined ? seg.head : Math.max(seg.head, seg.upperBound(afterSeq));
      while (i < seg.count && out.length < limit) {
        if (seg.acked[i]) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < seg.count && !seg.acked[j] && out.length + (j - i) < limit) j++;
        // On a read error stop here, so that a caller's cursor never passes unread records.
        if (!this.readRun(seg, i, j, out)) return;
        i = j;
      }
    }
  }

  /**
   * Reads records [i, j) of `seg` (all unacknowledged, contiguous on disk) into `out`. Returns
   * false when the file could not be read (counted; the records stay for a later read).
   */
  private readRun(seg: Segment, i: number, j: number, out: SpoolEntry[]): boolean {
    const start = seg.offsets[i]!;
    const end = seg.offsets[j - 1]! + seg.frameBytes(j - 1);
    const buf = Buffer.allocUnsafe(end - start);
    try {
      seg.fd ??= openSync(seg.path, 'r');
      let got = 0;
      while (got < buf.length) {
        const r = readSync(seg.fd, buf, got, buf.length - got, start + got);
        if (r <= 0) break;
        got += r;
      }
      if (got < buf.length) buf.fill(0, got);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // The segment file was removed behind our back: its records are lost. Count, move on.
        let lostBytes = 0;
        for (let k = seg.head; k < seg.count; k++) {
          const freed = seg.markAcked(k);
          if (freed > 0) {
            lostBytes += freed;
            this.liveRecords--;
          }
        }
        this.liveBytes -= lostBytes;
        this.damaged(seg.path, 0, lostBytes);
        return true;
      }
      this.ioError(`cannot read ${seg.path}`, err);
      return false;
    }
    for (let k = i; k < j; k++) {
      const at = seg.offsets[k]! - start;
      const bodyLength = checkFrame(buf, at, RECORD_MAGIC);
      if (bodyLength !== 16 + seg.lengths[k]! || buf.readDoubleLE(at + 12) !== seg.seqs[k]) {
        // Damaged since it was written or recovered: the record is lost. Count it, never resend.
        this.damaged(seg.path, seg.offsets[k]!, seg.frameBytes(k));
        this.liveBytes -= seg.markAcked(k);
        this.liveRecords--;
        continue;
      }
      out.push({
        seq: seg.seqs[k]!,
        appendedAt: seg.appendedAt[k]!,
        payload: buf.toString(
          'utf8',
          at + RECORD_HEAD_BYTES,
          at + RECORD_HEAD_BYTES + seg.lengths[k]!,
        ),
      });
    }
    return true;
  }

  private findSegment(seq: number): Segment | undefined {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid]!.baseSeq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? segs[lo - 1] : undefined;
  }

  ack(seqs: readonly number[]): void {
    if (this.closed || seqs.length === 0) return;
    const newly: number[] = [];
    for (const seq of seqs) {
      if (!Number.isSafeInteger(seq)) continue;
      const seg = this.findSegment(seq);
      if (!seg) continue;
      const i = seg.indexOf(seq);
      if (i < 0) continue;
      const freed = seg.markAcked(i);
      if (freed === 0) continue;
      this.liveBytes -= freed;
      this.liveRecords--;
      newly.push(seq);
    }
    if (newly.length === 0) return;
    newly.sort((a, b) => a - b);
    try {
      const frame = encodeAckRanges(toRanges(newly));
      writeFully(this.ackFd as number, frame, null);
      this.ackLogBytes += frame.length;
      this.ackDirty = true;
    } catch (err) {
      this.ioError('cannot persist acks (they will be resent after a restart)', err);
    }
    this.deleteAckedSegments();
    if (this.ackLogBytes > ACK_LOG_COMPACT_BYTES) this.compactAckLog();
    this.scheduleSync();
  }

  private compactAckLog(): void {
    const path = join(this.realDir, ACK_LOG_FILE);
    try {
      // Make the acked segments' deletion durable before their acks leave the log.
      this.sync();
      writeFileAtomic(this.realDir, path, this.compactedAcks());
      if (this.ackFd !== undefined) this.closeFd(this.ackFd);
      this.ackFd = openSync(path, 'a');
      this.ackLogBytes = statSync(path).size;
      this.ackDirty = false;
    } catch (err) {
      this.ioError('cannot compact the ack log', err);
    }
  }

  stats(): SpoolStats {
    let oldest: number | undefined;
    for (const seg of this.segments) {
      if (seg.live > 0) {
        oldest = seg.appendedAt[seg.head];
        break;
      }
    }
    let diskBytes = 0;
    for (const seg of this.segments) diskBytes += seg.size;
    const s: SpoolStats = {
      records: this.liveRecords,
      bytes: this.liveBytes,
      corruptedSkipped: this.corruptedSkipped,
      droppedFull: this.droppedFull,
      droppedWriteError: this.droppedWriteError,
      droppedInvalid: this.droppedInvalid,
      corruptedBytes: this.corruptedBytes,
      segments: this.segments.length,
      diskBytes,
      durability: this.opts.durability,
    };
    if (oldest !== undefined) s.oldestAppendedAt = oldest;
    return s;
  }

  /** Effective options (segmentBytes after capping). */
  get options(): Readonly<Required<Omit<SpoolOptions, 'directory'>>> & { directory: string } {
    return { ...this.opts };
  }

  /** I/O errors (failed writes, fsyncs, deletes) since open. */
  get ioErrorCount(): number {
    return this.ioErrors;
  }

  private closeFds(): void {
    for (const seg of this.segments) {
      if (seg.fd !== undefined) {
        this.closeFd(seg.fd);
        seg.fd = undefined;
      }
    }
    if (this.ackFd !== undefined) {
      this.closeFd(this.ackFd);
      this.ackFd = undefined;
    }
  }

  close(): void {
    if (this.closed) return;
    try {
      this.sync();
    } catch (err) {
      this.ioError('final fsync failed', err);
    }
    this.closed = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.closeFds();
    releaseLock(this.lockPath);
    openInProcess.delete(this.realDir);
  }
}

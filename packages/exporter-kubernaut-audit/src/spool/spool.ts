// SPDX-License-Identifier: Apache-2.0
/*
 * spool/: the write-ahead log between intake and the sender (DESIGN §6). On-disk format and
 * recovery rules in FORMAT.md.
 *
 * Invariants:
 * - append() writes all frames of one call with ONE write; when it returns, what it reports as
 *   appended survives a process crash — or, with `deferWrite`, its write is under way on the
 *   thread pool (see "Deferred writes" below) — or, when the directory cannot be written right now
 *   (not yet opened, ENOSPC, EIO, EROFS), is held in memory (bounded by `memoryMaxBytes`) and
 *   written by a background retry, in order and before anything appended later. Events that fit
 *   neither are reported dropped, never silently. Never throws. (If the directory was removed
 *   under the spool, what append() wrote until that is noticed is copied back with the rest.)
 * - Seqs are unique and increasing for the life of the spool object, in append order; frames
 *   hold consecutive seqs. On disk, seqs are unique and increasing per directory across
 *   restarts. (When the directory opens late, recovered frames take seqs after those appended
 *   meanwhile; on disk every frame keeps its own.)
 * - Live frame bytes (frames with an unacknowledged event) plus reservations never exceed
 *   `maxBytes`; an append under a reservation cannot fail for lack of room.
 * - oldestUnackedSeq() and lastSeq() are O(1); nothing here reads the disk to answer them.
 * - Recovery reads only: it needs no free space. Writes it would like (tail truncation, log
 *   compaction, deleting acknowledged segments) are skipped when they fail and tried again later.
 * - A record acknowledged is never delivered again by a later process, however many restarts
 *   and log rewrites follow (only an ack not yet written at a crash is lost: at least once). A
 *   rewritten log acknowledges every disk seq of the kept segments but the unacknowledged ones,
 *   so fully acknowledged frames left on disk stay acknowledged while the log stays
 *   O(unacknowledged events); no disk seq a log names is given out again.
 * - Damage (torn tails, flipped bits) is skipped by checksums and counted: at recovery in
 *   stats().corrupted, while running also through onCorrupted listeners. Never fatal.
 * - One process owns a directory (a kernel lock, see lock.ts); a spool that cannot take it is
 *   memory-only and retries in the background (unref'd timer, backoff to 30 s).
 * - The directory removed or replaced while in use (a tmp cleaner, an rm -rf, a remount), or its
 *   lock file or a segment removed, is noticed within `checkIntervalMillis` [1 s] (nothing on
 *   the append path), reported (diag error, onDirectoryLost), and the spool re-homed: nothing is
 *   written through the lost files (only read), appends are held in memory until the directory
 *   is re-created, then the segments no longer in it are copied back in the background (by
 *   close() synchronously). A crash at any point loses no record and revives no ack. The
 *   orchestration and its invariants: rehoming.ts (a DirectoryKeeper the spool owns).
 * - Nothing here keeps the event loop alive: every timer is unref'd. Nothing here waits on the
 *   disk for a deletion: acknowledged segments are deleted on the thread pool, and the sent/ack
 *   log keeps acknowledging a segment until its file is gone (a crash in between revives no
 *   record).
 * - The frames append() returns hold their own bytes, unless setAppendBuffer() supplied a reused
 *   buffer for frames going to disk: then they are valid until the next append. Frames the spool
 *   keeps in memory always own their bytes.
 *
 * - Deferred writes (append's `deferWrite`, the batch drain's; never under a reservation, never
 *   into a reused buffer): the frames are placed (segment, offset, disk seqs) and registered at
 *   once, their bytes written by one pwrite on the thread pool, which runs whether or not the
 *   event loop does. Until it has landed the frames are read from memory (`_writing`), their
 *   segment's descriptor is not closed (sync.ts), and settleWrites() writes the same bytes at
 *   the same offsets synchronously (the `exit` hook, close(), flush, a directory found lost): a
 *   second copy of identical bytes, so whichever lands last changes nothing. At most
 *   MAX_DEFERRED_WRITES are under way: an append beyond (a thread pool busy with other work)
 *   settles them and writes synchronously, which bounds what a crash can find unwritten. A failed deferred
 *   write keeps its frames in memory and is written again, in place, by the background retry;
 *   appends are held in memory behind it meanwhile (in order, as after a failed write). A crash
 *   in between leaves a damaged region where it should be (skipped and counted at recovery) and
 *   loses its records, as it loses frames held in memory.
 *
 * Beside it: recovery of a directory (recovery.ts), the fsync cadence (sync.ts), the frame and
 * seq tables (table.ts), the kernel lock (lock.ts), meta.json (meta.ts), format 1 (legacy.ts),
 * the removed directory's re-homing (rehoming.ts) and its check and copy (rehome.ts).
 */
import { join } from 'node:path';
import { LOG_FILE, SEGMENT_NAME } from '@kubernaut/audit-spool-format';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../measure/diag.ts';
import {
  ACK_MAGIC,
  checkFrame,
  copyFrame,
  decodeFrame,
  encodeLogFrame,
  INDEX_ENTRY_BYTES,
  type IndexMemory,
  patchFirstSeq,
  planFrames,
  SENT_MAGIC,
  writeFrame,
} from './frame.ts';
import { nodeFs, type SpoolFs } from './fs.ts';
import { closeQuietly, ensureDirectory, readAt, writeFileAtomic, writeFully } from './fsutil.ts';
import { hasLegacySegments, LEGACY_LOCK, legacyLockHolder, readLegacySpool } from './legacy.ts';
import { acquireSpoolLock } from './lock.ts';
import { newMeta, readMeta, SPOOL_FORMAT, writeMeta } from './meta.ts';
import { type Recovered, recoverSegments, type Segment, segmentPath } from './recovery.ts';
import { DirectoryKeeper, type RehomePort } from './rehoming.ts';
import { type SyncedFile, SyncScheduler } from './sync.ts';
import { ACKED, FrameTable, MEMORY, SENT, SENT_BEFORE, SeqStates } from './table.ts';
import type {
  AppendOptions,
  AppendOutcome,
  AuditSpool,
  EncodedEvent,
  Frame,
  Reservation,
  SeqRange,
  SpoolMeta,
  SpoolStats,
} from './types.ts';

export { LOG_FILE };

/** Bound of live frame bytes [2 GiB]: ≈ 1.9 million records of ≈ 1.1 KB. */
export const DEFAULT_SPOOL_MAX_BYTES = 2 * 1024 * 1024 * 1024;
/** Bound of frames held in memory while the directory cannot be written [64 MiB]. */
export const DEFAULT_MEMORY_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_FSYNC_INTERVAL_MILLIS = 1000;
export const DEFAULT_LANES = 4;
/** How often the directory is checked for removal or replacement [1 s]. */
export const DEFAULT_CHECK_INTERVAL_MILLIS = 1000;
const LOG_COMPACT_BYTES = 1024 * 1024;
const MIN_SEGMENT_BYTES = 64 * 1024;
const RETRY_INITIAL_MILLIS = 1000;
const RETRY_MAX_MILLIS = 30_000;
/** A drained spool starts a new segment once the active one holds this much acknowledged data. */
const ROTATE_WHEN_DRAINED_BYTES = 4 * 1024 * 1024;
/** Deferred writes under way at most; an append beyond writes them, and itself, synchronously. */
export const MAX_DEFERRED_WRITES = 4;

/** Every counter of {@link SpoolStats}, all reported (see there). */
export interface SpoolCounters extends SpoolStats {
  oldestAppendedAt: number | undefined;
  corrupted: number;
  reservedBytes: number;
  droppedFull: number;
  droppedError: number;
  diskBytes: number;
  segments: number;
  maxBytes: number;
}

/** Options of {@link openSpool}. */
export interface SpoolOptions {
  /** Directory of the spool; undefined: memory only (nothing survives the process). */
  directory?: string | undefined;
  /** Bound of live frame bytes [2 GiB]. */
  maxBytes?: number;
  /** Frames held in memory while the directory cannot be written [64 MiB]. */
  memoryMaxBytes?: number;
  /** Lanes of a new spool [4] (an existing spool keeps its own). */
  lanes?: number;
  /** Normalised DataStorage URL recorded in a new spool's meta. */
  destination?: string | undefined;
  /** Service name recorded in a new spool's meta. */
  service?: string | undefined;
  /** fsync cadence [1000]; 0 = every write. */
  fsyncIntervalMillis?: number;
  /** Segment rotation size [64 MiB]. */
  segmentBytes?: number;
  /** Session id written into lock.owner. */
  session?: string;
  /** Filesystem seam [node:fs]. */
  fs?: SpoolFs;
  /** Lock kind ['kernel', falling back to 'file' when node:sqlite cannot be loaded]. */
  lockMode?: 'kernel' | 'file';
  /** Called when the directory opens (also late, after a background retry). */
  onOpen?: (spool: Spool) => void;
  /** Called when the directory cannot be opened or written (each time it is reported). */
  onUnavailable?: (error: Error) => void;
  /**
   * How often the directory is checked for removal or replacement (an unref'd timer; a stat of
   * the directory and of the lock file, an fstat of two segments) [1000]; 0 = never
   * (checkDirectory() still checks when called).
   */
  checkIntervalMillis?: number;
  /**
   * Called each time the directory (or its lock file, or a segment) is found removed or
   * replaced while in use, with what was found (the spool reports it through diag too).
   */
  onDirectoryLost?: (what: string) => void;
}

/** Why a directory could not be opened. */
export class SpoolOpenError extends Error {
  readonly code: 'locked' | 'unwritable' | 'newer_format';
  constructor(code: SpoolOpenError['code'], directory: string, message: string, cause?: unknown) {
    super(`audit spool ${directory}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'SpoolOpenError';
    this.code = code;
  }
}

/** Directories (real paths) with a spool open in this process. */
const openInProcess = new Set<string>();
const spoolDiag = new ComponentDiag('kubernaut-audit spool');

class HeldReservation implements Reservation {
  readonly bytes: number;
  remaining: number;
  private readonly _spool: Spool;
  constructor(spool: Spool, bytes: number) {
    this.bytes = bytes;
    this.remaining = bytes;
    this._spool = spool;
  }
  release(): void {
    this._spool.releaseReservation(this);
  }
}

/** The spool (file-backed, or memory only). Use {@link openSpool}. */
export class Spool implements AuditSpool {
  private readonly _fs: SpoolFs;
  private readonly _dir: string | undefined;
  private readonly _maxBytes: number;
  private readonly _memMax: number;
  private readonly _segmentBytes: number;
  private readonly _opts: SpoolOptions;
  private _meta: SpoolMeta;
  private _createdAt = new Date().toISOString();
  private _opened = false;
  private _closed = false;
  private _realDir: string | undefined;
  private _lastError: Error | undefined;
  private _retryTimer: NodeJS.Timeout | undefined;
  private _retryDelay = RETRY_INITIAL_MILLIS;
  private _noRetry = false;
  private _migrating: string[] | undefined;

  private readonly _t = new FrameTable();
  private readonly _st = new SeqStates();
  private _nextSeq = 1;
  private _nextDisk = 1;
  private readonly _segs: Segment[] = [];
  private readonly _segById = new Map<number, Segment>();
  /**
   * Acknowledged segments out of the spool whose file is being deleted on the thread pool
   * (`pending`), or whose deletion failed and is tried again at the next acknowledgement. Until
   * the file is gone the sent/ack log keeps acknowledging their seqs (see _deleteDeadSegments).
   */
  private readonly _deleting = new Map<Segment, 'pending' | 'failed'>();
  private _segIds = 0;
  private _active: Segment | undefined;
  /** The sent/ack log (its descriptor once open). */
  private readonly _logFile: SyncedFile = { fd: undefined, dirty: false, path: 'the sent/ack log' };
  private _logBytes = 0;
  private readonly _sync: SyncScheduler;

  /** Deferred writes not yet landed (in placement order), and their frames by frame number. */
  private _writes: DeferredWrite[] = [];
  private readonly _writing = new Map<number, Frame>();
  /** Deferred writes that failed, to be written again in place (see the invariant above). */
  private _failedWrites = 0;

  /** Frames held in memory (not on disk), by frame number; `_pending` is their order. */
  private readonly _mem = new Map<number, Frame>();
  private _pending: number[] = [];
  private _memBytes = 0;

  private _liveBytes = 0;
  private _liveRecords = 0;
  /** Watches the directory; re-homes the spool when it is removed or replaced (rehoming.ts). */
  private readonly _keeper: DirectoryKeeper;
  private _reservedBytes = 0;
  private _corrupted = 0;
  private _droppedFull = 0;
  private _droppedError = 0;
  private _ioErrors = 0;
  private readonly _corruptListeners: Array<(n: number) => void> = [];
  /** Supplies a reused buffer for an append whose frames nobody will keep (see setAppendBuffer). */
  private _appendBuffer: ((bytes: number) => Buffer | undefined) | undefined;
  private _tail: SpoolTailInfo | undefined;

  constructor(options: SpoolOptions) {
    this._opts = options;
    this._fs = options.fs ?? nodeFs;
    this._dir = options.directory;
    this._maxBytes = positive(options.maxBytes, DEFAULT_SPOOL_MAX_BYTES);
    this._memMax =
      this._dir === undefined
        ? this._maxBytes
        : Math.min(this._maxBytes, positive(options.memoryMaxBytes, DEFAULT_MEMORY_MAX_BYTES));
    this._segmentBytes = Math.max(
      MIN_SEGMENT_BYTES,
      Math.min(positive(options.segmentBytes, DEFAULT_SEGMENT_BYTES), 256 * 1024 * 1024),
    );
    const segs = this._segs;
    const log = this._logFile;
    this._sync = new SyncScheduler({
      fs: this._fs,
      intervalMillis: Math.max(0, options.fsyncIntervalMillis ?? DEFAULT_FSYNC_INTERVAL_MILLIS),
      *files() {
        yield* segs;
        yield log;
      },
      directory: () => this._realDir,
      onError: (what, err) => this._ioError(what, err),
    });
    const lanes = Math.min(64, Math.max(1, Math.floor(options.lanes ?? DEFAULT_LANES)));
    this._meta = newMeta(lanes, options.destination, options.service);
    this._keeper = new DirectoryKeeper(this._rehomePort(), {
      checkIntervalMillis: Math.max(
        0,
        options.checkIntervalMillis ?? DEFAULT_CHECK_INTERVAL_MILLIS,
      ),
      onDirectoryLost: (what) => this._opts.onDirectoryLost?.(what),
      diag: spoolDiag,
    });
  }

  // ------------------------------------------------------------------ opening

  /** Opens the directory now; on failure stays memory-only and retries in the background. */
  start(): this {
    if (this._dir === undefined) return this;
    try {
      this._open();
    } catch (err) {
      this._unavailable(err);
    }
    return this;
  }

  get kind(): 'file' | 'memory' {
    return this._opened ? 'file' : 'memory';
  }

  get meta(): SpoolMeta {
    return this._meta;
  }

  /** The spool directory (undefined: memory only). */
  get directory(): string | undefined {
    return this._dir;
  }

  /** Why the directory is not (or not fully) usable, when it is not. */
  get lastError(): Error | undefined {
    return this._lastError;
  }

  /**
   * True while frames wait in memory to be written, or are on segment files no longer in the
   * directory (removed with it, not yet copied back), or the directory is lost: a crash now
   * loses them.
   */
  get holdsUnwritten(): boolean {
    return (
      this._pending.length > 0 ||
      this._failedWrites > 0 ||
      this._keeper.lost ||
      this._keeper.orphans > 0
    );
  }

  /**
   * Unacknowledged records not on disk in the directory (spool off, the directory cannot be
   * written, or their segment file was removed with it and is not copied back yet): lost if the
   * process ends now. O(frames held), O(frames) while segments are orphaned.
   */
  get unwrittenRecords(): number {
    const t = this._t;
    let n = 0;
    for (const f of this._pending) n += t.live[t.row(f)] ?? 0;
    for (const w of this._writes) {
      if (w.state !== 'failed') continue;
      for (const f of w.frames) if (this._writing.has(f)) n += t.live[t.row(f)] ?? 0;
    }
    if (this._keeper.orphans === 0) return n;
    for (let r = 0; r < t.rows; r++) {
      if (t.live[r] === 0) continue;
      if (this._segById.get(t.seg[r] as number)?.orphaned === true) n += t.live[r] as number;
    }
    return n;
  }

  /** The highest provenance seq found on the spool when it was opened, with its event's JSON. */
  get recoveredTail(): SpoolTailInfo | undefined {
    return this._tail;
  }

  private _unavailable(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this._lastError = e;
    if (e instanceof SpoolOpenError && e.code === 'newer_format') this._noRetry = true;
    try {
      this._opts.onUnavailable?.(e);
    } catch {
      // a listener must not break the spool
    }
    this._scheduleRetry();
  }

  /** Retries the held frames after the shortest delay, whatever the backoff had grown to. */
  private _retrySoon(): void {
    if (this._retryTimer !== undefined) clearTimeout(this._retryTimer);
    this._retryTimer = undefined;
    this._retryDelay = RETRY_INITIAL_MILLIS;
    this._scheduleRetry();
  }

  private _scheduleRetry(): void {
    if (this._closed || this._noRetry || this._retryTimer !== undefined) return;
    const delay = this._retryDelay;
    this._retryDelay = Math.min(RETRY_MAX_MILLIS, this._retryDelay * 2);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = undefined;
      this.retryNow();
    }, delay);
    this._retryTimer.unref();
  }

  /** Tries now what the background retry tries: open the directory, write held frames. */
  retryNow(): void {
    if (this._closed) return;
    try {
      if (!this._opened) this._open();
      else this._keeper.restore(); // a failed write may be why we are here
      if (this._failedWrites > 0) this._settle(true);
      if (this._pending.length > 0) this._writePending();
      this._retryDelay = RETRY_INITIAL_MILLIS;
      this._lastError = undefined;
    } catch (err) {
      if (this._keeper.lost) spoolDiag.report('warn', `lost:${this._dir}`, errorText(err));
      this._unavailable(err);
    }
    this._keeper.copySoon();
  }

  /**
   * Creates the directory when missing (with `mode`), and returns its real path and stat.
   * Throws SpoolOpenError('unwritable') saying `failure` when it cannot be created or used.
   */
  private _useDirectory(
    failure: string,
    mode?: number,
  ): { dir: string; real: string; st: ReturnType<SpoolFs['statSync']> } {
    const dir = this._dir as string;
    const fs = this._fs;
    try {
      ensureDirectory(fs, dir, mode);
      const real = fs.realpathSync(dir);
      const st = fs.statSync(real);
      if (!st.isDirectory()) throw new Error('not a directory');
      return { dir, real, st };
    } catch (err) {
      throw new SpoolOpenError('unwritable', dir, `${failure}: ${errorText(err)}`, err);
    }
  }

  private _open(): void {
    const fs = this._fs;
    const { dir, real, st } = this._useDirectory('cannot create or use the directory');
    if (openInProcess.has(real)) {
      throw new SpoolOpenError('locked', dir, 'locked by another spool of this process');
    }
    const names = fs.readdirSync(real);
    const before = readMeta(fs, real);
    const formatOne =
      (before.kind === 'ok' && before.meta.format === 1) ||
      (before.kind !== 'ok' && hasLegacySegments(names));
    if (formatOne && names.includes(LEGACY_LOCK)) {
      // A format 1 process may still run on this directory (a rolling upgrade): respect its lock.
      const reason = legacyLockHolder(fs, join(real, LEGACY_LOCK));
      if (reason !== undefined) throw new SpoolOpenError('locked', dir, `locked: ${reason}`);
    }
    let attempt: ReturnType<typeof acquireSpoolLock>;
    try {
      attempt = this._acquireLock(real);
    } catch (err) {
      throw new SpoolOpenError('unwritable', dir, `cannot take the lock: ${errorText(err)}`, err);
    }
    if (!attempt.ok) throw new SpoolOpenError('locked', dir, attempt.reason);
    const lock = attempt.lock;
    try {
      this._recoverDirectory(real, names);
    } catch (err) {
      lock.release();
      this._closeAllFds();
      this._segs.length = 0;
      this._segById.clear();
      this._active = undefined;
      if (err instanceof SpoolOpenError) throw err;
      throw new SpoolOpenError('unwritable', dir, `cannot open: ${errorText(err)}`, err);
    }
    this._realDir = real;
    this._opened = true;
    openInProcess.add(real);
    this._keeper.watch(st, lock);
    if (this._corrupted > 0) {
      spoolDiag.warn(`${dir}: skipped ${this._corrupted} damaged region(s) while recovering`);
    }
    this._notifyOpen();
  }

  private _acquireLock(real: string): ReturnType<typeof acquireSpoolLock> {
    return acquireSpoolLock(this._fs, real, this._opts.session ?? this._meta.producerId, {
      ...(this._opts.lockMode === undefined ? {} : { mode: this._opts.lockMode }),
    });
  }

  private _notifyOpen(): void {
    try {
      this._opts.onOpen?.(this);
    } catch {
      // a listener must not break the spool
    }
  }

  // ------------------------------------------------------------------ the directory removed

  /**
   * Checks that the directory is still the one the spool opened: there, a directory, the same
   * one (dev + ino), its lock file the one taken, the active segment (and one more, round robin)
   * still linked. When it is not, reports it, then re-creates the directory and writes every
   * unacknowledged record back into it (see rehoming.ts). Called every `checkIntervalMillis` by
   * an unref'd timer; callable any time (tests). Returns what was found wrong, undefined when
   * all is well or nothing is open to check. Never throws.
   */
  checkDirectory(): string | undefined {
    if (this._closed || !this._opened || this._keeper.lost) return undefined;
    const found = this._keeper.noticeLoss();
    if (found !== undefined) this.retryNow();
    return found;
  }

  /** What the directory keeper sees of the spool and may change (see RehomePort). */
  private _rehomePort(): RehomePort {
    return {
      fs: this._fs,
      directory: this._dir as string,
      segments: this._segs,
      sync: this._sync,
      has: (seg) => this._segById.has(seg.id),
      closed: () => this._closed,
      active: () => this._active,
      setActive: (seg) => {
        this._active = seg;
      },
      openInProcess: (real) => openInProcess.has(real),
      useDirectory: (failure, mode) => this._useDirectory(failure, mode),
      acquireLock: (real) => this._acquireLock(real),
      openError: (code, dir, message, cause) => new SpoolOpenError(code, dir, message, cause),
      meta: () => ({ meta: this._meta, createdAt: this._createdAt }),
      compactedLog: () => this._compactedLog(),
      detach: () => {
        this.settleWrites(); // what is under way lands in the files the copy will read
        this._active = undefined;
        if (this._logFile.fd !== undefined) this._sync.closeFd(this._logFile.fd);
        this._logFile.fd = undefined;
        this._logFile.dirty = false;
        this._logBytes = 0;
        if (this._realDir !== undefined) openInProcess.delete(this._realDir);
        this._realDir = undefined;
        this._sync.directoryDirty = false;
      },
      attach: (real, logFd, logBytes) => {
        this._logBytes = logBytes;
        this._logFile.fd = logFd;
        this._logFile.dirty = false;
        this._realDir = real;
        openInProcess.add(real);
      },
      dropSegment: (seg) => this._dropSegment(seg),
      loseSegment: (seg) => this._loseSegment(seg),
      unwrittenRecords: () => this.unwrittenRecords,
      reopened: () => {
        this._notifyOpen();
        this._deleteDeadSegments();
      },
      ioError: (what, err) => this._ioError(what, err),
      failed: (err) => {
        this._lastError = err;
        this._scheduleRetry();
      },
      check: () => this.checkDirectory(),
    };
  }

  /** Removes a segment from the spool (its frames are acknowledged or lost); never unlinks. */
  private _dropSegment(seg: Segment): void {
    if (seg.fd !== undefined) this._sync.closeFd(seg.fd);
    seg.fd = undefined;
    const at = this._segs.indexOf(seg);
    if (at >= 0) this._segs.splice(at, 1);
    this._segById.delete(seg.id);
    this._keeper.unorphan(seg);
    if (this._active === seg) this._active = undefined;
  }

  /** An orphaned segment that cannot be read (no descriptor): its records are lost, reported. */
  private _loseSegment(seg: Segment): void {
    const t = this._t;
    const frames: number[] = [];
    for (let f = t.base; f < t.end; f++) {
      const r = t.row(f);
      if (t.seg[r] === seg.id && (t.live[r] as number) > 0) frames.push(f);
    }
    for (const f of frames) {
      if (f >= t.base)
        this._lose(f, `${seg.path} was removed with the directory before it could be copied back`);
    }
    if (this._segById.has(seg.id)) this._dropSegment(seg);
  }

  private _recoverDirectory(real: string, names: string[]): void {
    const fs = this._fs;
    const read = readMeta(fs, real);
    if (read.kind === 'newer') {
      throw new SpoolOpenError(
        'newer_format',
        this._dir as string,
        `holds spool format ${read.format}, newer than this version understands (${SPOOL_FORMAT}); deliver it with that version, or give this process another directory`,
      );
    }
    const legacy = read.kind === 'ok' ? read.meta.format === 1 : hasLegacySegments(names);
    const late = this._t.rows > 0 || this._nextSeq > 1;
    if (read.kind === 'ok' && !legacy) {
      // A directory opened late keeps this process's lanes (frames map onto them).
      this._meta = late ? { ...read.meta, lanes: this._meta.lanes } : read.meta;
      this._createdAt = read.createdAt;
    } else {
      const lanes = this._meta.lanes;
      const producerId = read.kind === 'ok' ? read.meta.producerId : this._meta.producerId;
      this._meta = { ...newMeta(lanes, this._opts.destination, this._opts.service), producerId };
      if (read.kind === 'damaged') {
        spoolDiag.warn(`${this._dir}: meta.json was damaged; a new producer id was created`);
      }
    }
    if (legacy) {
      this._recoverLegacy(real, names);
      return;
    }
    if (read.kind !== 'ok') writeMeta(fs, real, this._meta, this._createdAt);
    const rec = recoverSegments(fs, real, names, this._meta.lanes);
    this._install(rec, real);
  }

  /** Format 1: its unacknowledged records become frames held in memory, written as format 2. */
  private _recoverLegacy(real: string, names: string[]): void {
    const fs = this._fs;
    // A migration interrupted before its commit (meta.json format 2) left format 2 files: redo.
    for (const n of names) {
      if (SEGMENT_NAME.test(n) || n === LOG_FILE) {
        try {
          fs.unlinkSync(join(real, n));
        } catch {
          // recovery needs no write: the retry removes it
        }
      }
    }
    const legacy = readLegacySpool(fs, real);
    this._corrupted += legacy.corrupted;
    this._nextDisk = Math.max(this._nextDisk, legacy.lastSeq + 1);
    const lanes = this._meta.lanes;
    const events: EncodedEvent[] = legacy.records.map((r) => ({
      json: r.eventJson,
      bytes: Buffer.byteLength(r.eventJson),
      emittedAt: r.emittedAt,
      provSeq: r.provSeq,
      lane: laneOf(r.correlationId, lanes),
    }));
    // Per lane, in their order (the append contract).
    events.sort((a, b) => a.lane - b.lane);
    this._migrating = legacy.files;
    if (events.length > 0) this._appendFrames(events, undefined, true);
    spoolDiag.warn(
      `${this._dir}: migrating a format 1 spool (${events.length} undelivered record(s)) to format ${SPOOL_FORMAT}`,
    );
    this._realDir = real;
    try {
      this._writePending(real);
    } catch (err) {
      // No room yet: the records are served from memory; the retry writes them and commits.
      this._unavailable(err);
    }
  }

  /** Installs what recovery found (frames, acks, sent marks) and opens the files for writing. */
  private _install(rec: Recovered, real: string): void {
    const fs = this._fs;
    this._corrupted += rec.corrupted;
    if (rec.missing > 0) {
      spoolDiag.warn(
        `${this._dir}: ${rec.missing} unacknowledged record(s) are lost from the spool: no intact frame holds them (damaged frames, a segment truncated, emptied or removed, or a write lost with the power); counted in kubernaut.audit.spool.corrupted`,
      );
    }
    for (const s of rec.segments) {
      s.id = ++this._segIds;
      this._segs.push(s);
      this._segById.set(s.id, s);
    }
    // No disk seq the log names is given out again: an acknowledgement there must never cover a
    // new frame, also when the frames it was for are gone (an unsynced tail lost with the power,
    // damage) and the log could not be rewritten.
    let named = 0;
    for (const list of [rec.acked, rec.sent])
      for (const [, to] of list) named = Math.max(named, to);
    this._nextDisk = Math.max(this._nextDisk, rec.nextDisk, named + 1);
    const first = rec.frames[0]?.disk ?? rec.nextDisk;
    const flags = new Uint8Array(Math.max(0, rec.nextDisk - first));
    const mark = (ranges: Array<[number, number]>, bit: number) => {
      for (const [from, to] of ranges) {
        const a = Math.max(from, first);
        const b = Math.min(to, rec.nextDisk - 1);
        for (let s = a; s <= b; s++) (flags[s - first] as number) |= bit;
      }
    };
    mark(rec.acked, ACKED);
    mark(rec.sent, SENT);
    // Seqs: disk seqs when nothing was appended yet, else after what was appended meanwhile.
    const fresh = this._t.rows === 0 && this._nextSeq === 1;
    if (fresh) {
      this._nextSeq = rec.nextDisk;
      this._st.reset(first);
    }
    for (const f of rec.frames) {
      let live = 0;
      for (let i = 0; i < f.count; i++)
        if (((flags[f.disk + i - first] as number) & ACKED) === 0) live++;
      if (live === 0) continue; // stays acknowledged: the rewritten log acks its span (_compactedLog)
      const seq = fresh ? f.disk : this._nextSeq;
      if (!fresh) this._nextSeq += f.count;
      this._st.extendAcked(seq); // seqs of frames acknowledged whole are not in the table
      this._st.extend(seq + f.count);
      for (let i = 0; i < f.count; i++) {
        const b = flags[f.disk + i - first] as number;
        if (b & ACKED) this._st.set(seq + i, ACKED);
        else if (b & SENT) this._st.set(seq + i, SENT_BEFORE);
      }
      this._t.push(seq, f.disk, f.count, f.lane, live, f.bytes, f.offset, f.seg.id, f.appended);
      f.seg.liveFrames++;
      this._liveBytes += f.bytes;
      this._liveRecords += live;
    }
    if (fresh) this._st.extendAcked(this._nextSeq);
    this._st.advance();
    if (rec.tail !== undefined) {
      const t = rec.tail;
      try {
        const fd = fs.openSync(t.seg.path, 'r');
        try {
          const buf = readAt(fs, fd, t.offset, t.bytes);
          const head = checkFrame(buf, 0);
          const frame = head && decodeFrame(buf, 0, head);
          if (frame !== undefined) {
            const o = frame.offset[t.index] as number;
            this._tail = {
              provSeq: t.provSeq,
              json: frame.body.toString('utf8', o, o + (frame.length[t.index] as number)),
            };
          }
        } finally {
          closeQuietly(fs, fd);
        }
      } catch {
        this._tail = { provSeq: t.provSeq, json: undefined };
      }
    }
    // The last segment takes new frames when it has room; its torn tail is cut (best effort).
    const last = this._segs[this._segs.length - 1];
    if (last !== undefined && last.size < this._segmentBytes) {
      try {
        last.fd = fs.openSync(last.path, 'r+');
        const onDisk = fs.fstatSync(last.fd).size;
        if (onDisk > last.size) fs.ftruncateSync(last.fd, last.size);
        this._active = last;
      } catch {
        if (last.fd !== undefined) closeQuietly(fs, last.fd);
        last.fd = undefined;
      }
    }
    this._openLog(real, rec);
    this._deleteDeadSegments();
    // Every kept segment stays open: if the directory is removed while in use, what they hold
    // can still be read and copied back (best effort: opened when read otherwise).
    for (const seg of this._segs) {
      try {
        seg.fd ??= fs.openSync(seg.path, 'r');
      } catch {
        // opened again when read
      }
    }
  }

  /** Compacts the sent/ack log to what still matters, and opens it for appending. */
  private _openLog(real: string, rec: Recovered | undefined): void {
    const fs = this._fs;
    const path = join(real, LOG_FILE);
    if (rec !== undefined) {
      try {
        writeFileAtomic(fs, real, path, this._compactedLog());
      } catch {
        // no room: keep the old log, appends follow it
      }
    }
    try {
      this._logFile.fd = fs.openSync(path, 'a', 0o600);
      this._logBytes = fs.fstatSync(this._logFile.fd).size;
    } catch (err) {
      this._ioError('cannot open the sent/ack log (acknowledgements are kept in memory only)', err);
    }
  }

  // ------------------------------------------------------------------ append

  append(
    events: readonly EncodedEvent[],
    reservation?: Reservation,
    options?: AppendOptions,
  ): AppendOutcome {
    try {
      const defer = options?.deferWrite === true && reservation === undefined;
      return this._appendFrames(events, reservation as HeldReservation | undefined, false, defer);
    } catch (err) {
      // Never throws: an unexpected error drops the call, reported.
      this._droppedError += events.length;
      const e = err instanceof Error ? err : new Error(String(err));
      return { frames: [], dropped: [{ events: [...events], reason: 'error', error: e }] };
    }
  }

  private _appendFrames(
    events: readonly EncodedEvent[],
    reservation: HeldReservation | undefined,
    migrating: boolean,
    deferWrite = false,
  ): AppendOutcome {
    const out: AppendOutcome = { frames: [], dropped: [] };
    if (events.length === 0) return out;
    if (this._closed) {
      this._droppedError += events.length;
      out.dropped.push({
        events: [...events],
        reason: 'closed',
        error: new Error('the audit spool is closed'),
      });
      return out;
    }
    const fromReservation = reservation?.remaining ?? 0;
    let room = this._maxBytes - this._liveBytes - this._reservedBytes + fromReservation;
    const plan = planFrames(events, (add) => {
      if (add > room) return false;
      room -= add;
      return true;
    });
    if (plan.dropped.length > 0 && reservation !== undefined) {
      // Under a reservation an append is all or nothing: the receiver that reserved refuses the
      // whole request, and a retry of it must not duplicate a part that was kept.
      this._droppedFull += events.length;
      out.dropped.push({ events: [...events], reason: 'full' });
      return out;
    }
    if (plan.dropped.length > 0) {
      this._droppedFull += plan.dropped.length;
      out.dropped.push({
        events: plan.dropped.map((i) => events[i] as EncodedEvent),
        reason: 'full',
      });
    }
    if (plan.frames.length === 0) return out;
    let total = 0;
    for (const f of plan.frames) total += f.frameBytes;
    if (deferWrite && this._writes.length >= MAX_DEFERRED_WRITES) {
      // The thread pool is behind (busy with the application's own work?): what is under way
      // is written now, and this append too, so that a crash never finds more than that bound
      // (or, when one of them fails now, this append is held in memory behind it).
      this.settleWrites();
      deferWrite = false;
    }
    const toDisk =
      this._opened &&
      !this._keeper.lost &&
      this._pending.length === 0 &&
      this._failedWrites === 0 &&
      !migrating;
    if (!toDisk && !migrating && this._memBytes + total > this._memMax) {
      const n = plan.frames.reduce((s, f) => s + (f.to - f.from), 0);
      const held = this._dir === undefined;
      if (held) this._droppedFull += n;
      else this._droppedError += n;
      out.dropped.push({
        events: plan.frames.flatMap((f) => events.slice(f.from, f.to)),
        reason: held ? 'full' : 'error',
        ...(held
          ? {}
          : { error: this._lastError ?? new Error('the spool directory cannot be written') }),
      });
      return out;
    }
    // A reused buffer only for frames that go to disk (frames held in memory keep their bytes).
    const reused = toDisk ? this._appendBuffer?.(total) : undefined;
    const buf =
      reused !== undefined && reused.length === total ? reused : Buffer.allocUnsafe(total);
    const defer = toDisk && deferWrite && buf !== reused;
    const appendedAt = Date.now();
    let at = 0;
    let seq = this._nextSeq;
    const frames: Frame[] = [];
    for (const f of plan.frames) {
      frames.push(
        writeFrame(buf, at, f.lane, seq, appendedAt, events.slice(f.from, f.to), f.frameBytes),
      );
      at += f.frameBytes;
      seq += f.to - f.from;
    }
    let segment: Segment | undefined;
    let offset = 0;
    if (toDisk) {
      try {
        const delta = this._nextDisk - this._nextSeq;
        if (delta !== 0) {
          let p = 0;
          for (const f of frames) {
            patchFirstSeq(buf, p, f.firstSeq + delta, f.frameBytes);
            p += f.frameBytes;
          }
        }
        const w = defer
          ? this._place(buf.length, this._nextDisk)
          : this._writeFrames(buf, this._nextDisk);
        segment = w.segment;
        offset = w.offset;
      } catch (err) {
        this._ioError(
          `append of ${frames.length} frame(s) failed; held in memory and retried`,
          err,
        );
        this._lastError = err instanceof Error ? err : new Error(String(err));
        if (this._memBytes + total > this._memMax) {
          const n = frames.reduce((s, f) => s + f.count, 0);
          this._droppedError += n;
          out.dropped.push({
            events: plan.frames.flatMap((f) => events.slice(f.from, f.to)),
            reason: 'error',
            error: this._lastError,
          });
          return out;
        }
        this._unavailable(err);
        if (buf === reused) ownBytes(frames, buf); // held in memory: off the reused buffer
      }
    }
    // Register the frames.
    let off = offset;
    const deferred: number[] | undefined = defer && segment !== undefined ? [] : undefined;
    for (const frame of frames) {
      const onDisk = segment !== undefined;
      const n = this._t.push(
        frame.firstSeq,
        onDisk ? frame.firstSeq + (this._nextDisk - this._nextSeq) : 0,
        frame.count,
        frame.lane,
        frame.count,
        frame.frameBytes,
        onDisk ? off : 0,
        onDisk ? (segment as Segment).id : MEMORY,
        appendedAt,
      );
      if (onDisk) {
        (segment as Segment).liveFrames++;
        off += frame.frameBytes;
        if (deferred !== undefined) {
          deferred.push(n);
          this._writing.set(n, frame);
        }
      } else {
        this._mem.set(n, frame);
        this._pending.push(n);
        this._memBytes += frame.frameBytes;
      }
      this._liveRecords += frame.count;
    }
    if (segment !== undefined) this._nextDisk += seq - this._nextSeq;
    this._nextSeq = seq;
    this._st.extend(seq);
    this._liveBytes += total;
    if (reservation !== undefined) {
      const used = Math.min(reservation.remaining, total);
      reservation.remaining -= used;
      this._reservedBytes -= used;
    }
    if (deferred !== undefined) this._writeBehind(segment as Segment, offset, buf, deferred);
    out.frames = frames;
    return out;
  }

  /** Where `bytes` of frames whose first disk seq is `firstDisk` go: the active segment's end. */
  private _place(bytes: number, firstDisk: number): { segment: Segment; offset: number } {
    let seg = this._active;
    if (seg === undefined || (seg.size > 0 && seg.size + bytes > this._segmentBytes)) {
      seg = this._createSegment(firstDisk);
    }
    const at = seg.size;
    seg.size = at + bytes;
    return { segment: seg, offset: at };
  }

  /** Starts the deferred write of frames `frames` (placed at `at` of `seg`) on the thread pool. */
  private _writeBehind(seg: Segment, at: number, buf: Buffer, frames: number[]): void {
    const w: DeferredWrite = { seg, fd: seg.fd as number, at, buf, frames, state: 'writing' };
    this._writes.push(w);
    this._sync.writeBehind(seg, buf, at, (err) => {
      if (w.state !== 'writing') return; // settled synchronously meanwhile
      if (err === null) this._landed(w);
      else this._writeFailed(w, err);
    });
  }

  /** A deferred write is on disk: its frames are read from there from now on. */
  private _landed(w: DeferredWrite): void {
    if (w.state === 'failed') this._failedWrites--;
    w.state = 'done';
    for (const f of w.frames) this._writing.delete(f);
    const i = this._writes.indexOf(w);
    if (i >= 0) this._writes.splice(i, 1);
  }

  private _writeFailed(w: DeferredWrite, err: unknown): void {
    if (w.state !== 'failed') this._failedWrites++;
    w.state = 'failed';
    this._ioError(`a write of ${w.frames.length} frame(s) failed; held in memory and retried`, err);
    this._lastError = err instanceof Error ? err : new Error(String(err));
    this._unavailable(err);
  }

  /**
   * Writes every deferred write not known to have landed, synchronously, at its offset (the
   * same bytes: one still under way on the thread pool changes nothing when it lands). Used by
   * the `exit` hook, flush and close. Never throws: a write that fails is retried later.
   */
  settleWrites(): void {
    if (this._writes.length === 0) return;
    try {
      this._settle(false);
    } catch {
      // reported in _settle; the background retry tries again
    }
  }

  /** Writes the deferred writes still unwritten (only the failed ones with `failedOnly`). */
  private _settle(failedOnly: boolean): void {
    let wrote = false;
    let error: unknown;
    for (const w of [...this._writes]) {
      if (failedOnly && w.state !== 'failed') continue; // (landed ones have left _writes)
      if (!w.frames.some((f) => this._writing.has(f))) {
        this._landed(w); // acknowledged whole meanwhile: nothing left to write
        continue;
      }
      // A failed write goes through the segment's current descriptor (its file may have been
      // copied back into a re-created directory); one under way through its own, still open.
      const fd = w.state === 'failed' ? w.seg.fd : w.fd;
      if (fd === undefined || (w.state === 'failed' && w.seg.orphaned === true)) {
        error ??= new Error(`${w.seg.path} cannot be written now`);
        continue;
      }
      try {
        writeFully(this._fs, fd, w.buf, w.at);
        w.seg.dirty = true;
        wrote = true;
        this._landed(w);
      } catch (err) {
        this._writeFailed(w, err);
        error ??= err;
      }
    }
    if (wrote) this._sync.written();
    if (error !== undefined) throw error;
  }

  /** Writes `buf` (frames whose first disk seq is `firstDisk`) to the active segment, one write. */
  private _writeFrames(buf: Buffer, firstDisk: number): { segment: Segment; offset: number } {
    let seg = this._active;
    if (seg === undefined || (seg.size > 0 && seg.size + buf.length > this._segmentBytes)) {
      seg = this._createSegment(firstDisk);
    }
    const at = seg.size;
    try {
      writeFully(this._fs, seg.fd as number, buf, at);
    } catch (err) {
      try {
        this._fs.ftruncateSync(seg.fd as number, at);
      } catch {
        // the damage is skipped at recovery
      }
      throw err;
    }
    seg.size = at + buf.length;
    seg.dirty = true;
    this._sync.written();
    // No check here that the file is still linked: the periodic checkDirectory() notices a
    // removed directory, and copies what was written meanwhile back with the rest.
    return { segment: seg, offset: at };
  }

  private _createSegment(diskSeq: number): Segment {
    const real = this._realDir as string;
    const path = segmentPath(real, diskSeq);
    const fd = this._fs.openSync(path, 'w+', 0o600);
    const seg: Segment = {
      id: ++this._segIds,
      base: diskSeq,
      path,
      fd,
      size: 0,
      liveFrames: 0,
      dirty: false,
    };
    this._segs.push(seg);
    this._segById.set(seg.id, seg);
    this._active = seg;
    this._sync.directoryDirty = true;
    return seg;
  }

  /** Writes the frames held in memory (in order) with one write; throws when it fails. */
  private _writePending(real = this._realDir): void {
    if ((!this._opened && real === undefined) || this._keeper.lost) return;
    const live = this._pending.filter(
      (n) => this._mem.has(n) && this._t.live[this._t.row(n)] !== 0,
    );
    this._pending = live;
    if (live.length > 0) {
      if (this._active === undefined && this._segs.length === 0 && this._realDir === undefined) {
        this._realDir = real;
      }
      const frames = live.map((n) => this._mem.get(n) as Frame);
      const total = frames.reduce((s, f) => s + f.frameBytes, 0);
      const buf = Buffer.allocUnsafe(total);
      let at = 0;
      for (const f of frames) {
        copyFrame(buf, at, f);
        at += f.frameBytes;
      }
      // Held frames take the next disk seqs, one after the other.
      let disk = this._nextDisk;
      at = 0;
      for (const f of frames) {
        patchFirstSeq(buf, at, disk, f.frameBytes);
        at += f.frameBytes;
        disk += f.count;
      }
      const { segment, offset } = this._writeFrames(buf, this._nextDisk);
      let off = offset;
      disk = this._nextDisk;
      for (let i = 0; i < live.length; i++) {
        const n = live[i] as number;
        const f = frames[i] as Frame;
        const r = this._t.row(n);
        this._t.disk[r] = disk;
        this._t.seg[r] = segment.id;
        this._t.offset[r] = off;
        segment.liveFrames++;
        this._mem.delete(n);
        this._memBytes -= f.frameBytes;
        off += f.frameBytes;
        disk += f.count;
      }
      this._nextDisk = disk;
      this._pending = [];
    }
    if (this._migrating !== undefined) this._commitMigration();
    // Events acknowledged while their frame was in memory: their acks go to the log now.
    const acked: SeqRange[] = [];
    for (const n of live) {
      const r = this._t.row(n);
      const seq = this._t.seq[r] as number;
      const count = this._t.count[r] as number;
      if ((this._t.live[r] as number) === count) continue;
      for (let s = seq; s < seq + count; s++) {
        if ((this._st.get(s) & ACKED) !== 0) this._toDisk(s, s, acked);
      }
    }
    this._log(ACK_MAGIC, acked);
  }

  /** Format 1 → 2: the migrated frames are durable; meta.json (format 2) commits, then cleanup. */
  private _commitMigration(): void {
    const fs = this._fs;
    const real = this._realDir as string;
    this._sync.syncNow();
    writeMeta(fs, real, this._meta, this._createdAt);
    const files = this._migrating ?? [];
    this._migrating = undefined;
    for (const n of files) {
      try {
        fs.unlinkSync(join(real, n));
      } catch {
        // leftovers of format 1 are ignored by format 2
      }
    }
    if (this._logFile.fd === undefined) this._openLog(real, undefined);
    spoolDiag.warn(`${this._dir}: format 1 spool migrated to format ${SPOOL_FORMAT}`);
  }

  // ------------------------------------------------------------------ reading

  readLane(
    lane: number,
    afterSeq: number,
    maxBytes: number,
    alloc?: (bytes: number) => Buffer,
  ): Frame[] {
    const out: Frame[] = [];
    if (this._closed) return out;
    try {
      const t = this._t;
      let bytes = 0;
      for (let f = t.firstAfter(afterSeq); f < t.end; f++) {
        const r = t.row(f);
        if (t.lane[r] !== lane || t.live[r] === 0) continue;
        const frame = this._mem.get(f) ?? this._writing.get(f) ?? this._readDiskFrame(f, alloc);
        if (frame === null) break; // I/O error: counted; read again later
        if (frame === undefined) continue; // damaged: counted, its events are gone
        out.push(this._withSentBefore(frame));
        bytes += frame.frameBytes;
        if (bytes >= maxBytes) break;
      }
    } catch (err) {
      this._ioError('reading the spool failed', err);
    }
    return out;
  }

  hasFramesAfter(lane: number, afterSeq: number): boolean {
    if (this._closed) return false;
    const t = this._t;
    for (let f = t.firstAfter(afterSeq); f < t.end; f++) {
      const r = t.row(f);
      if (t.lane[r] === lane && t.live[r] !== 0) return true;
    }
    return false;
  }

  private _withSentBefore(frame: Frame): Frame {
    let marks: Uint8Array | undefined;
    for (let i = 0; i < frame.count; i++) {
      if ((this._st.get(frame.firstSeq + i) & SENT_BEFORE) !== 0) {
        marks ??= new Uint8Array(frame.count);
        marks[i] = 1;
      }
    }
    if (marks === undefined) return frame;
    return { ...frame, sentBefore: marks };
  }

  /** A frame read back from disk; undefined when damaged (counted, dropped), null on I/O error. */
  private _readDiskFrame(f: number, alloc?: (bytes: number) => Buffer): Frame | undefined | null {
    const t = this._t;
    const r = t.row(f);
    const seg = this._segById.get(t.seg[r] as number);
    if (seg === undefined) return this._lose(f, 'its segment is gone');
    let buf: Buffer;
    if (seg.fd === undefined && seg.orphaned)
      return this._lose(f, `${seg.path} was removed with the directory`);
    // With the reader's allocator (a lane's read arena), one region holds the frame's index
    // arrays (decoded in front of its bytes) and the frame: a drain allocates nothing per frame.
    let index: IndexMemory | undefined;
    const frameAlloc =
      alloc === undefined
        ? undefined
        : (bytes: number): Buffer => {
            const room = (t.count[r] as number) * INDEX_ENTRY_BYTES;
            const region = alloc(room + bytes);
            if (region.byteOffset % 8 === 0 && region.length === room + bytes) {
              index = { buffer: region.buffer, byteOffset: region.byteOffset };
              return region.subarray(room);
            }
            return region.subarray(0, bytes);
          };
    try {
      seg.fd ??= this._fs.openSync(seg.path, 'r');
      buf = readAt(this._fs, seg.fd, t.offset[r] as number, t.bytes[r] as number, frameAlloc);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return this._lose(f, `${seg.path} was removed`);
      this._ioError(`cannot read ${seg.path}`, err);
      return null;
    }
    const head = checkFrame(buf, 0);
    if (
      head === undefined ||
      head.firstSeq !== t.disk[r] ||
      head.count !== t.count[r] ||
      head.lane !== t.lane[r] ||
      head.frameBytes !== t.bytes[r]
    ) {
      return this._lose(f, `damaged frame at ${seg.path}:${t.offset[r]}`);
    }
    const frame = decodeFrame(buf, 0, head, index);
    if (frame === undefined)
      return this._lose(f, `damaged frame index at ${seg.path}:${t.offset[r]}`);
    frame.firstSeq = t.seq[r] as number;
    return frame;
  }

  /** A frame found damaged or gone while running: its events are lost; counted, reported. */
  private _lose(f: number, what: string): undefined {
    const t = this._t;
    const r = t.row(f);
    const first = t.seq[r] as number;
    const ranges: SeqRange[] = [{ from: first, to: first + (t.count[r] as number) - 1 }];
    this._ackRanges(ranges, false);
    this._corrupted++;
    spoolDiag.report(
      'error',
      'damaged',
      `${this._dir}: ${what}; its records are lost (counted in kubernaut.audit.spool.corrupted)`,
    );
    for (const l of this._corruptListeners) {
      try {
        l(1);
      } catch {
        // listeners must not break the spool
      }
    }
    return undefined;
  }

  isAcked(seq: number): boolean {
    return (this._st.get(seq) & ACKED) !== 0;
  }

  // ------------------------------------------------------------------ sent / ack

  markSent(ranges: readonly SeqRange[]): void {
    if (this._closed || ranges.length === 0) return;
    const disk: SeqRange[] = [];
    for (const { from, to } of ranges) {
      for (let s = from; s <= to; s++) this._st.set(s, SENT);
      this._toDisk(from, to, disk);
    }
    this._log(SENT_MAGIC, disk);
  }

  ack(ranges: readonly SeqRange[]): void {
    if (this._closed || ranges.length === 0) return;
    try {
      this._ackRanges(ranges, true);
    } catch (err) {
      this._ioError('acknowledging failed', err);
    }
  }

  private _ackRanges(ranges: readonly SeqRange[], persist: boolean): void {
    const t = this._t;
    const disk: SeqRange[] = [];
    for (const { from, to } of ranges) {
      let f = -1;
      let r = -1;
      for (let s = Math.max(from, this._st.base); s <= to && s < this._nextSeq; s++) {
        if ((this._st.get(s) & ACKED) !== 0) continue;
        if (f < 0 || s >= (t.seq[r] as number) + (t.count[r] as number)) {
          f = t.find(s);
          if (f < 0) continue;
          r = t.row(f);
        }
        this._st.set(s, ACKED);
        this._liveRecords--;
        const left = (t.live[r] as number) - 1;
        t.live[r] = left;
        if (left === 0) this._frameDone(f, r);
      }
      if (persist) this._toDisk(from, to, disk);
    }
    this._st.advance();
    t.trim();
    if (persist) this._log(ACK_MAGIC, disk);
    // Frames held in memory and now acknowledged whole wait no more (at the head: in order).
    let done = 0;
    while (done < this._pending.length && !this._mem.has(this._pending[done] as number)) done++;
    if (done > 0) this._pending.splice(0, done);
    this._deleteDeadSegments();
  }

  private _frameDone(f: number, r: number): void {
    const t = this._t;
    this._liveBytes -= t.bytes[r] as number;
    const segId = t.seg[r] as number;
    if (segId === MEMORY) {
      if (this._mem.delete(f)) this._memBytes -= t.bytes[r] as number;
      return;
    }
    this._writing.delete(f);
    const seg = this._segById.get(segId);
    if (seg !== undefined) seg.liveFrames--;
  }

  /** Translates seqs [from, to] of disk frames into disk-seq ranges. */
  private _toDisk(from: number, to: number, out: SeqRange[]): void {
    const t = this._t;
    let s = from;
    while (s <= to) {
      const f = t.find(s);
      if (f < 0) {
        s++;
        continue;
      }
      const r = t.row(f);
      const end = Math.min(to, (t.seq[r] as number) + (t.count[r] as number) - 1);
      if (t.seg[r] !== MEMORY) {
        const d = (t.disk[r] as number) - (t.seq[r] as number);
        const last = out[out.length - 1];
        if (last !== undefined && last.to + 1 === s + d) last.to = end + d;
        else out.push({ from: s + d, to: end + d });
      }
      s = end + 1;
    }
  }

  private _log(magic: Buffer, ranges: SeqRange[]): void {
    if (ranges.length === 0 || this._logFile.fd === undefined) return;
    try {
      const frame = encodeLogFrame(magic, ranges);
      writeFully(this._fs, this._logFile.fd, frame, null);
      this._logBytes += frame.length;
      this._logFile.dirty = true;
      this._sync.written();
    } catch (err) {
      this._ioError(
        magic === ACK_MAGIC
          ? 'cannot persist acknowledgements (those records are sent again after a restart)'
          : 'cannot persist sent marks',
        err,
      );
    }
    if (this._logBytes > LOG_COMPACT_BYTES) this._compactLog();
  }

  /**
   * The log reduced to what a later recovery needs, O(unacknowledged events) whatever the
   * history: every disk seq from the oldest kept segment's base up to the last one given out is
   * acknowledged, but for the unacknowledged events of live frames on disk (and those marked sent
   * keep their SENT mark). Fully acknowledged frames stay on disk while their segment is kept
   * (the active one, or one that still holds a live frame), and no table row describes them any
   * more: acknowledging the whole span keeps them acknowledged however often the log is
   * rewritten, with no need to know them. Seqs the span covers and no frame holds (damaged
   * frames, segments deleted already) are never given out again (see _install).
   */
  private _compactedLog(): Buffer {
    const t = this._t;
    const unacked: SeqRange[] = [];
    const sent: SeqRange[] = [];
    const add = (list: SeqRange[], d: number) => {
      const last = list[list.length - 1];
      if (last !== undefined && last.to + 1 === d) last.to = d;
      else list.push({ from: d, to: d });
    };
    for (let r = 0; r < t.rows; r++) {
      if (t.live[r] === 0 || t.seg[r] === MEMORY) continue;
      const seq = t.seq[r] as number;
      const d = (t.disk[r] as number) - seq;
      for (let s = seq; s < seq + (t.count[r] as number); s++) {
        const b = this._st.get(s);
        if (b & ACKED) continue;
        add(unacked, s + d);
        if (b & (SENT | SENT_BEFORE)) add(sent, s + d);
      }
    }
    // Rows are in seq order; disk seqs may be in another (frames recovered by a late open).
    unacked.sort((a, b) => a.from - b.from);
    const acked: SeqRange[] = [];
    let from = Number.POSITIVE_INFINITY;
    for (const seg of this._segs) from = Math.min(from, seg.base);
    // A segment being deleted may still be on disk after a crash: its seqs stay acknowledged.
    for (const seg of this._deleting.keys()) from = Math.min(from, seg.base);
    const last = this._nextDisk - 1;
    for (const u of unacked) {
      if (u.from > from) acked.push({ from, to: Math.min(u.from - 1, last) });
      from = Math.max(from, u.to + 1);
    }
    if (from <= last) acked.push({ from, to: last });
    const parts: Buffer[] = [];
    for (const [magic, list] of [
      [ACK_MAGIC, acked],
      [SENT_MAGIC, sent],
    ] as const) {
      for (let k = 0; k < list.length; k += 4096)
        parts.push(encodeLogFrame(magic, list.slice(k, k + 4096)));
    }
    return Buffer.concat(parts);
  }

  private _compactLog(): void {
    const real = this._realDir;
    if (real === undefined) return;
    const fs = this._fs;
    try {
      // What the new log describes is durable before it replaces the old one: the frames
      // written, and the deletion of segments before the span it acknowledges.
      this._sync.syncNow();
      const path = join(real, LOG_FILE);
      writeFileAtomic(fs, real, path, this._compactedLog());
      if (this._logFile.fd !== undefined) this._sync.closeFd(this._logFile.fd);
      this._logFile.fd = fs.openSync(path, 'a', 0o600);
      this._logBytes = fs.fstatSync(this._logFile.fd).size;
      this._logFile.dirty = false;
    } catch (err) {
      this._ioError('cannot compact the sent/ack log (tried again later)', err);
      this._logBytes = LOG_COMPACT_BYTES / 2; // not on every write
    }
  }

  /**
   * Deletes segments without live frames (not the active one, unless everything in it is acked
   * and it holds ROTATE_WHEN_DRAINED_BYTES, or a write failed: on a small volume the room the
   * acknowledged frames take may be what the write lacked).
   *
   * The files are deleted on the thread pool: freeing a 64 MiB file's blocks takes the kernel
   * milliseconds (more on network volumes), which the event loop does not wait for. A segment
   * leaves the spool at once; until its file is gone, the sent/ack log is neither truncated nor
   * rewritten without its seqs, so a crash in between leaves an acknowledged file that the next
   * recovery deletes, never records delivered again. When a write failed for lack of room the
   * deletion is synchronous: the retry that follows needs the room now.
   */
  private _deleteDeadSegments(): void {
    for (const [seg, state] of this._deleting) {
      if (state === 'failed') this._unlinkSegment(seg);
    }
    if (this._segs.length === 0) return;
    const allAcked = this._liveRecords === 0 && this._pending.length === 0;
    const active = this._active;
    const reclaim =
      this._lastError !== undefined && active !== undefined && active.liveFrames === 0;
    if (
      active !== undefined &&
      active.size > 0 &&
      this._realDir !== undefined &&
      ((allAcked && active.size >= ROTATE_WHEN_DRAINED_BYTES) || reclaim)
    ) {
      // Start afresh: a new empty segment named with the next disk seq keeps the high-water mark.
      try {
        this._createSegment(this._nextDisk);
        if (reclaim) this._retrySoon(); // the held frames may fit now
      } catch {
        // no room now: tried at the next acknowledgement
      }
    }
    for (const seg of [...this._segs]) {
      if (seg === this._active || seg.liveFrames > 0) continue;
      if (seg.orphaned) {
        // Not in the directory: nothing to delete there. While the directory is lost it may
        // still be (only files removed): the keeper's rehome() decides, so that no acknowledged
        // frame is left in it unacknowledged by the log.
        if (!this._keeper.lost) this._dropSegment(seg);
        continue;
      }
      if (seg.fd !== undefined) this._sync.closeFd(seg.fd);
      seg.fd = undefined;
      if (!reclaim) this._unlinkSegment(seg);
      else if (!this._unlinkNow(seg, 'tried again later')) continue;
      this._segs.splice(this._segs.indexOf(seg), 1);
      this._segById.delete(seg.id);
    }
    if (
      allAcked &&
      this._deleting.size === 0 &&
      this._segs.every((g) => g.size === 0) &&
      this._logFile.fd !== undefined &&
      this._logBytes > 0
    ) {
      try {
        this._fs.ftruncateSync(this._logFile.fd, 0);
        this._logBytes = 0;
      } catch (err) {
        this._ioError('cannot truncate the sent/ack log', err);
      }
    }
  }

  /**
   * At close: the deletions still under way are done now, so that none lands after another
   * spool took the directory.
   */
  private _finishDeletions(): void {
    for (const seg of this._deleting.keys()) this._unlinkNow(seg, 'deleted at the next start');
    this._deleting.clear();
  }

  /** Deletes a segment's file now (gone already counts); false, reported, when it cannot. */
  private _unlinkNow(seg: Segment, then: string): boolean {
    try {
      this._fs.unlinkSync(seg.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this._ioError(`cannot delete ${seg.path} (${then})`, err);
        return false;
      }
    }
    this._sync.directoryDirty = true;
    return true;
  }

  /** Deletes the file of a segment out of the spool on the thread pool (see _deleteDeadSegments). */
  private _unlinkSegment(seg: Segment): void {
    this._deleting.set(seg, 'pending');
    this._fs.unlink(seg.path, (err) => {
      if (!this._deleting.has(seg)) return; // finished by close()
      if (err && err.code !== 'ENOENT') {
        this._deleting.set(seg, 'failed');
        this._ioError(`cannot delete ${seg.path} (tried again later)`, err);
        return;
      }
      this._deleting.delete(seg);
      this._sync.directoryDirty = true;
    });
  }

  // ------------------------------------------------------------------ reservations, state

  reserve(bytes: number): Reservation | undefined {
    if (this._closed || !(bytes > 0)) return undefined;
    if (this._liveBytes + this._reservedBytes + bytes > this._maxBytes) return undefined;
    this._reservedBytes += bytes;
    return new HeldReservation(this, bytes);
  }

  /** @internal */
  releaseReservation(r: HeldReservation): void {
    this._reservedBytes -= r.remaining;
    r.remaining = 0;
  }

  oldestUnackedSeq(): number {
    const o = this._st.oldest;
    return o < this._nextSeq ? o : Number.POSITIVE_INFINITY;
  }

  lastSeq(): number {
    return this._nextSeq - 1;
  }

  stats(): SpoolCounters {
    let oldest: number | undefined;
    const o = this._st.oldest;
    if (o < this._nextSeq) {
      const f = this._t.find(o);
      if (f >= 0) oldest = this._t.appended[this._t.row(f)];
    }
    let diskBytes = 0;
    for (const s of this._segs) diskBytes += s.size;
    return {
      records: this._liveRecords,
      bytes: this._liveBytes,
      reservedBytes: this._reservedBytes,
      oldestAppendedAt: oldest,
      corrupted: this._corrupted,
      droppedFull: this._droppedFull,
      droppedError: this._droppedError,
      diskBytes: diskBytes + this._logBytes,
      segments: this._segs.length,
      maxBytes: this._maxBytes,
    };
  }

  /** I/O errors since open (failed writes, fsyncs, deletes, reads). */
  get ioErrors(): number {
    return this._ioErrors;
  }

  /** Records `url` as the destination of a spool that has none yet (meta.json). Never throws. */
  /**
   * `supply(bytes)` may return a buffer that the next append writes its frames into when they go
   * to disk, reused append after append (the sender's, while none of its lanes keeps appended
   * frames): the frames append() returns are then valid only until the next append. Frames the
   * spool holds in memory never use it.
   */
  setAppendBuffer(supply: ((bytes: number) => Buffer | undefined) | undefined): void {
    this._appendBuffer = supply;
  }

  adoptDestination(url: string): void {
    if (this._meta.destination !== undefined) return;
    this._meta = { ...this._meta, destination: url };
    if (!this._opened || this._realDir === undefined) return;
    try {
      writeMeta(this._fs, this._realDir, this._meta, this._createdAt);
    } catch (err) {
      this._ioError(
        'cannot record the destination in meta.json (tried again at the next start)',
        err,
      );
    }
  }

  onCorrupted(listener: (count: number) => void): void {
    this._corruptListeners.push(listener);
  }

  // ------------------------------------------------------------------ durability

  private _ioError(what: string, err: unknown): void {
    this._ioErrors++;
    spoolDiag.report('error', `io:${this._dir}`, `${this._dir}: ${what}: ${errorText(err)}`);
  }

  private _closeAllFds(): void {
    for (const seg of this._segs) {
      if (seg.fd !== undefined) this._sync.closeFd(seg.fd);
      seg.fd = undefined;
    }
    if (this._logFile.fd !== undefined) this._sync.closeFd(this._logFile.fd);
    this._logFile.fd = undefined;
  }

  /** Flushes, fsyncs and releases the directory. Frames still held in memory are lost (reported). */
  close(): void {
    if (this._closed) return;
    if (this._retryTimer !== undefined) clearTimeout(this._retryTimer);
    this._retryTimer = undefined;
    this._keeper.stop();
    if (this._opened) {
      this.settleWrites();
      // The last chance for records on files removed with the directory: it is re-created now
      // and they are copied back synchronously, however long that takes (a kill meanwhile
      // leaves the segments copied so far, each complete, and no half one).
      try {
        this._keeper.restore();
      } catch {
        // reported below
      }
      if (this._pending.length > 0) {
        try {
          this._writePending();
        } catch {
          // reported below
        }
      }
      this._keeper.finish();
      if (this._retryTimer !== undefined) clearTimeout(this._retryTimer); // set by a failed copy
      this._retryTimer = undefined;
    }
    const held = this.unwrittenRecords;
    if (held > 0 && this._dir !== undefined) {
      spoolDiag.error(
        `${this._dir}: closed with ${held} record(s) that could not be written into it (held in memory, or on files removed with the directory); they are lost`,
      );
    }
    this._closed = true;
    if (this._opened) {
      this._finishDeletions();
      this._sync.syncNow();
      this._closeAllFds();
      this._keeper.lock?.release();
      if (this._realDir !== undefined) openInProcess.delete(this._realDir);
    }
    spoolDiag.flush();
  }
}

/** A deferred write (see the invariant "Deferred writes"). */
interface DeferredWrite {
  seg: Segment;
  /** The descriptor it was started on (kept open until it lands: sync.ts). */
  fd: number;
  at: number;
  buf: Buffer;
  /** Frame numbers of its frames. */
  frames: number[];
  state: 'writing' | 'failed' | 'done';
}

/** The highest provenance seq found on the spool at open, with that event's JSON when readable. */
export interface SpoolTailInfo {
  provSeq: number;
  json: string | undefined;
}

/** Opens a spool: file-backed when `directory` is given (memory-only while it cannot be opened). */
export function openSpool(options: SpoolOptions): Spool {
  return new Spool(options).start();
}

/** Lane of a correlation id: fnv1a32(correlation_id) % lanes. */
export function laneOf(correlationId: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < correlationId.length; i++) {
    h ^= correlationId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % lanes;
}

function positive(v: number | undefined, dflt: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
}

/** Points the frames' bodies at a copy of `buf` (their bytes must outlive a reused buffer). */
function ownBytes(frames: Frame[], buf: Buffer): void {
  const own = Buffer.from(buf);
  for (const f of frames) {
    const at = f.body.byteOffset - buf.byteOffset;
    f.body = own.subarray(at, at + f.body.length);
  }
}

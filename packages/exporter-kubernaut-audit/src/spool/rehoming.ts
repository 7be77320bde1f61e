// SPDX-License-Identifier: Apache-2.0
/*
 * The spool directory removed or replaced while in use (a tmp cleaner, an rm -rf, a remount), or
 * its lock file or a segment removed: the orchestration of noticing it and of re-homing the
 * spool. The spool (spool.ts) owns one DirectoryKeeper and calls it; the keeper sees and changes
 * the spool only through a RehomePort. Its pieces (the check, which segments are home, the
 * segment copy) are in rehome.ts.
 *
 * Invariants:
 * - A loss is noticed within `checkIntervalMillis` [1 s] by an unref'd check (a stat of the
 *   directory and of the lock file, an fstat of the active segment and of one more, round robin:
 *   nothing on the append path), and reported once per occurrence (diag error,
 *   onDirectoryLost).
 * - From then on (`lost`) nothing is written through the descriptors of the lost files (another
 *   process may own the path): every segment is orphaned, only read, so its frames stay
 *   deliverable; no log is open (detach()); the spool holds appends in memory while `lost`. The lock taken at open is
 *   kept until rehome() sees whether its file is still there.
 * - rehome() re-creates the directory (its mode), takes its lock again (or keeps the one held when
 *   it still guards the same directory), and writes meta.json (same producer, destination, lanes)
 *   and a sent/ack log compacted from memory BEFORE any segment: whatever is copied in later, no
 *   acknowledged record comes back. A re-created directory that another live spool has locked,
 *   or that holds another spool's segments, is never written: rehome() throws, the spool stays
 *   lost (memory-only for new appends, warned, retried in the background).
 * - The segments no longer in it are then copied back byte for byte from the open descriptors
 *   (frames keep their disk seqs and offsets) through a temp name, fsync and rename, oldest
 *   first, by a background copy of at most COPY_STEP_BYTES (8 MiB) per event-loop turn; appends
 *   go to a new segment meanwhile. finish() (at close) completes that copy synchronously, however
 *   large (its last chance). A crash at any point leaves complete segments only, and no
 *   acknowledged record unacknowledged.
 * - `orphans` is the number of the spool's segments with `orphaned` set; only orphan() and
 *   unorphan() change either. Kept segments stay open for this (one descriptor each).
 * - Every timer is unref'd, and cleared at close (stop(), finish()).
 */
import { join } from 'node:path';
import { LOG_FILE } from '@kubernaut/audit-spool-format';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ComponentDiag } from '../measure/diag.ts';
import type { SpoolFs } from './fs.ts';
import { closeQuietly, writeFileAtomic } from './fsutil.ts';
import type { acquireSpoolLock, SpoolLock } from './lock.ts';
import { writeMeta } from './meta.ts';
import { type Segment, segmentPath } from './recovery.ts';
import {
  COPY_STEP_BYTES,
  type FileId,
  ForeignSpoolError,
  fileId,
  homeSegments,
  SegmentCopy,
  sameFile,
  watchProblem,
} from './rehome.ts';
import type { SyncScheduler } from './sync.ts';
import type { SpoolMeta } from './types.ts';

type Stat = ReturnType<SpoolFs['statSync']>;

/** What the keeper sees of the spool, and the changes it asks of it. */
export interface RehomePort {
  readonly fs: SpoolFs;
  /** The configured directory path. */
  readonly directory: string;
  /** The spool's segments, oldest first (the keeper sets `orphaned`, `path`, `fd`, `dirty`). */
  readonly segments: readonly Segment[];
  /** The spool's fsync scheduler (descriptors closed, the directory synced through it). */
  readonly sync: SyncScheduler;
  /** The segment is still the spool's (not dropped). */
  has(seg: Segment): boolean;
  closed(): boolean;
  active(): Segment | undefined;
  setActive(seg: Segment | undefined): void;
  /** Another spool of this process has `real` open. */
  openInProcess(real: string): boolean;
  /** Creates the directory when missing (with `mode`); throws a SpoolOpenError saying `failure`. */
  useDirectory(failure: string, mode: number): { dir: string; real: string; st: Stat };
  acquireLock(real: string): ReturnType<typeof acquireSpoolLock>;
  /** A SpoolOpenError for the directory. */
  openError(code: 'locked' | 'unwritable', dir: string, message: string, cause?: unknown): Error;
  meta(): { meta: SpoolMeta; createdAt: string };
  /** The sent/ack log compacted from memory. */
  compactedLog(): Buffer;
  /** The directory is lost: no active segment, no log, no real path, nothing to sync in it. */
  detach(): void;
  /** The directory is back: its real path and log (opened for appending, `logBytes` long). */
  attach(real: string, logFd: number, logBytes: number): void;
  /** Removes a segment from the spool (never unlinks; calls unorphan()). */
  dropSegment(seg: Segment): void;
  /** An orphaned segment that cannot be read: its records are lost (reported); drops it. */
  loseSegment(seg: Segment): void;
  unwrittenRecords(): number;
  /** Re-homed: tell onOpen, delete dead segments. */
  reopened(): void;
  ioError(what: string, err: unknown): void;
  /** A background step failed: remember the error, retry later. */
  failed(err: Error): void;
  /** The periodic check (the spool's checkDirectory()). */
  check(): void;
}

export interface DirectoryKeeperOptions {
  /** Check period; 0 = never (noticeLoss() still checks when called). */
  checkIntervalMillis: number;
  onDirectoryLost: ((what: string) => void) | undefined;
  diag: ComponentDiag;
}

/** The background copy of one orphaned segment (see _copyOrphans). */
interface CopyUnderWay {
  seg: Segment;
  copy: SegmentCopy;
  /** Its fsync runs on the thread pool: the callback continues (or aborts) it. */
  syncing: boolean;
  /** Abandoned while syncing: whether the callback removes the temp file. */
  unlinkWhenAbandoned?: boolean;
}

/** Watches the spool's directory and re-homes the spool when it is lost (module comment). */
export class DirectoryKeeper {
  private readonly _p: RehomePort;
  private readonly _o: DirectoryKeeperOptions;
  /**
   * The directory was found removed or replaced and is not re-created yet: nothing is written
   * (appends are held in memory), every segment is orphaned, no log is open.
   */
  private _lost = false;
  /** Segments with `orphaned` set (copied back in the background once the directory is back). */
  private _orphans = 0;
  /** The copy of the oldest orphaned segment under way. */
  private _copy: CopyUnderWay | undefined;
  private _copyTimer: NodeJS.Timeout | undefined;
  /** The directory's lock, taken at open or at rehome() (undefined: none held). */
  private _lock: SpoolLock | undefined;
  /** What the spool opened (compared by noticeLoss()). */
  private _dirId: FileId | undefined;
  private _lockId: FileId | undefined;
  private _dirMode = 0o700;
  private _checkTimer: NodeJS.Timeout | undefined;
  /** Round robin over the segments, one fstat per check. */
  private _checkNext = 0;
  /** The active segment when the directory was lost (active again if it is still linked). */
  private _activeWhenLost: Segment | undefined;

  constructor(port: RehomePort, options: DirectoryKeeperOptions) {
    this._p = port;
    this._o = options;
  }

  /** The directory is lost and not re-created yet. */
  get lost(): boolean {
    return this._lost;
  }

  /** The lock held on the directory (released by the spool at close). */
  get lock(): SpoolLock | undefined {
    return this._lock;
  }

  /** Segments whose files are not in the directory (not copied back yet). */
  get orphans(): number {
    return this._orphans;
  }

  /** Marks a segment orphaned (its file no longer in the directory). */
  orphan(seg: Segment): void {
    if (seg.orphaned) return;
    seg.orphaned = true;
    this._orphans++;
  }

  /** Clears a segment's orphaned mark (home again, or dropped). */
  unorphan(seg: Segment): void {
    if (!seg.orphaned) return;
    seg.orphaned = false;
    this._orphans--;
  }

  /** Takes the directory's lock, remembers what it and its lock file are, starts the check. */
  watch(st: Stat, lock: SpoolLock): void {
    this._lock = lock;
    this._dirId = fileId(st);
    this._dirMode = st.mode & 0o7777 || 0o700;
    try {
      this._lockId = fileId(this._p.fs.statSync(lock.path));
    } catch {
      this._lockId = undefined;
    }
    const every = this._o.checkIntervalMillis;
    if (this._checkTimer !== undefined || every === 0) return;
    this._checkTimer = setInterval(() => this._p.check(), every);
    this._checkTimer.unref();
  }

  /** Stops the periodic check (at close). */
  stop(): void {
    if (this._checkTimer !== undefined) clearInterval(this._checkTimer);
    this._checkTimer = undefined;
  }

  /** Notices a loss not noticed yet, then re-homes when lost (throws as rehome() does). */
  restore(): void {
    if (!this._lost) this.noticeLoss();
    if (this._lost) this.rehome();
  }

  /** What is wrong with the directory (then it is abandoned, see _abandon); never throws. */
  noticeLoss(): string | undefined {
    const p = this._p;
    if (this._dirId === undefined || this._lost) return undefined;
    const fds: Array<{ fd: number; path: string }> = [];
    const a = p.active();
    if (a?.fd !== undefined) fds.push({ fd: a.fd, path: a.path });
    const segs = p.segments;
    if (segs.length > 0) {
      const other = segs[this._checkNext++ % segs.length] as Segment;
      if (other !== a && other.fd !== undefined && !other.orphaned)
        fds.push({ fd: other.fd, path: other.path });
    }
    const found = watchProblem(p.fs, {
      directory: p.directory,
      directoryId: this._dirId,
      lockPath: this._lock?.path,
      lockId: this._lockId,
      fds,
    });
    if (found !== undefined) this._abandon(found);
    return found;
  }

  /**
   * The directory is not the spool's any more: nothing is written through the files it holds
   * open (another process may own the path by now); they are only read. Every segment is
   * orphaned until the re-created directory says which are still linked in it (rehome). The
   * lock stays held until then (kept when its file is still there).
   */
  private _abandon(found: string): void {
    const p = this._p;
    this._lost = true;
    this._abortCopy(false);
    for (const seg of p.segments) this.orphan(seg);
    this._activeWhenLost = p.active();
    p.detach();
    this._o.diag.error(
      `${p.directory}: ${found} while the spool was in use (a tmp cleaner, an rm -rf, a remount?): its lock no longer keeps other processes out, and ${p.unwrittenRecords()} unacknowledged record(s) may be on files no longer in it (a crash or restart would lose them); re-creating what is missing and writing them back (counted in kubernaut.audit.spool.directory_lost)`,
    );
    try {
      this._o.onDirectoryLost?.(found);
    } catch {
      // a listener must not break the spool
    }
  }

  /**
   * Re-creates the lost directory (its original mode), takes its lock again (or keeps the one
   * held when its file is still there), refuses a directory holding another spool's data, writes
   * meta.json (same producer, destination, lanes) and a sent/ack log compacted from memory (so
   * that no acknowledged record comes back once the segments are copied in), then leaves the
   * orphaned segments to the background copy. Throws a SpoolOpenError when the directory cannot
   * be re-created or is held by another live spool: the spool stays lost (appends held in
   * memory, the orphaned files still read) and the retry tries again.
   */
  rehome(): void {
    const p = this._p;
    const fs = p.fs;
    const { dir, real, st } = p.useDirectory(
      'removed while in use and cannot be re-created',
      this._dirMode,
    );
    const refused = (why: string) =>
      p.openError(
        'locked',
        dir,
        `removed while in use and re-created, but ${why}: this spool writes nothing into it; its records are still delivered from the files it holds open, new ones are held in memory (lost if the process exits); retried in the background`,
      );
    let lock = this._lock;
    if (lock !== undefined && !this._lockStillHeld(st, lock)) {
      lock.release();
      lock = this._lock = undefined;
    }
    if (lock === undefined) {
      if (p.openInProcess(real)) throw refused('another spool of this process has it now');
      let attempt: ReturnType<typeof acquireSpoolLock>;
      try {
        attempt = p.acquireLock(real);
      } catch (err) {
        throw p.openError(
          'unwritable',
          dir,
          `removed while in use; cannot take the lock of the re-created directory: ${errorText(err)}`,
          err,
        );
      }
      if (!attempt.ok) throw refused(`it is ${attempt.reason}`);
      lock = attempt.lock;
    }
    let home: Set<Segment>;
    let logFd: number | undefined;
    let logBytes: number;
    try {
      home = homeSegments(fs, real, fs.readdirSync(real), p.segments);
      const { meta, createdAt } = p.meta();
      writeMeta(fs, real, meta, createdAt);
      // The log before any segment: what is acknowledged stays so whatever is copied in later.
      const logPath = join(real, LOG_FILE);
      writeFileAtomic(fs, real, logPath, p.compactedLog());
      logFd = fs.openSync(logPath, 'a', 0o600);
      logBytes = fs.fstatSync(logFd).size;
    } catch (err) {
      if (logFd !== undefined) closeQuietly(fs, logFd);
      lock.release();
      this._lock = undefined;
      if (err instanceof ForeignSpoolError) throw refused(err.message);
      throw p.openError(
        'unwritable',
        dir,
        `removed while in use; cannot write the re-created directory: ${errorText(err)}`,
        err,
      );
    }
    p.attach(real, logFd, logBytes);
    this._lost = false;
    for (const seg of [...p.segments]) {
      seg.path = segmentPath(real, seg.base);
      if (home.has(seg)) this.unorphan(seg);
      else if (seg.liveFrames === 0) p.dropSegment(seg); // acknowledged whole: nothing to copy
    }
    const active = this._activeWhenLost;
    this._activeWhenLost = undefined;
    if (active !== undefined && home.has(active) && active.fd !== undefined) p.setActive(active);
    this.watch(st, lock);
    this._directoryChanged();
    const records = p.unwrittenRecords();
    this._o.diag.warn(
      this._orphans === 0
        ? `${dir}: re-created; every unacknowledged record is on disk in it again`
        : `${dir}: re-created; copying ${this._orphans} segment(s) back into it in the background (${records} unacknowledged record(s) not on disk there yet)`,
    );
    p.reopened();
  }

  /** The directory's entries changed (created, renamed into): it is synced. */
  private _directoryChanged(): void {
    this._p.sync.directoryDirty = true;
    this._p.sync.written();
  }

  /** The lock taken at open still guards the directory: same directory, lock file still there. */
  private _lockStillHeld(st: Stat, lock: SpoolLock): boolean {
    if (this._dirId === undefined || this._lockId === undefined || !sameFile(st, this._dirId))
      return false;
    try {
      return sameFile(this._p.fs.statSync(lock.path), this._lockId);
    } catch {
      return false;
    }
  }

  // ------------------------------------------------------------------ the background copy

  /** Schedules the next step of the background copy (an unref'd timer). */
  copySoon(): void {
    if (this._copyTimer !== undefined || this._p.closed() || this._lost || this._orphans === 0)
      return;
    if (this._copy?.syncing) return; // its fsync's callback continues
    this._copyTimer = setTimeout(() => {
      this._copyTimer = undefined;
      this._copyOrphans(COPY_STEP_BYTES, false);
    }, 0);
    this._copyTimer.unref();
  }

  /**
   * At close: copies every orphaned segment back synchronously, however large, then abandons
   * what could not be finished (its temp file kept while the directory is lost).
   */
  finish(): void {
    if (this._orphans > 0) this._copyOrphans(Number.POSITIVE_INFINITY, true);
    this._abortCopy(!this._lost);
  }

  /**
   * Copies orphaned segments back into the directory, oldest first, up to `budget` bytes per
   * call (the next step is scheduled): each is fsynced (on the thread pool; synchronously with
   * `now`, at close) and renamed into place, and its new descriptor replaces the old one. A
   * segment acknowledged whole meanwhile is dropped, its copy abandoned. Never throws: a failure
   * is reported and retried later.
   */
  private _copyOrphans(budget: number, now: boolean): void {
    const p = this._p;
    try {
      while (!this._lost && !p.closed() && this._orphans > 0) {
        let c = this._copy;
        if (c === undefined) {
          const seg = p.segments.find((g) => g.orphaned);
          if (seg === undefined) break;
          if (seg.fd === undefined) {
            p.loseSegment(seg);
            continue;
          }
          c = { seg, copy: new SegmentCopy(p.fs, seg.path, seg.size), syncing: false };
          this._copy = c;
        }
        if (!p.has(c.seg) || c.seg.fd === undefined) {
          this._abortCopy(true); // acknowledged whole meanwhile: nothing to copy
          continue;
        }
        if (c.syncing) {
          if (!now) return; // its fsync's callback continues
          c.syncing = false;
        }
        if (!c.copy.copied) {
          if (budget <= 0) {
            this.copySoon();
            return;
          }
          budget -= c.copy.step(c.seg.fd, budget);
          continue;
        }
        if (now) {
          c.copy.syncNow();
          this._copied(c);
          continue;
        }
        c.syncing = true;
        const copying = c;
        c.copy.sync((err) => {
          copying.syncing = false;
          if (this._copy !== copying) {
            // Abandoned meanwhile (a no-op once committed).
            copying.copy.abort(copying.unlinkWhenAbandoned === true);
            return;
          }
          if (err) {
            this._copyFailed(err);
            return;
          }
          try {
            this._copied(copying);
          } catch (e) {
            this._copyFailed(e);
            return;
          }
          this.copySoon();
        });
        return;
      }
    } catch (err) {
      this._copyFailed(err);
    }
  }

  /** A copy is complete and synced: into place, and the segment reads from its new file. */
  private _copied(c: CopyUnderWay): void {
    const p = this._p;
    const seg = c.seg;
    if (!p.has(seg)) {
      this._abortCopy(true);
      return;
    }
    const fd = c.copy.commit();
    this._copy = undefined;
    if (seg.fd !== undefined) p.sync.closeFd(seg.fd);
    seg.fd = fd;
    seg.dirty = false;
    this.unorphan(seg);
    this._directoryChanged();
    if (this._orphans === 0) {
      this._o.diag.warn(
        `${p.directory}: re-created; every unacknowledged record is on disk in it again`,
      );
    }
  }

  private _copyFailed(err: unknown): void {
    this._p.ioError(
      'cannot copy a segment back into the re-created directory (tried again later)',
      err,
    );
    this._abortCopy(true);
    this._p.failed(err instanceof Error ? err : new Error(String(err)));
  }

  /** Abandons the copy under way (its temp file removed unless `unlink` is false). */
  private _abortCopy(unlink: boolean): void {
    if (this._copyTimer !== undefined) clearTimeout(this._copyTimer);
    this._copyTimer = undefined;
    const c = this._copy;
    this._copy = undefined;
    if (c === undefined) return;
    if (c.syncing)
      c.unlinkWhenAbandoned = unlink; // its fsync's callback aborts it
    else c.copy.abort(unlink);
  }
}

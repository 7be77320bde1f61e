// SPDX-License-Identifier: Apache-2.0
/*
 * The spool's durability scheduler: when what was written reaches the disk (FORMAT.md,
 * "Durability"). An append survives SIGKILL once its write returned (a deferred one: once it
 * landed); fsync only bounds what a power loss of the machine takes.
 *
 * Invariants:
 * - A write marks its file dirty and calls written(): one sync at most `intervalMillis` later
 *   (an unref'd timer), or at once with an interval of 0 (synchronously, before written()
 *   returns: every write is durable when the spool call returns).
 * - Background syncs run fdatasync on the thread pool: the event loop never waits on the disk.
 *   A file whose sync failed is dirty again (synced at the next write's tick or by syncNow());
 *   the failure is reported through `onError`.
 * - The directory is synced (its created and removed entries) when `directoryDirty` was set.
 * - writeBehind() writes on the thread pool; the file is marked dirty (its sync scheduled) when
 *   the write has landed, not before, so a sync never counts a write it may not have covered.
 * - A descriptor is closed only after its pending syncs and writes completed (closeFd()): a
 *   write queued on the thread pool never lands on a descriptor number reused by another file.
 * - syncNow() syncs everything written so far, synchronously (close, migration, log compaction).
 */
import type { SpoolFs } from './fs.ts';
import { closeQuietly, fsyncDirectory } from './fsutil.ts';

/** A file the spool writes: a segment or the sent/ack log. */
export interface SyncedFile {
  fd: number | undefined;
  /** Written since its last fsync. */
  dirty: boolean;
  /** As named in error reports. */
  readonly path: string;
}

export interface SyncSchedulerOptions {
  fs: SpoolFs;
  /** fsync cadence; 0 = every write. */
  intervalMillis: number;
  /** The files that may hold unsynced writes now. */
  files(): Iterable<SyncedFile>;
  /** The spool's directory (undefined while it has none). */
  directory(): string | undefined;
  onError(what: string, err: unknown): void;
}

export class SyncScheduler {
  /** The directory's entries changed since its last sync. */
  directoryDirty = false;
  private readonly _o: SyncSchedulerOptions;
  private _timer: NodeJS.Timeout | undefined;
  private readonly _pending = new Map<number, { count: number; closeAfter: boolean }>();

  constructor(options: SyncSchedulerOptions) {
    this._o = options;
  }

  /** Something was written (its file is marked dirty): schedules its sync. */
  written(): void {
    if (this._o.intervalMillis === 0) {
      this.syncNow();
      return;
    }
    if (this._timer !== undefined) return;
    this._timer = setTimeout(() => {
      this._timer = undefined;
      this._syncInBackground();
    }, this._o.intervalMillis);
    this._timer.unref();
  }

  /** fsyncs everything written so far, synchronously. */
  syncNow(): void {
    this.cancel();
    const fs = this._o.fs;
    for (const f of this._o.files()) {
      if (!f.dirty || f.fd === undefined) continue;
      try {
        fs.fdatasyncSync(f.fd);
        f.dirty = false;
      } catch (err) {
        this._o.onError(`fsync of ${f.path} failed`, err);
      }
    }
    const dir = this._o.directory();
    if (this.directoryDirty && dir !== undefined) {
      fsyncDirectory(fs, dir);
      this.directoryDirty = false;
    }
  }

  /**
   * Writes `buf` at `position` of `file` on the thread pool (short writes continued), then calls
   * `done` with the error, if any. Its descriptor stays open until `done` ran.
   */
  writeBehind(
    file: SyncedFile,
    buf: Buffer,
    position: number,
    done: (err: Error | null) => void,
  ): void {
    const fd = file.fd as number;
    const pending = this._hold(fd);
    const fs = this._o.fs;
    let off = 0;
    const step = (err: NodeJS.ErrnoException | null, written: number): void => {
      if (err === null && written > 0 && off + written < buf.length) {
        off += written;
        fs.write(fd, buf, off, buf.length - off, position + off, step);
        return;
      }
      if (err === null && written > 0) {
        file.dirty = true;
        this.written();
      }
      this._release(fd, pending);
      done(err ?? (written > 0 ? null : new Error('short write')));
    };
    try {
      fs.write(fd, buf, 0, buf.length, position, step);
    } catch (err) {
      this._release(fd, pending);
      done(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Closes `fd` once its pending syncs and writes completed. */
  closeFd(fd: number): void {
    const p = this._pending.get(fd);
    if (p !== undefined) p.closeAfter = true;
    else closeQuietly(this._o.fs, fd);
  }

  /** Drops the scheduled sync (the caller syncs or gives up). */
  cancel(): void {
    if (this._timer === undefined) return;
    clearTimeout(this._timer);
    this._timer = undefined;
  }

  private _syncInBackground(): void {
    for (const f of this._o.files()) {
      if (!f.dirty || f.fd === undefined) continue;
      f.dirty = false;
      this._fdatasync(f.fd, f.path, () => {
        f.dirty = true;
      });
    }
    const dir = this._o.directory();
    if (this.directoryDirty && dir !== undefined) {
      this.directoryDirty = false;
      try {
        const fd = this._o.fs.openSync(dir, 'r');
        this._fdatasync(fd, 'the spool directory', () => undefined, true);
      } catch {
        // some filesystems refuse to sync a directory; the data files themselves are synced
      }
    }
  }

  private _fdatasync(fd: number, what: string, onFail: () => void, close = false): void {
    const pending = this._hold(fd);
    if (close) pending.closeAfter = true;
    this._o.fs.fdatasync(fd, (err) => {
      if (err) {
        onFail();
        if (!close) this._o.onError(`fsync of ${what} failed`, err); // a directory may refuse it
      }
      this._release(fd, pending);
    });
  }

  /** One more operation under way on `fd` (closeFd() waits for it). */
  private _hold(fd: number): { count: number; closeAfter: boolean } {
    let p = this._pending.get(fd);
    if (p === undefined) {
      p = { count: 0, closeAfter: false };
      this._pending.set(fd, p);
    }
    p.count++;
    return p;
  }

  private _release(fd: number, pending: { count: number; closeAfter: boolean }): void {
    pending.count--;
    if (pending.count > 0) return;
    this._pending.delete(fd);
    if (pending.closeAfter) closeQuietly(this._o.fs, fd);
  }
}

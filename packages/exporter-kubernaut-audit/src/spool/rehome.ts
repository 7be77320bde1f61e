// SPDX-License-Identifier: Apache-2.0
/*
 * The spool directory removed or replaced under a running spool (a tmp cleaner, an operator's
 * `rm -rf`, a volume remounted): how it is noticed and what the re-created directory may hold.
 * The orchestration is rehoming.ts's (see its module comment); here are its pieces:
 *
 * - watchProblem(): what is wrong with the directory now, from at most four syscalls (stat of
 *   the directory path and of the lock file, fstat of two segment descriptors), compared with
 *   what the spool opened (dev + ino). Run by an unref'd check once a second, never on the
 *   append path.
 * - homeSegments(): which of the spool's segments are still linked in a (re-created) directory
 *   under their own name (same dev + ino as the descriptor the spool holds); throws when the
 *   directory holds spool data that is not the spool's own (another spool's segments, a format 1
 *   spool, a newer format): nothing is written into another spool.
 * - SegmentCopy: copies a segment that is no longer in the directory from the descriptor the
 *   spool still holds (an unlinked file stays readable) into `<name>.kaf.tmp`, in steps of a
 *   bounded size, then fsyncs it and renames it to `<name>.kaf`. A crash at any point leaves
 *   either no segment file of that name (a `*.tmp` leftover, which recovery ignores and the next
 *   copy replaces) or a complete one. The copy is byte for byte: the frames keep their disk seqs
 *   and offsets, so the spool's index stays valid and the sent/ack log written before the copy
 *   already acknowledges what must stay acknowledged.
 */
import { basename, join } from 'node:path';
import { LEGACY_ACK_LOG, LEGACY_SEGMENT_NAME, SEGMENT_NAME } from '@kubernaut/audit-spool-format';
import type { SpoolFs } from './fs.ts';
import { closeQuietly, readAt, writeFully } from './fsutil.ts';
import { readMeta } from './meta.ts';
import type { Segment } from './recovery.ts';

/** A file's identity: device and inode. */
export interface FileId {
  dev: number;
  ino: number;
}

export function fileId(st: { dev: number; ino: number }): FileId {
  return { dev: st.dev, ino: st.ino };
}

export function sameFile(a: FileId, b: FileId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** What the spool opened, to compare with what is there now. */
export interface Watched {
  /** The configured directory path (followed through symlinks, as a restart would). */
  directory: string;
  directoryId: FileId;
  /** The lock file and its identity when taken (undefined: not known). */
  lockPath: string | undefined;
  lockId: FileId | undefined;
  /** Descriptors of segment files that must still be linked (the active one, one more). */
  fds: readonly { fd: number; path: string }[];
}

/**
 * What is wrong with the watched directory, in words for the report; undefined when it is
 * still the one opened (or when that cannot be told: EACCES, EIO). Never throws.
 */
export function watchProblem(fs: SpoolFs, w: Watched): string | undefined {
  try {
    let st: ReturnType<SpoolFs['statSync']>;
    try {
      st = fs.statSync(w.directory);
    } catch (err) {
      const code = errno(err);
      return code === 'ENOENT' || code === 'ENOTDIR'
        ? `the directory is gone (${code})`
        : undefined;
    }
    if (!st.isDirectory()) return 'a file, not a directory, is in its place';
    if (!sameFile(st, w.directoryId)) return 'another directory is in its place';
    if (w.lockPath !== undefined && w.lockId !== undefined) {
      try {
        if (!sameFile(fs.statSync(w.lockPath), w.lockId))
          return `its lock file ${basename(w.lockPath)} was replaced`;
      } catch (err) {
        if (errno(err) === 'ENOENT') return `its lock file ${basename(w.lockPath)} was removed`;
      }
    }
    for (const { fd, path } of w.fds) {
      if (fs.fstatSync(fd).nlink === 0) return `its segment ${basename(path)} was removed`;
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** Thrown by homeSegments() when the directory holds spool data that is not the spool's own. */
export class ForeignSpoolError extends Error {
  readonly file: string;
  constructor(file: string) {
    super(`it holds ${file}, which is not this spool's`);
    this.name = 'ForeignSpoolError';
    this.file = file;
  }
}

/**
 * The spool's segments still linked in `real` under their own name. Throws ForeignSpoolError
 * when `names` (the directory's entries) hold another spool's data: a segment file that is not
 * one of `segments` (by dev + ino), a format 1 spool, or a meta.json of a newer format. The
 * sent/ack log, meta.json of this format and every other file are replaced or left alone by
 * the caller, so they do not count.
 */
export function homeSegments(
  fs: SpoolFs,
  real: string,
  names: readonly string[],
  segments: readonly Segment[],
): Set<Segment> {
  const byName = new Map<string, Segment>();
  for (const s of segments) byName.set(basename(s.path), s);
  const home = new Set<Segment>();
  for (const n of names) {
    if (LEGACY_SEGMENT_NAME.test(n) || n === LEGACY_ACK_LOG) throw new ForeignSpoolError(n);
    if (!SEGMENT_NAME.test(n)) continue;
    const seg = byName.get(n);
    let ours = false;
    if (seg?.fd !== undefined) {
      try {
        ours = sameFile(fs.statSync(join(real, n)), fs.fstatSync(seg.fd));
      } catch {
        ours = false;
      }
    }
    if (!ours || seg === undefined) throw new ForeignSpoolError(n);
    home.add(seg);
  }
  if (readMeta(fs, real).kind === 'newer')
    throw new ForeignSpoolError('meta.json of a newer format');
  return home;
}

/** Bytes copied per step of the background copy [8 MiB: a few milliseconds of the loop]. */
export const COPY_STEP_BYTES = 8 * 1024 * 1024;
const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Copies `bytes` bytes of a segment, read from a descriptor the spool holds, to `path` through
 * `<path>.tmp`. Methods throw on I/O errors (the caller aborts and retries later).
 */
export class SegmentCopy {
  readonly path: string;
  readonly tmp: string;
  readonly bytes: number;
  private readonly _fs: SpoolFs;
  private _fd: number | undefined;
  private _done = 0;

  constructor(fs: SpoolFs, path: string, bytes: number) {
    this._fs = fs;
    this.path = path;
    this.tmp = `${path}.tmp`;
    this.bytes = bytes;
    this._fd = fs.openSync(this.tmp, 'w+', 0o600);
  }

  /** All bytes are in the temp file (not yet synced, not yet renamed). */
  get copied(): boolean {
    return this._done >= this.bytes;
  }

  /** Copies up to `budget` more bytes from `from` (read at the same offsets). Returns how many. */
  step(from: number, budget: number): number {
    const fd = this._fd;
    if (fd === undefined) throw new Error('the copy was aborted');
    let n = 0;
    while (this._done < this.bytes && n < budget) {
      const len = Math.min(COPY_CHUNK_BYTES, this.bytes - this._done, budget - n);
      const buf = readAt(this._fs, from, this._done, len);
      if (buf.length !== len) {
        throw new Error(`short read at ${this._done} of a segment being copied to ${this.path}`);
      }
      writeFully(this._fs, fd, buf, this._done);
      this._done += len;
      n += len;
    }
    return n;
  }

  /** fdatasync of the temp file on the thread pool. */
  sync(callback: (err: Error | null) => void): void {
    const fd = this._fd;
    if (fd === undefined) {
      setImmediate(() => callback(new Error('the copy was aborted')));
      return;
    }
    this._fs.fdatasync(fd, callback);
  }

  /** fdatasync of the temp file, synchronously (at close). */
  syncNow(): void {
    if (this._fd === undefined) throw new Error('the copy was aborted');
    this._fs.fdatasyncSync(this._fd);
  }

  /**
   * Renames the synced temp file to `path` (the caller syncs the directory) and hands over its
   * descriptor, now the segment's.
   */
  commit(): number {
    const fd = this._fd;
    if (fd === undefined || !this.copied) throw new Error('the copy is not complete');
    this._fs.renameSync(this.tmp, this.path);
    this._fd = undefined;
    return fd;
  }

  /** Closes and removes the temp file (best effort). */
  abort(unlink = true): void {
    const fd = this._fd;
    this._fd = undefined;
    if (fd === undefined) return;
    closeQuietly(this._fs, fd);
    if (!unlink) return;
    try {
      this._fs.unlinkSync(this.tmp);
    } catch {
      // a leftover *.tmp is ignored by recovery and replaced by the next copy
    }
  }
}

// SPDX-License-Identifier: Apache-2.0
/* Small synchronous file helpers of the spool, over the filesystem seam. */
import { dirname } from 'node:path';
import type { SpoolFs } from './fs.ts';
import { isUnderSharedRoot, sharedRootProblem, untrustedRootError } from './shared-root.ts';

/** Writes all of `buf` at `position` (or the current position), looping on short writes. */
export function writeFully(fs: SpoolFs, fd: number, buf: Buffer, position: number | null): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(
      fd,
      buf,
      off,
      buf.length - off,
      position === null ? null : position + off,
    );
    if (n <= 0) throw new Error('short write');
    off += n;
  }
}

/**
 * Reads `length` bytes at `position` into a new Buffer (or one from `alloc`); fewer when the file
 * is shorter.
 */
export function readAt(
  fs: SpoolFs,
  fd: number,
  position: number,
  length: number,
  alloc: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const buf = alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n <= 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** fsyncs a directory so that entries created, renamed or removed in it are durable. Best effort. */
export function fsyncDirectory(fs: SpoolFs, directory: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(directory, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the data files themselves are synced.
  } finally {
    if (fd !== undefined) closeQuietly(fs, fd);
  }
}

/** Closes `fd`, ignoring errors. */
export function closeQuietly(fs: SpoolFs, fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

/** Replaces `path` atomically with `data`: write a temp file, fsync it, rename over, fsync dir. */
export function writeFileAtomic(
  fs: SpoolFs,
  directory: string,
  path: string,
  data: Buffer | string,
): void {
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    writeFully(fs, fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, 0);
    fs.fsyncSync(fd);
  } finally {
    closeQuietly(fs, fd);
  }
  fs.renameSync(tmp, path);
  fsyncDirectory(fs, directory);
}

/**
 * Creates `directory` and missing parents. Unlike `mkdirSync(..., { recursive: true })`, which
 * loops forever on some virtual filesystems (a path under /proc answers ENOENT with its parent
 * present), each level is tried at most twice. Throws when the path cannot be a directory.
 */
export function ensureDirectory(fs: SpoolFs, directory: string, mode = 0o700, depth = 0): void {
  try {
    fs.mkdirSync(directory, mode);
    checkSharedRoot(directory);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!fs.statSync(directory).isDirectory())
        throw new Error(`${directory} exists and is not a directory`);
      checkSharedRoot(directory);
      return;
    }
    const parent = dirname(directory);
    if (code !== 'ENOENT' || parent === directory || depth > 64) throw err;
    ensureDirectory(fs, parent, mode, depth + 1);
  }
  // The parent exists now: one more try; a second ENOENT is final.
  fs.mkdirSync(directory, mode);
  checkSharedRoot(directory);
}

/** Throws when `directory` lies under the shared root and that cannot be trusted (./shared-root.ts). */
function checkSharedRoot(directory: string): void {
  if (!isUnderSharedRoot(directory)) return;
  const problem = sharedRootProblem();
  if (problem !== undefined) throw untrustedRootError(directory, problem);
}

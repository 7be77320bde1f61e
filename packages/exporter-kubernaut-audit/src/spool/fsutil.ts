// SPDX-License-Identifier: Apache-2.0
/* Small synchronous file helpers of the spool. */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

/** Writes all of `buf` at `position` (or the current position), looping on short writes. */
export function writeFully(fd: number, buf: Buffer, position: number | null): void {
  let off = 0;
  while (off < buf.length) {
    const n = writeSync(fd, buf, off, buf.length - off, position === null ? null : position + off);
    if (n <= 0) throw new Error('short write');
    off += n;
  }
}

/** fsyncs a directory so that entries created, renamed or removed in it are durable. */
export function fsyncDirectory(directory: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(directory, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the data files themselves are synced.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Replaces `path` atomically with `data`: write a temp file, fsync it, rename over, fsync dir. */
export function writeFileAtomic(directory: string, path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeFully(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirectory(directory);
}

/**
 * Creates `directory` and missing parents. Unlike `mkdirSync(..., { recursive: true })`, which
 * loops forever on some virtual filesystems (a path under /proc answers ENOENT with its parent
 * present), each level is tried at most twice. Throws when the path cannot be a directory.
 */
export function ensureDirectory(directory: string, mode = 0o700, depth = 0): void {
  try {
    mkdirSync(directory, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!statSync(directory).isDirectory())
        throw new Error(`${directory} exists and is not a directory`);
      return;
    }
    const parent = dirname(directory);
    if (code !== 'ENOENT' || parent === directory || depth > 64) throw err;
    ensureDirectory(parent, mode, depth + 1);
  }
  // The parent exists now: one more try; a second ENOENT is final.
  mkdirSync(directory, { mode });
}

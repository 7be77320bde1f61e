// SPDX-License-Identifier: Apache-2.0
/*
 * Opening the files of a spool (and the files beside it a user names: a dead-letter file, a
 * key, a digest log) so that whatever lies under the name, the call returns: a FIFO would
 * block the open or the read until a writer comes, a device like /dev/zero would never end.
 * Only regular files and directories are opened; anything else is an error.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync } from 'node:fs';

/** Open flags of the spool's calls, as numbers (O_NONBLOCK can then be added). */
const FLAGS: Record<string, number> = {
  r: constants.O_RDONLY,
  'r+': constants.O_RDWR,
  w: constants.O_TRUNC | constants.O_CREAT | constants.O_WRONLY,
  'w+': constants.O_TRUNC | constants.O_CREAT | constants.O_RDWR,
  wx: constants.O_TRUNC | constants.O_CREAT | constants.O_WRONLY | constants.O_EXCL,
  a: constants.O_APPEND | constants.O_CREAT | constants.O_WRONLY,
  'a+': constants.O_APPEND | constants.O_CREAT | constants.O_RDWR,
};

/**
 * openSync that never blocks and opens only regular files and directories. Something else
 * under a spool file's name (a FIFO, a device, a socket) would block the open or the read, or
 * never end, and hang the application or the CLI: it is refused with an error (code ENOTREG,
 * as the contract's TokenFile refuses one) that callers handle as any file they cannot use.
 * O_NONBLOCK changes nothing for a regular file or a directory.
 */
export function openRegularSync(path: string, flags: string, mode?: number): number {
  const numeric = FLAGS[flags];
  const fd = openSync(path, numeric === undefined ? flags : numeric | constants.O_NONBLOCK, mode);
  let kind: string | undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isDirectory()) {
      kind = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (kind !== undefined) {
    closeSync(fd);
    throw Object.assign(new Error(`${path} is ${kind}, not a regular file`), {
      code: 'ENOTREG',
      path,
    });
  }
  return fd;
}

/** readFileSync of a regular file only (see openRegularSync). */
export function readRegularFileSync(path: string): Buffer {
  const fd = openRegularSync(path, 'r');
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The first `max` bytes at most of a regular file (see openRegularSync), and the file's size:
 * memory stays bounded by `max` whatever the file's size (a file grown past what its writer
 * makes is read up to that, the rest judged by the caller).
 */
export function readRegularFileBounded(
  path: string,
  max: number,
): { buf: Buffer; fileBytes: number } {
  const fd = openRegularSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(Math.min(fileBytes, max));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break; // it shrank meanwhile
      got += n;
    }
    return { buf: got === buf.length ? buf : buf.subarray(0, got), fileBytes };
  } finally {
    closeSync(fd);
  }
}

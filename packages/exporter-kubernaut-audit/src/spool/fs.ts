// SPDX-License-Identifier: Apache-2.0
/*
 * The spool's filesystem seam: every filesystem call of spool/ (and of the provenance state and
 * the dead-letter file beside it) goes through a SpoolFs, `nodeFs` by default. Tests inject
 * ENOSPC, EIO or EROFS at chosen calls through a wrapper (`test/spool/faulty-fs.ts`). Not public.
 */

import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  readdirSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlink,
  unlinkSync,
  write,
  writeSync,
} from 'node:fs';
import { openRegularSync, readRegularFileSync } from '@kubernaut/audit-spool-format';

/** The synchronous filesystem calls the spool makes (and a background write, fsync and unlink). */
export interface SpoolFs {
  openSync(path: string, flags: string, mode?: number): number;
  closeSync(fd: number): void;
  readSync(fd: number, buf: Buffer, offset: number, length: number, position: number): number;
  writeSync(
    fd: number,
    buf: Buffer,
    offset: number,
    length: number,
    position: number | null,
  ): number;
  /** pwrite on the thread pool (a deferred segment write): `written` bytes of `length`. */
  write(
    fd: number,
    buf: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (err: NodeJS.ErrnoException | null, written: number) => void,
  ): void;
  fdatasyncSync(fd: number): void;
  /** fsync on the thread pool: the event loop never waits on the disk. */
  fdatasync(fd: number, callback: (err: Error | null) => void): void;
  fsyncSync(fd: number): void;
  ftruncateSync(fd: number, length: number): void;
  /** `nlink` 0: the file was deleted while open; `dev` + `ino` name the file. */
  fstatSync(fd: number): { size: number; nlink: number; dev: number; ino: number };
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  /** unlink on the thread pool: deleting a large file frees its blocks off the event loop. */
  unlink(path: string, callback: (err: NodeJS.ErrnoException | null) => void): void;
  readdirSync(path: string): string[];
  statSync(path: string): {
    size: number;
    mtimeMs: number;
    /** `dev` + `ino` name the file (the spool compares them with what it opened). */
    dev: number;
    ino: number;
    mode: number;
    isDirectory(): boolean;
  };
  mkdirSync(path: string, mode: number): void;
  readFileSync(path: string): Buffer;
  realpathSync(path: string): string;
  exists(path: string): boolean;
}

/** The real filesystem. */
export const nodeFs: SpoolFs = {
  openSync: (path, flags, mode) => openRegularSync(path, flags, mode),
  closeSync: (fd) => closeSync(fd),
  readSync: (fd, buf, offset, length, position) => readSync(fd, buf, offset, length, position),
  writeSync: (fd, buf, offset, length, position) => writeSync(fd, buf, offset, length, position),
  write: (fd, buf, offset, length, position, callback) =>
    write(fd, buf, offset, length, position, callback),
  fdatasyncSync: (fd) => fdatasyncSync(fd),
  fdatasync: (fd, callback) => fdatasync(fd, callback),
  fsyncSync: (fd) => fsyncSync(fd),
  ftruncateSync: (fd, length) => ftruncateSync(fd, length),
  fstatSync: (fd) => fstatSync(fd),
  renameSync: (from, to) => renameSync(from, to),
  unlinkSync: (path) => unlinkSync(path),
  unlink: (path, callback) => unlink(path, callback),
  readdirSync: (path) => readdirSync(path),
  statSync: (path) => statSync(path),
  mkdirSync: (path, mode) => mkdirSync(path, { mode }),
  readFileSync: (path) => readRegularFileSync(path),
  realpathSync: (path) => realpathSync(path),
  exists: (path) => existsSync(path),
};

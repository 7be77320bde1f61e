// SPDX-License-Identifier: Apache-2.0
/*
 * The digest log (issue 16): `<spool directory>/digest.log`, the producer's signed chain heads as
 * JSON lines `{producer_id, session_id, seq, hash, time, key_id, sig}`, an anchor outside
 * DataStorage: whoever rewrites or truncates the database does not rewrite this file, and
 * `kubernaut-audit verify --digest-log` reports the records missing after the newest head it holds.
 *
 * Invariants:
 * - One append (one write) per signed head; heads are written after the records they name
 *   reached the spool. fsync on the spool's cadence: in the background, at most once per
 *   `syncMillis`, and synchronously at close.
 * - Bounded: when the file passes `maxBytes` it is renamed to `digest.log.1` (replacing the
 *   previous one) and a new file starts: at most about 2 × maxBytes on disk; the newest heads
 *   are always in `digest.log`.
 * - Never throws: an I/O error is a rate-limited warning and that head is not anchored.
 */
import { join } from 'node:path';
import type { SignedChainHead } from '@kubernaut/audit-provenance';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../measure/diag.ts';
import type { SpoolFs } from '../spool/fs.ts';
import { fsyncDirectory, writeFully } from '../spool/fsutil.ts';

export const DIGEST_LOG_FILE = 'digest.log';
/** Default bound of one digest log generation (bytes). */
export const DEFAULT_DIGEST_LOG_MAX_BYTES = 8 * 1024 * 1024;

const log = new ComponentDiag('kubernaut-audit provenance');

export interface DigestLogOptions {
  directory: string;
  fs: SpoolFs;
  /** Bytes before rotation [8 MiB]. */
  maxBytes?: number;
  /** Background fsync delay [1000]. */
  syncMillis?: number;
}

export class DigestLog {
  readonly path: string;
  private readonly _fs: SpoolFs;
  private readonly _dir: string;
  private readonly _max: number;
  private readonly _syncMillis: number;
  private _fd: number | undefined;
  private _size = 0;
  private _dirty = false;
  private _timer: NodeJS.Timeout | undefined;

  constructor(options: DigestLogOptions) {
    this._fs = options.fs;
    this._dir = options.directory;
    this.path = join(options.directory, DIGEST_LOG_FILE);
    this._max = Math.max(4096, options.maxBytes ?? DEFAULT_DIGEST_LOG_MAX_BYTES);
    this._syncMillis = options.syncMillis ?? 1000;
  }

  /** Appends one head. Never throws. */
  append(head: SignedChainHead): void {
    try {
      const line = Buffer.from(`${JSON.stringify(head)}\n`, 'utf8');
      if (this._fd === undefined) this._open();
      else if (this._size + line.length > this._max) this._rotate();
      writeFully(this._fs, this._fd as number, line, null);
      this._size += line.length;
      this._dirty = true;
      this._scheduleSync();
    } catch (err) {
      log.report('warn', 'digest', `cannot append to ${this.path}: ${errorText(err, 200)}`);
      this._closeFd();
    }
  }

  /** fsyncs and closes. Never throws. */
  close(): void {
    if (this._timer !== undefined) clearTimeout(this._timer);
    this._timer = undefined;
    if (this._fd !== undefined && this._dirty) {
      try {
        this._fs.fdatasyncSync(this._fd);
      } catch {
        // reported by the next append, if any
      }
    }
    this._closeFd();
  }

  private _open(): void {
    this._fd = this._fs.openSync(this.path, 'a', 0o600);
    this._size = this._fs.fstatSync(this._fd).size;
    if (this._size >= this._max) this._rotate();
  }

  private _rotate(): void {
    if (this._fd !== undefined && this._dirty) this._fs.fdatasyncSync(this._fd);
    this._closeFd();
    this._fs.renameSync(this.path, `${this.path}.1`);
    this._fd = this._fs.openSync(this.path, 'a', 0o600);
    this._size = 0;
    fsyncDirectory(this._fs, this._dir);
  }

  private _scheduleSync(): void {
    if (this._timer !== undefined) return;
    this._timer = setTimeout(() => {
      this._timer = undefined;
      const fd = this._fd;
      if (fd === undefined || !this._dirty) return;
      this._dirty = false;
      this._fs.fdatasync(fd, (err) => {
        if (err) this._dirty = true;
      });
    }, this._syncMillis);
    this._timer.unref();
  }

  private _closeFd(): void {
    const fd = this._fd;
    this._fd = undefined;
    this._dirty = false;
    if (fd === undefined) return;
    try {
      this._fs.closeSync(fd);
    } catch {
      // nothing to do
    }
  }
}

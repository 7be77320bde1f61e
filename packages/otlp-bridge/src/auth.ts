/*
 * Bearer-token check for incoming OTLP requests. The expected token comes from an option or a
 * file (re-read when it changes, so a rotated Kubernetes secret takes effect without a restart).
 * Comparison is constant-time over SHA-256 digests, so neither content nor length leaks.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** How often, at most, the token file's modification time is checked. */
const FILE_CHECK_INTERVAL_MS = 1000;

export interface BearerAuthOptions {
  bearerToken?: string;
  bearerTokenFile?: string;
}

/** Checks `Authorization: Bearer <token>` headers; `undefined` options → no authentication. */
export class BearerAuth {
  private readonly _file: string | undefined;
  private _digest: Buffer | undefined;
  private _fileMtimeMs = -1;
  private _fileCheckedAt = 0;

  constructor(options: BearerAuthOptions) {
    this._file = options.bearerTokenFile;
    if (options.bearerToken !== undefined) {
      if (options.bearerToken.trim() === '') throw new Error('bearerToken must not be empty');
      this._digest = digest(options.bearerToken.trim());
    } else if (this._file !== undefined) {
      this._reloadFile(true);
    }
  }

  /** Whether any token is required. */
  get enabled(): boolean {
    return this._digest !== undefined || this._file !== undefined;
  }

  /** Whether the `Authorization` header value carries the expected token. */
  check(authorization: string | undefined): boolean {
    if (!this.enabled) return true;
    if (this._file !== undefined) this._reloadFile(false);
    const expected = this._digest;
    if (!expected || typeof authorization !== 'string') return false;
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match?.[1]) return false;
    return timingSafeEqual(digest(match[1]), expected);
  }

  private _reloadFile(initial: boolean): void {
    const file = this._file!;
    const now = Date.now();
    if (!initial && now - this._fileCheckedAt < FILE_CHECK_INTERVAL_MS) return;
    this._fileCheckedAt = now;
    try {
      const mtime = statSync(file).mtimeMs;
      if (mtime === this._fileMtimeMs) return;
      const token = readFileSync(file, 'utf8').trim();
      this._fileMtimeMs = mtime;
      // An empty file must not mean "no token": it rejects every request.
      this._digest = token === '' ? undefined : digest(token);
    } catch (err) {
      if (initial) throw new Error(`cannot read bearer token file ${file}: ${String(err)}`);
      // Keep the last good token when the file is briefly missing (secret rotation).
    }
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

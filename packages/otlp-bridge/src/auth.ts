// SPDX-License-Identifier: Apache-2.0
/*
 * Bearer-token check for incoming OTLP requests. The expected token comes from an option or a
 * file, read with the contract's TokenFile rules (checked every second, read again when it
 * changed), so a rotated Kubernetes secret takes effect without a restart. Comparison is
 * constant-time over SHA-256 digests, so neither content nor length leaks.
 *
 * Invariants:
 * - A bridge never starts with a token no client can send: an empty token (option or file) or
 *   one with whitespace inside throws at construction, as an unreadable file does.
 * - While running, a token file that cannot be read keeps the last good token; one rotated to
 *   a token with whitespace inside keeps it too; one rotated to empty rejects every request.
 *   Each of these is told to `onWarning` (the bridge logs it, rate-limited): a silent 401 makes
 *   the Collector drop audit records.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { TokenFile } from '@kubernaut/datastorage-contract/http';

export interface BearerAuthOptions {
  bearerToken?: string;
  bearerTokenFile?: string;
  /** Told when the token file cannot be read or holds no usable token (never the token). */
  onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

/** Why a token cannot be sent as `Authorization: Bearer <token>`, or undefined when it can. */
function unusable(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return 'it is empty';
  if (/\s/.test(token)) return 'it contains whitespace';
  return undefined;
}

/** Checks `Authorization: Bearer <token>` headers; `undefined` options → no authentication. */
export class BearerAuth {
  private readonly _file: TokenFile | undefined;
  private readonly _warn: (message: string, fields: Record<string, unknown>) => void;
  private _digest: Buffer | undefined;
  private _digestOf: string | undefined;

  constructor(options: BearerAuthOptions) {
    this._warn = options.onWarning ?? (() => undefined);
    if (options.bearerToken !== undefined) {
      const token = options.bearerToken.trim();
      const why = unusable(token);
      if (why !== undefined) throw new Error(`bearerToken is unusable: ${why}`);
      this._digest = digest(token);
    } else if (options.bearerTokenFile !== undefined) {
      const path = options.bearerTokenFile;
      this._file = new TokenFile(path, {
        onReadError: (code) =>
          this._warn('cannot read the bearer token file; the last token read stays in force', {
            file: path,
            code,
          }),
      });
      let token: string | undefined;
      try {
        token = this._file.load();
      } catch (err) {
        throw new Error(`cannot read bearer token file ${path}: ${String(err)}`);
      }
      const why = unusable(token);
      if (why !== undefined) {
        throw new Error(`bearer token file ${path} holds no usable token: ${why}`);
      }
    }
  }

  /** Whether any token is required. */
  get enabled(): boolean {
    return this._digest !== undefined || this._file !== undefined;
  }

  /** Whether the `Authorization` header value carries the expected token. */
  check(authorization: string | undefined): boolean {
    if (!this.enabled) return true;
    const expected = this._expected();
    if (!expected || typeof authorization !== 'string') return false;
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match?.[1]) return false;
    return timingSafeEqual(digest(match[1]), expected);
  }

  private _expected(): Buffer | undefined {
    if (this._file === undefined) return this._digest;
    const token = this._file.token();
    if (token !== this._digestOf) {
      this._digestOf = token;
      const why = unusable(token);
      if (token === undefined) {
        // An empty file must not mean "no token": it rejects every request.
        this._digest = undefined;
        this._warn('the bearer token file is empty: every request is rejected (401)', {
          file: this._file.path,
        });
      } else if (why !== undefined) {
        this._warn(`the bearer token file holds an unusable token (${why}); the last one stays`, {
          file: this._file.path,
        });
      } else {
        this._digest = digest(token);
      }
    }
    return this._digest;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

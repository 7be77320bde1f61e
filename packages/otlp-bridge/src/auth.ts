// SPDX-License-Identifier: Apache-2.0
/*
 * Bearer-token check for incoming OTLP requests. The expected token comes from an option or a
 * file, read with the contract's TokenFile rules (checked every second, read again when it
 * changed), so a rotated Kubernetes secret takes effect without a restart. Comparison is
 * constant-time over SHA-256 digests, so neither content nor length leaks.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { TokenFile } from '@kubernaut/datastorage-contract/http';

export interface BearerAuthOptions {
  bearerToken?: string;
  bearerTokenFile?: string;
}

/** Checks `Authorization: Bearer <token>` headers; `undefined` options → no authentication. */
export class BearerAuth {
  private readonly _file: TokenFile | undefined;
  private _digest: Buffer | undefined;
  private _digestOf: string | undefined;

  constructor(options: BearerAuthOptions) {
    if (options.bearerToken !== undefined) {
      if (options.bearerToken.trim() === '') throw new Error('bearerToken must not be empty');
      this._digest = digest(options.bearerToken.trim());
    } else if (options.bearerTokenFile !== undefined) {
      this._file = new TokenFile(options.bearerTokenFile);
      try {
        this._file.load();
      } catch (err) {
        throw new Error(`cannot read bearer token file ${options.bearerTokenFile}: ${String(err)}`);
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
    // An empty file must not mean "no token": it rejects every request.
    const token = this._file.token();
    if (token !== this._digestOf) {
      this._digestOf = token;
      this._digest = token === undefined ? undefined : digest(token);
    }
    return this._digest;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

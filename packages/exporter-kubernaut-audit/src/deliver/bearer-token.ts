// SPDX-License-Identifier: Apache-2.0
/*
 * Bearer token source of the exporter: a fixed token, or a file that rotates (Kubernetes
 * projected service-account tokens), read with the rules of the contract's TokenFile: checked
 * every second, read again when it changed and at once after a 401/403. The token never leaves
 * this module except as the Authorization header value.
 */
import { TokenFile } from '@kubernaut/datastorage-contract/http';

export interface BearerTokenSourceOptions {
  token?: string;
  file?: string;
  /** How often, at most, the file is checked for a change [1000]. */
  checkIntervalMillis?: number;
  now?: () => number;
  /** Called (rate-limited by the caller) when the file cannot be read; gets the error code. */
  onReadError?: (code: string) => void;
}

export class BearerTokenSource {
  private readonly _token: string | undefined;
  private readonly _file: TokenFile | undefined;

  constructor(options: BearerTokenSourceOptions) {
    this._token = options.token;
    this._file =
      options.file === undefined
        ? undefined
        : new TokenFile(options.file, {
            ...(options.checkIntervalMillis === undefined
              ? {}
              : { checkIntervalMillis: options.checkIntervalMillis }),
            ...(options.now === undefined ? {} : { now: options.now }),
            ...(options.onReadError === undefined ? {} : { onReadError: options.onReadError }),
          });
  }

  /** True when requests carry a token. */
  get configured(): boolean {
    return this._token !== undefined || this._file !== undefined;
  }

  /** Reads the token file again at the next request (after a 401/403). */
  invalidate(): void {
    this._file?.invalidate();
  }

  /** The current `Authorization` header value, if any. Never rejects. */
  async authorization(): Promise<string | undefined> {
    const token = this._file === undefined ? this._token : (this._file.token() ?? this._token);
    return token === undefined ? undefined : `Bearer ${token}`;
  }
}

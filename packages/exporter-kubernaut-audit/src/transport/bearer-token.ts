/*
 * Bearer token source: a fixed token, or a file re-read periodically (Kubernetes
 * projected service-account tokens rotate) and at once after a 401/403.
 * The token never leaves this module except as the Authorization header value.
 */
import { readFile } from 'node:fs/promises';

/** How long a token read from a file is used before the file is read again. */
export const TOKEN_FILE_REFRESH_MILLIS = 60_000;

export interface BearerTokenSourceOptions {
  token?: string;
  file?: string;
  refreshMillis?: number;
  now?: () => number;
  /** Called (rate-limited by the caller) when the file cannot be read; gets the error code. */
  onReadError?: (code: string) => void;
}

export class BearerTokenSource {
  private readonly _token: string | undefined;
  private readonly _file: string | undefined;
  private readonly _refresh: number;
  private readonly _now: () => number;
  private readonly _onReadError: ((code: string) => void) | undefined;
  private _cached: string | undefined;
  private _readAt = Number.NEGATIVE_INFINITY;
  private _reading: Promise<string | undefined> | undefined;

  constructor(options: BearerTokenSourceOptions) {
    this._token = options.token;
    this._file = options.file;
    this._refresh = options.refreshMillis ?? TOKEN_FILE_REFRESH_MILLIS;
    this._now = options.now ?? Date.now;
    this._onReadError = options.onReadError;
  }

  /** True when requests carry a token. */
  get configured(): boolean {
    return this._token !== undefined || this._file !== undefined;
  }

  /** Forgets the cached file token so that the next call reads the file. */
  invalidate(): void {
    this._readAt = Number.NEGATIVE_INFINITY;
  }

  /** The current `Authorization` header value, if any. Never rejects. */
  async authorization(): Promise<string | undefined> {
    const token = await this._current();
    return token === undefined ? undefined : `Bearer ${token}`;
  }

  private async _current(): Promise<string | undefined> {
    if (this._file === undefined) return this._token;
    if (this._now() - this._readAt < this._refresh) return this._cached;
    this._reading ??= (async () => {
      try {
        const text = (await readFile(this._file as string, 'utf8')).trim();
        this._cached = text || undefined;
        this._readAt = this._now();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        this._onReadError?.(typeof code === 'string' ? code : 'error');
        // keep the last good token; try the file again on the next request
      } finally {
        this._reading = undefined;
      }
      return this._cached ?? this._token;
    })();
    return this._reading;
  }
}

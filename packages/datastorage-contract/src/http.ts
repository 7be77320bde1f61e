// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP plumbing shared by the servers and clients of the DataStorage API in this repository
 * (`@kubernaut/datastorage-contract/http`): reading a request body under a byte limit, writing
 * JSON and RFC 7807 problem answers, and a bearer token kept in a file that rotates.
 */
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { PROBLEM_CONTENT_TYPE, problem } from './problem.ts';
import type { ProblemDetails } from './types.ts';

/** Why a body could not be read: `too_large` → 413, `bad_encoding` → 400, `aborted`. */
export class BodyError extends Error {
  readonly kind: 'too_large' | 'bad_encoding' | 'aborted';

  constructor(kind: 'too_large' | 'bad_encoding' | 'aborted', message: string) {
    super(message);
    this.name = 'BodyError';
    this.kind = kind;
  }
}

/**
 * Reads the whole request body. Rejects with `BodyError('too_large')` as soon as it is known to
 * pass `maxBytes` (a declared Content-Length first; nothing more is buffered after that, and the
 * rest is drained so that the connection can still answer), and with `BodyError('aborted')`
 * when the client goes away first.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new BodyError('too_large', `request body of ${declared} bytes exceeds ${maxBytes}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: BodyError | undefined) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        req.resume();
        reject(err);
      } else {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        finish(new BodyError('too_large', `request body exceeds ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = (err: Error) => finish(new BodyError('aborted', err.message));
    const onClose = () => {
      if (!req.complete) finish(new BodyError('aborted', 'request aborted by the client'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * The media type of a Content-Type header, lower case and without parameters
 * (`application/json; charset=utf-8` → `application/json`); '' when there is none.
 */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** Answers `status` with a JSON body (nothing when the headers are already sent). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = 'application/json',
): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answers with an RFC 7807 problem (`application/problem+json`). */
export function sendProblem(
  res: ServerResponse,
  status: number,
  type: string,
  title: string,
  detail?: string,
  extra: { instance?: string; headers?: Record<string, string> } = {},
): void {
  const body: ProblemDetails = problem(status, type, title, detail, {
    ...(extra.instance === undefined ? {} : { instance: extra.instance }),
  });
  sendJson(res, status, body, extra.headers, PROBLEM_CONTENT_TYPE);
}

/** The longest delay a Node.js timer can wait (ms). */
const MAX_TIMER_MILLIS = 2_147_483_647;

/**
 * Stops an HTTP server gracefully: it takes no new connections, its idle keep-alive connections
 * are closed, `settled` (the requests in flight) is awaited for at most `timeoutMillis`, and what
 * is still open then is cut.
 */
export async function closeGracefully(
  server: Server,
  settled: Promise<unknown>,
  timeoutMillis = Number.POSITIVE_INFINITY,
): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    // Past the longest timer Node fires after 1 ms: such a bound is no bound in practice.
    if (Number.isFinite(timeoutMillis) && timeoutMillis <= MAX_TIMER_MILLIS) {
      timer = setTimeout(resolve, Math.max(0, timeoutMillis));
    }
  });
  await Promise.race([settled, deadline]);
  clearTimeout(timer);
  server.closeAllConnections();
  await stopped;
}

/** Options of {@link TokenFile}. */
export interface TokenFileOptions {
  /** The file is looked at (stat) at most this often; it is read again when it changed [1000]. */
  checkIntervalMillis?: number;
  /** Clock in ms [Date.now]. */
  now?: () => number;
  /** Called when the file cannot be read, with the error code; the last good token is kept. */
  onReadError?: (code: string) => void;
}

/**
 * A bearer token kept in a file that rotates (a Kubernetes projected service-account token, a
 * mounted secret), or a file of accepted tokens one a line (a server's). One set of rules for
 * every reader of such a file:
 *
 * - the file is checked at most every `checkIntervalMillis` and read again when its size,
 *   modification or change time or inode changed;
 * - `invalidate()` (after a 401/403) makes the next check read it again regardless;
 * - `token()`: the whole text with surrounding whitespace trimmed; an empty file means no token;
 * - `tokens()`: every line that is neither blank nor a `#` comment, trimmed;
 * - when the file cannot be read, the last good content stays and `onReadError` is told; the
 *   next read that succeeds counts as a change;
 * - only a regular file of at most MAX_TOKEN_FILE_BYTES is read (`ENOTREG`, `EFBIG`): a FIFO
 *   would block the event loop until a writer came, a device such as /dev/zero never ends;
 * - `token()` refuses a token with characters an HTTP header cannot carry (a line break or NUL
 *   inside it, `EINVALTOKEN`): the last good token stays, as for an unreadable file.
 */
/** The largest token file read (1 MiB: a list of hundreds of JWTs). */
export const MAX_TOKEN_FILE_BYTES = 1024 * 1024;

/** Characters an HTTP header value cannot carry (Node's own rule: tab, printable Latin-1). */
const NOT_IN_HEADER = /[^\t\x20-\x7e\x80-\xff]/;

function fileError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export class TokenFile {
  readonly path: string;
  private readonly _interval: number;
  private readonly _now: () => number;
  private readonly _onReadError: ((code: string) => void) | undefined;
  private _text = '';
  private _tokens: readonly string[] | undefined = [];
  /** The text token() last looked at, and the token it gave. */
  private _tokenOf: string | undefined;
  private _token: string | undefined;
  private _identity = '';
  private _checkedAt = Number.NEGATIVE_INFINITY;

  constructor(path: string, options: TokenFileOptions = {}) {
    this.path = path;
    this._interval = options.checkIntervalMillis ?? 1000;
    this._now = options.now ?? Date.now;
    this._onReadError = options.onReadError;
  }

  /** Reads the file now; throws when it cannot be read (for a check at start-up). */
  load(): string | undefined {
    this._read(true);
    return this._text === '' ? undefined : this._text;
  }

  /** The current token (undefined when the file is empty, or was never readable). */
  token(): string | undefined {
    this._check();
    if (this._tokenOf !== this._text) {
      this._tokenOf = this._text;
      if (NOT_IN_HEADER.test(this._text)) this._onReadError?.('EINVALTOKEN');
      else this._token = this._text === '' ? undefined : this._text;
    }
    return this._token;
  }

  /**
   * The current tokens of a file that lists several, one a line (blank lines and `#` comments
   * left out). The same array is returned until the file's content is read again.
   */
  tokens(): readonly string[] {
    this._check();
    this._tokens ??= Object.freeze(
      this._text
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#')),
    );
    return this._tokens;
  }

  /** Reads the file again at the next check, changed or not. */
  invalidate(): void {
    this._identity = '';
    this._checkedAt = Number.NEGATIVE_INFINITY;
  }

  private _check(): void {
    if (this._now() - this._checkedAt >= this._interval) this._read(false);
  }

  private _read(strict: boolean): void {
    this._checkedAt = this._now();
    try {
      const st = statSync(this.path);
      if (!st.isFile()) throw fileError('ENOTREG', `${this.path} is not a regular file`);
      if (st.size > MAX_TOKEN_FILE_BYTES) {
        throw fileError('EFBIG', `${this.path} is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
      }
      const identity = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      if (identity === this._identity) return;
      const text = readFileSync(this.path, 'utf8').trim();
      this._identity = identity;
      this._text = text;
      this._tokens = undefined;
    } catch (err) {
      this._identity = '';
      if (strict) throw err;
      const code = (err as { code?: unknown } | null)?.code;
      this._onReadError?.(typeof code === 'string' ? code : 'error');
    }
  }
}

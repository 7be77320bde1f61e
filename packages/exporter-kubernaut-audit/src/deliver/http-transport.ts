// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP transport to DataStorage: one POST of a JSON body per call over node:http(s)
 * (a body of several parts is written corked, as one write of all parts, never joined)
 * with a keep-alive agent and a per-attempt timeout that destroys the socket.
 * It reports what happened without interpreting it (that is the exporter's job), and
 * whether the request had been fully sent when it failed: a failure after that point is
 * ambiguous (the server may have committed the batch).
 *
 * Every call settles, exactly once, whatever the peer does: on the answer, an error, the timeout,
 * the abort signal, or the request closing without any of these (a `101 Switching Protocols`
 * answer, which node:http ends with a bare close): the timer and the abort settle by
 * themselves, never by waiting for an error event that a destroyed request does not emit.
 *
 * Credentials: the Authorization header is only ever put on the request. Errors carry
 * fixed text and error codes, never headers.
 */
import http from 'node:http';
import https from 'node:https';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createUnzip } from 'node:zlib';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { bodyBytes, type RequestBody } from './request-body.ts';

/**
 * Largest response body kept, in characters (problem details, 201 ids); the rest is read and
 * discarded. The body is decoded as it arrives (UTF-8, a character split across reads is kept
 * whole): no joined copy of the raw bytes per response, which at a drain's request rate was
 * ≈ 10 MB a second of short-lived external memory.
 */
export const MAX_RESPONSE_CHARS = 1024 * 1024;
/**
 * Past this many characters the rest of a body is not read either: the connection is closed and
 * the answer settles with what was kept (`truncated`). A body this large is never DataStorage's.
 */
export const MAX_RESPONSE_READ_CHARS = 16 * MAX_RESPONSE_CHARS;

export interface HttpTransportOptions {
  /** Full URL of the batch endpoint. */
  url: URL;
  /** Static headers (the caller adds Authorization per request). */
  headers?: Record<string, string>;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface SendOptions {
  timeoutMillis: number;
  /** Extra per-request headers, e.g. Authorization. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** The request (its socket and timeout) must not keep the process alive. */
  unref?: boolean;
}

export type TransportResult =
  | {
      kind: 'response';
      status: number;
      headers: http.IncomingHttpHeaders;
      /** Parsed JSON body, or the text when not JSON, or undefined when empty. */
      body: unknown;
      /** The body was longer than MAX_RESPONSE_CHARS: `body` is its start. */
      truncated?: boolean;
    }
  | {
      kind: 'error';
      /** `timeout`, `network` or `aborted`. */
      reason: 'timeout' | 'network' | 'aborted';
      /** Error code (`ECONNREFUSED`, `ECONNRESET`, ...) or a short description. */
      code: string;
      /** True when the whole request had been written before the failure (ambiguous). */
      sent: boolean;
    };

/** Sends request bodies to one URL; safe under concurrent calls. */
export class HttpTransport {
  private readonly _url: URL;
  private readonly _headers: Record<string, string>;
  private readonly _agent: http.Agent;
  private readonly _module: typeof http | typeof https;
  private _destroyed = false;

  constructor(options: HttpTransportOptions) {
    this._url = options.url;
    this._headers = { ...(options.headers ?? {}) };
    if (this._url.protocol === 'https:') {
      this._module = https;
      this._agent = new https.Agent({
        keepAlive: true,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        rejectUnauthorized: true,
      });
    } else {
      this._module = http;
      this._agent = new http.Agent({ keepAlive: true });
    }
  }

  /** POSTs `body` (JSON). Never rejects. */
  send(body: RequestBody, options: SendOptions): Promise<TransportResult> {
    if (this._destroyed) {
      return Promise.resolve({ kind: 'error', reason: 'aborted', code: 'shutdown', sent: false });
    }
    return new Promise<TransportResult>((resolve) => {
      let settled = false;
      let sent = false;
      let timedOut = false;
      let aborted = false;
      const finish = (r: TransportResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const req = this._module.request(this._url, {
        method: 'POST',
        agent: this._agent,
        headers: {
          ...this._headers,
          ...options.headers,
          'content-type': 'application/json',
          'content-length': String(bodyBytes(body)),
          accept: 'application/json, application/problem+json',
          // No compressed answers, please (a proxy in the path may compress anyway: decoded).
          'accept-encoding': 'identity',
        },
      });
      const fail = (err: unknown) => {
        const code = errorCode(err);
        finish({
          kind: 'error',
          reason: aborted ? 'aborted' : timedOut ? 'timeout' : 'network',
          code: timedOut ? 'timeout' : aborted ? 'aborted' : code,
          sent,
        });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new Error('request timed out'));
        fail(undefined);
      }, options.timeoutMillis);
      if (options.unref) {
        timer.unref();
        req.on('socket', (socket) => socket.unref());
      }
      const onAbort = () => {
        aborted = true;
        req.destroy(new Error('request aborted'));
        fail(undefined);
      };
      if (options.signal?.aborted) {
        aborted = true;
      } else {
        options.signal?.addEventListener('abort', onAbort, { once: true });
      }
      let responded = false;
      req.on('error', fail);
      req.on('finish', () => {
        sent = true;
      });
      // An upgrade answer (101) is a status like any other here: the socket is not taken.
      req.on('upgrade', (res, socket) => {
        responded = true;
        socket.destroy();
        finish({
          kind: 'response',
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: undefined,
        });
      });
      req.on('close', () => {
        if (!responded) fail(Object.assign(new Error('closed'), { code: 'ECONNRESET' }));
      });
      req.on('response', (res) => {
        responded = true;
        let text = '';
        let read = 0;
        const answer = () =>
          finish({
            kind: 'response',
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: parseBody(text),
            ...(text.length < read ? { truncated: true } : {}),
          });
        // A compressed answer (a proxy that compresses whatever the request asked for) is
        // decoded, within the same bounds: DataStorage's 201 must be read to be taken.
        const decoder = decoderOf(res.headers['content-encoding']);
        const source = decoder === undefined ? res : res.pipe(decoder);
        source.setEncoding('utf8');
        source.on('data', (c: string) => {
          read += c.length;
          if (text.length < MAX_RESPONSE_CHARS) text += c;
          if (read > MAX_RESPONSE_READ_CHARS) {
            answer();
            res.destroy();
            decoder?.destroy();
          }
        });
        res.on('error', fail);
        decoder?.on('error', () => {
          // Not what its Content-Encoding says: read as the bytes it is not, it answers nothing.
          text = `(a body that does not decode as ${String(res.headers['content-encoding'])})`;
          answer();
          res.destroy();
        });
        res.on('close', () => {
          if (!res.complete)
            fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' }));
        });
        source.on('end', answer);
      });
      if (aborted) {
        req.destroy(new Error('request aborted'));
        return;
      }
      if (Buffer.isBuffer(body)) {
        req.end(body);
        return;
      }
      // The parts leave in one writev: corked until end().
      req.cork();
      for (const part of body as readonly Buffer[]) req.write(part);
      req.end();
    });
  }

  /** Destroys the agent and its sockets; later sends fail at once. */
  destroy(): void {
    this._destroyed = true;
    this._agent.destroy();
  }
}

/** A decoder for a response's Content-Encoding (gzip, deflate, br), none for identity. */
function decoderOf(header: string | undefined): Transform | undefined {
  const coding = header?.trim().toLowerCase();
  if (coding === 'gzip' || coding === 'x-gzip' || coding === 'deflate') return createUnzip();
  if (coding === 'br') return createBrotliDecompress();
  return undefined;
}

function parseBody(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    // A byte order mark some servers put first is not JSON, but no reason to resend.
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return text.slice(0, 2000);
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? errorText(err, 100) : 'error';
}

/* Small HTTP helpers: bounded body reading, media types, JSON / problem responses. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  problem,
} from '@kubernaut/exporter-kubernaut-audit/contract';

/** The body was larger than allowed. */
export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** The client closed the connection before its request body was complete. */
export class ClientAbortedError extends Error {
  constructor() {
    super('request aborted by the client');
    this.name = 'ClientAbortedError';
  }
}

/** Reads the whole body, failing fast once it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new BodyTooLargeError(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.off('data', onData);
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    // An abort surfaces as an `error` (ECONNRESET, "aborted") and/or a `close` before the
    // body is complete: either way it is the client's doing, not the database's.
    req.on('error', () => {
      if (done) return;
      done = true;
      reject(new ClientAbortedError());
    });
    req.on('close', () => {
      if (!done && !req.complete) {
        done = true;
        reject(new ClientAbortedError());
      }
    });
  });
}

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

/** Sends an RFC 7807 problem (`application/problem+json`). */
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

/** True when a Content-Type header names JSON (`application/json`, any parameters). */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const semi = header.indexOf(';');
  const type = (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json';
}

const REQUEST_ID_RE = /^[\x21-\x7e]{1,200}$/;

/** The client's X-Request-ID when it is a sane token, else undefined. */
export function clientRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && REQUEST_ID_RE.test(header) ? header : undefined;
}

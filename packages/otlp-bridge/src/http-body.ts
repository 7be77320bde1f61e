/*
 * Reading an HTTP request body with a size limit, and gzip decoding with a limit on the
 * decompressed size (a small gzip body must not expand into gigabytes).
 */
import type { IncomingMessage } from 'node:http';
import { gunzip } from 'node:zlib';

/** Why a body could not be read: `too_large` → 413, `bad_encoding` → 400, `aborted`. */
export class BodyError extends Error {
  readonly kind: 'too_large' | 'bad_encoding' | 'aborted';

  constructor(kind: 'too_large' | 'bad_encoding' | 'aborted', message: string) {
    super(message);
    this.name = 'BodyError';
    this.kind = kind;
  }
}

/** Reads the whole request body; rejects with `BodyError('too_large')` past `maxBytes`. */
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
      req.off('aborted', onAborted);
      if (err) {
        // Drain the rest so the connection can answer; nothing more is buffered.
        req.resume();
        reject(err);
      } else {
        resolve(Buffer.concat(chunks, size));
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
    const onAborted = () => finish(new BodyError('aborted', 'request aborted by the client'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Gunzips a body; `too_large` past `maxBytes` decompressed, `bad_encoding` for invalid gzip. */
export function gunzipBody(body: Buffer, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: maxBytes }, (err, out) => {
      if (!err) {
        resolve(out);
        return;
      }
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        reject(new BodyError('too_large', `decompressed request body exceeds ${maxBytes} bytes`));
      } else {
        reject(new BodyError('bad_encoding', `invalid gzip body: ${err.message}`));
      }
    });
  });
}

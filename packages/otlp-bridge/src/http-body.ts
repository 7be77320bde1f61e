// SPDX-License-Identifier: Apache-2.0
/*
 * gzip decoding of a request body with a limit on the decompressed size (a small gzip body must
 * not expand into gigabytes). The body itself is read with the contract's readBody.
 */
import { gunzip } from 'node:zlib';
import { BodyError } from '@kubernaut/datastorage-contract/http';

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

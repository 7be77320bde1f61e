// SPDX-License-Identifier: Apache-2.0
/* HTTP plumbing: the body reader's limits and the rotating token file. */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  BodyError,
  closeGracefully,
  MAX_TOKEN_FILE_BYTES,
  readBody,
  sendProblem,
  TokenFile,
} from '@kubernaut/datastorage-contract/http';
import { cleanupTempDirs, manualClock, tempDir } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';

afterEach(() => cleanupTempDirs());

/** A server answering with what readBody made of the request. */
async function bodyServer(limit: number): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    readBody(req, limit).then(
      (body) => res.end(`ok ${body.length}`),
      (err: unknown) => {
        if (err instanceof BodyError && err.kind === 'too_large') {
          sendProblem(res, 413, 'payload-too-large', 'Payload Too Large', err.message);
        } else res.destroy();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function post(
  url: string,
  body: Buffer,
  chunked = false,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('closeGracefully', () => {
  it.each([
    ['3e9 ms', 3e9],
    ['the longest timer', 2_147_483_647],
    ['no bound', Number.POSITIVE_INFINITY],
  ])('with a timeout of %s waits for the requests in flight (no timer overflow into a 1 ms cut)', async (_what, timeoutMillis) => {
    let answer: (() => void) | undefined;
    let inFlight: Promise<void> = Promise.resolve();
    const server = createServer((_req, res) => {
      inFlight = new Promise<void>((resolve) => {
        answer = () => {
          res.end('late but whole');
          resolve();
        };
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const response = post(url, Buffer.from('x'));
      while (answer === undefined) await new Promise((r) => setImmediate(r));
      const closed = closeGracefully(
        server,
        Promise.resolve().then(() => inFlight),
        timeoutMillis,
      );
      // The close has begun; the request is answered only 20 ms later (an overflowed timer
      // fires after 1 ms and cuts it).
      await new Promise((r) => setTimeout(r, 20));
      answer();
      expect(await response).toEqual({ status: 200, text: 'late but whole' });
      await closed;
      expect(warnings.filter((w) => w === 'TimeoutOverflowWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      server.closeAllConnections();
    }
  });
});

describe('readBody', () => {
  it('reads a body up to the limit, and answers 413 past it (declared or streamed)', async () => {
    const { url, server } = await bodyServer(1000);
    try {
      expect(await post(url, Buffer.alloc(1000))).toEqual({ status: 200, text: 'ok 1000' });
      const declared = await post(url, Buffer.alloc(1001));
      expect(declared.status).toBe(413);
      expect(JSON.parse(declared.text).detail).toMatch(/1001 bytes exceeds 1000/);
      const streamed = await post(url, Buffer.alloc(5000), true);
      expect(streamed.status).toBe(413);
      expect(JSON.parse(streamed.text).detail).toMatch(/exceeds 1000 bytes/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('TokenFile', () => {
  /** A token file holding `text`, read on a manual clock; read errors are recorded. */
  function tokenFile(text: string) {
    const file = join(tempDir(), 'token');
    writeFileSync(file, text);
    const clock = manualClock(0);
    const errors: string[] = [];
    const t = new TokenFile(file, { now: clock.now, onReadError: (c) => errors.push(c) });
    return { file, clock, errors, t };
  }

  it('one set of rules: checked at most every interval, re-read on change or invalidate, last good token kept', () => {
    const { file, clock, errors, t } = tokenFile(' first \n');
    expect(t.token()).toBe('first');
    writeFileSync(file, 'second-token');
    clock.advance(500);
    expect(t.token()).toBe('first');
    clock.advance(500);
    expect(t.token()).toBe('second-token');
    writeFileSync(file, '');
    t.invalidate();
    expect(t.token()).toBeUndefined(); // an empty file is no token
    writeFileSync(file, 'third');
    t.invalidate();
    expect(t.token()).toBe('third');
    rmSync(file);
    t.invalidate();
    expect(t.token()).toBe('third'); // the file is gone: the last good token stays
    expect(errors).toEqual(['ENOENT']);
    expect(() => t.load()).toThrow(/ENOENT/);
  });

  it('refuses what is not a small regular file (a FIFO would block the event loop, /dev/zero would fill memory), keeping the last good token', () => {
    const { file, errors, t } = tokenFile('good');
    expect(t.token()).toBe('good');
    const fifo = join(tempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [path, code] of [
      [fifo, 'ENOTREG'],
      ['/dev/zero', 'ENOTREG'],
      [tempDir(), 'ENOTREG'],
    ] as const) {
      const other = new TokenFile(path, { onReadError: (c) => errors.push(c) });
      expect(other.token()).toBeUndefined(); // returns at once: nothing is opened
      expect(() => other.load()).toThrow(/not a regular file/);
      expect(errors.pop()).toBe(code);
    }
    writeFileSync(file, 'x'.repeat(MAX_TOKEN_FILE_BYTES + 1));
    t.invalidate();
    expect(t.token()).toBe('good'); // too large: refused, the last good token stays
    expect(errors).toEqual(['EFBIG']);
  });

  it('a token with characters no HTTP header can carry (NUL, a line break inside) is refused, not sent', () => {
    const { file, errors, t } = tokenFile('good');
    expect(t.token()).toBe('good');
    for (const bad of ['bad\ntoken', 'bad\0token', 'bad\rtoken']) {
      writeFileSync(file, bad);
      t.invalidate();
      expect(t.token()).toBe('good');
      expect(errors.pop()).toBe('EINVALTOKEN');
    }
    // A file of several tokens, one a line, is a list: line breaks separate them.
    writeFileSync(file, 'alpha\nbeta\n');
    t.invalidate();
    expect(t.tokens()).toEqual(['alpha', 'beta']);
  });

  it('tokens(): a file of accepted tokens, one a line, read by the same rules', () => {
    const { file, clock, errors, t } = tokenFile('# clients\n\n  alpha  \r\nbeta\n');
    t.load();
    const first = t.tokens();
    expect(first).toEqual(['alpha', 'beta']);
    expect(t.tokens()).toBe(first); // the same list until the file is read again
    writeFileSync(file, 'gamma\n');
    expect(t.tokens()).toBe(first); // not checked again within the interval
    clock.advance(1000);
    expect(t.tokens()).toEqual(['gamma']);
    rmSync(file);
    clock.advance(1000);
    const kept = t.tokens();
    expect(kept).toEqual(['gamma']); // unreadable: the tokens read last stay
    expect(errors).toEqual(['ENOENT']);
    writeFileSync(file, 'gamma\n');
    clock.advance(1000);
    // After a failed read, the next good read counts as a change (the same content included).
    expect(t.tokens()).not.toBe(kept);
    expect(t.tokens()).toEqual(['gamma']);
    writeFileSync(file, '# none\n');
    t.invalidate();
    expect(t.tokens()).toEqual([]);
  });
});

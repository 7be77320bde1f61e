// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP transport over real loopback HTTP: a body of several parts (spool frame slices)
 * arrives as their concatenation, with the right Content-Length, in one request; the same
 * parts can be sent again (a retry) unchanged. A response body is decoded whole however its
 * bytes arrive, and a huge one is read to its end but only its first MAX_RESPONSE_CHARS kept; an
 * endless one is cut at MAX_RESPONSE_READ_CHARS. Every call settles: a 101 answer (which
 * node:http ends with a bare close) too. A TLS mismatch is described, not just coded. The
 * request asks for an uncompressed answer; a compressed one (a proxy that compresses anyway)
 * is decoded, within the same bounds, and one that does not decode answers nothing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HttpTransport,
  MAX_RESPONSE_CHARS,
  MAX_RESPONSE_READ_CHARS,
} from '../../src/deliver/http-transport.ts';
import { classify } from '../../src/deliver/outcomes.ts';

interface Seen {
  length: string | undefined;
  body: string;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function server(): Promise<{ url: URL; seen: Seen[] }> {
  const seen: Seen[] = [];
  const s = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ length: req.headers['content-length'], body: Buffer.concat(chunks).toString() });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"event_ids":[]}');
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  close = () => new Promise((r) => s.close(() => r()));
  return { url: new URL(`http://127.0.0.1:${(s.address() as AddressInfo).port}/b`), seen };
}

describe('HttpTransport', () => {
  it('writes a body of parts as one request: their concatenation, Content-Length their total', async () => {
    const { url, seen } = await server();
    const t = new HttpTransport({ url });
    const frame = Buffer.from('[{"a":"é"},{"b":2}]');
    const parts = [frame.subarray(0, 11), Buffer.from(','), Buffer.from('{"c":3}]')];
    for (let i = 0; i < 3; i++) {
      const r = await t.send(parts, { timeoutMillis: 5000 });
      expect(r.kind === 'response' && r.status).toBe(201);
    }
    const single = await t.send(Buffer.from('[{"d":4}]'), { timeoutMillis: 5000 });
    expect(single.kind === 'response' && single.status).toBe(201);
    t.destroy();
    expect(seen.map((s) => s.body)).toEqual([
      '[{"a":"é"},{"c":3}]',
      '[{"a":"é"},{"c":3}]',
      '[{"a":"é"},{"c":3}]',
      '[{"d":4}]',
    ]);
    expect(seen[0]?.length).toBe(String(Buffer.byteLength('[{"a":"é"},{"c":3}]')));
    // The parts were not consumed or changed by sending.
    expect(Buffer.concat(parts).toString()).toBe('[{"a":"é"},{"c":3}]');
  });
});

describe('HttpTransport responses', () => {
  async function answering(
    write: (res: ServerResponse, req: IncomingMessage) => void,
  ): Promise<URL> {
    const s = createServer((req, res) => {
      req.resume();
      req.on('end', () => write(res, req));
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    close = () =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(() => r());
      });
    return new URL(`http://127.0.0.1:${(s.address() as AddressInfo).port}/b`);
  }

  it.each([
    ['gzip', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ] as const)('a 201 compressed with %s by a proxy is decoded and taken; the request asked for none', async (coding, compress) => {
    const ids = { event_ids: ['e1', 'e2'], message: '2 audit events created successfully' };
    const asked: Array<string | undefined> = [];
    const url = await answering((res, req) => {
      asked.push(req.headers['accept-encoding']);
      res
        .writeHead(201, { 'content-type': 'application/json', 'content-encoding': coding })
        .end(compress(Buffer.from(JSON.stringify(ids))));
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[{"a":1},{"b":2}]'), { timeoutMillis: 5000 });
    t.destroy();
    expect(r.kind === 'response' && r.body).toEqual(ids);
    expect(classify(r, 2)).toEqual({ kind: 'accepted', status: 201 });
    expect(asked).toEqual(['identity']);
  });

  it('a 201 whose JSON starts with a byte order mark is read as its JSON', async () => {
    const url = await answering((res) => {
      res
        .writeHead(201, { 'content-type': 'application/json; charset=utf-8' })
        .end(`\ufeff${JSON.stringify({ event_ids: ['e1'] })}`);
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[{"a":1}]'), { timeoutMillis: 5000 });
    t.destroy();
    expect(classify(r, 1)).toEqual({ kind: 'accepted', status: 201 });
  });

  it('a body that does not decode as its Content-Encoding says answers nothing: retried, and the detail says why', async () => {
    const url = await answering((res) => {
      res
        .writeHead(201, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
        .end('{"event_ids":["e1"]}'); // not gzip at all
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[{"a":1}]'), { timeoutMillis: 5000 });
    t.destroy();
    const action = classify(r, 1);
    expect(action.kind).toBe('retry');
    expect((action as { detail: string }).detail).toMatch(/does not decode as gzip/);
  });

  it('a gzip bomb is read no further than MAX_RESPONSE_READ_CHARS decoded', async () => {
    const bomb = gzipSync(Buffer.alloc(MAX_RESPONSE_READ_CHARS * 4, 0x20));
    const url = await answering((res) => {
      res.writeHead(201, { 'content-encoding': 'gzip' }).end(bomb);
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[{"a":1}]'), { timeoutMillis: 20_000 });
    t.destroy();
    expect(r.kind === 'response' && r.truncated).toBe(true);
    expect(bomb.length).toBeLessThan(MAX_RESPONSE_READ_CHARS);
  });

  it('decodes a body whose UTF-8 characters are split across writes', async () => {
    const body = Buffer.from(JSON.stringify({ detail: 'é€😀'.repeat(3), event_ids: ['a'] }));
    const url = await answering((res) => {
      res.writeHead(400, { 'content-type': 'application/problem+json' });
      // One byte per write: every multi-byte character arrives in pieces.
      let i = 0;
      const next = () => {
        if (i >= body.length) return res.end();
        res.write(body.subarray(i, i + 1), next);
        i++;
      };
      next();
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[]'), { timeoutMillis: 5000 });
    t.destroy();
    expect(r.kind).toBe('response');
    expect(r.kind === 'response' && r.body).toEqual({ detail: 'é€😀é€😀é€😀', event_ids: ['a'] });
  });

  it('keeps at most MAX_RESPONSE_CHARS of a huge body, reads the rest and answers', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const url = await answering((res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      for (let i = 0; i < 64; i++) res.write(chunk); // 4 MiB
      res.end();
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[]'), { timeoutMillis: 10_000 });
    t.destroy();
    expect(r.kind === 'response' && r.status).toBe(502);
    // Not JSON: kept as the first 2,000 characters of what was kept.
    expect(r.kind === 'response' && r.body).toBe(chunk.slice(0, 2000));
  });

  it('reads no more than MAX_RESPONSE_READ_CHARS of an endless body: settles with its start, marked truncated', async () => {
    const chunk = 'y'.repeat(256 * 1024);
    let written = 0;
    const url = await answering((res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.write('{"event_ids":["');
      const more = () => {
        // An endless body, written as fast as the client reads it.
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', more);
      };
      more();
    });
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[]'), { timeoutMillis: 30_000 });
    t.destroy();
    expect(r.kind === 'response' && r.status).toBe(201);
    expect(r.kind === 'response' && r.truncated).toBe(true);
    expect(written).toBeLessThan(MAX_RESPONSE_READ_CHARS * 4);
    const action = classify(r, 1);
    expect(action).toMatchObject({ kind: 'retry', unexpected: true });
    expect(action.kind === 'retry' && action.detail).toContain(
      `body over ${MAX_RESPONSE_CHARS / (1024 * 1024)} MiB`,
    );
  });
});

describe('HttpTransport against a peer that ends the request without an answer', () => {
  it('a 101 Switching Protocols answer settles the call (no hang), as an answer that is not DataStorage’s', async () => {
    const s = createNetServer((socket) => {
      socket.once('data', () =>
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
        ),
      );
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    close = () => new Promise((r) => s.close(() => r()));
    const url = new URL(`http://127.0.0.1:${(s.address() as AddressInfo).port}/b`);
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[]'), { timeoutMillis: 60_000 });
    t.destroy();
    expect(r).toMatchObject({ kind: 'response', status: 101 });
    expect(classify(r, 1)).toMatchObject({ kind: 'retry', unexpected: true, status: 101 });
  });

  it('an https url to a plain-HTTP port fails as a network error that says what is wrong', async () => {
    const url = await server().then((x) => new URL(x.url.href.replace('http:', 'https:')));
    const t = new HttpTransport({ url });
    const r = await t.send(Buffer.from('[]'), { timeoutMillis: 10_000 });
    t.destroy();
    expect(r.kind).toBe('error');
    const action = classify(r, 1);
    expect(action.kind === 'retry' && action.detail).toMatch(/TLS failed: an https url/);
  });
});

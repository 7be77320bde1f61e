// SPDX-License-Identifier: Apache-2.0
/*
 * The server against a hostile world, over real loopback sockets: PostgreSQL sessions that die
 * as they open, bodies that are not UTF-8, many clients holding large bodies at once, and
 * clients that ask for `100 Continue`. Every answer is a clear status with a problem body; the
 * process never crashes, and what the client sent is never silently changed.
 */
import { connect, type Socket } from 'node:net';
import {
  createScratchDatabase,
  minimalEvent,
  queryEvents,
  request,
  type ScratchDatabase,
  TEST_AUTH_HEADERS,
  testMetrics,
} from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonLogger } from '../src/logger.ts';
import { backends, type Harness, pgliteBackend } from './backends.ts';
import { type RunningCommand, startCommand, stopCommand } from './command.ts';
import { TerminatingProxy, viaProxy } from './wire.ts';

const PROBLEM = 'https://kubernaut.ai/problems/';
const BATCH = '/api/v1/audit/events/batch';

describe('PostgreSQL sessions terminated as they open (server process)', () => {
  let db: ScratchDatabase;
  const proxy = new TerminatingProxy();
  let cmd: RunningCommand | undefined;
  beforeAll(async () => {
    db = await createScratchDatabase('ds_hostile');
    await proxy.start(new URL(db.connectionString));
  });
  afterAll(async () => {
    await stopCommand(cmd);
    await proxy.stop();
    await db?.drop();
  });

  it('answers 503 with Retry-After, never crashes, and writes again once sessions live', async () => {
    cmd = await startCommand([
      '--port',
      '0',
      '--management-port',
      '0',
      '--database-url',
      viaProxy(db.connectionString, proxy.port),
    ]);
    proxy.terminateNewSessions = true;
    proxy.cutAll();
    // Idle sessions cut just now may serve a request or two before the pool sees them closed;
    // after that every request opens a session that is terminated at once.
    for (let i = 0; i < 10 && proxy.terminated < 3; i++) {
      const ev = minimalEvent();
      const r = await request(cmd.url, 'POST', BATCH, [ev]);
      expect(r.status).toBe(503);
      expect(r.body.type).toBe(`${PROBLEM}service-unavailable`);
      expect(r.headers.get('retry-after')).not.toBeNull();
    }
    expect(proxy.terminated).toBeGreaterThanOrEqual(3);
    expect(cmd.child.exitCode).toBeNull();
    proxy.terminateNewSessions = false;
    const ev = minimalEvent();
    expect((await request(cmd.url, 'POST', BATCH, [ev])).status).toBe(201);
    const q = await queryEvents(cmd.url, { correlation_id: ev.correlation_id as string });
    expect(q.pagination.total).toBe(1);
    expect(
      cmd.lines.filter(
        (l) => l.level === 'error' && l.msg !== 'database unavailable and no DLQ configured',
      ),
    ).toEqual([]);
  });
});

/** `[ev]` as UTF-8 bytes with the bytes of `marker` (ASCII, in `ev`) replaced by `bytes`. */
function withBytes(body: unknown, marker: string, bytes: number[]): Buffer {
  const buf = Buffer.from(JSON.stringify(body));
  const at = buf.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  return Buffer.concat([buf.subarray(0, at), Buffer.from(bytes), buf.subarray(at + marker.length)]);
}

describe.each(backends)('bodies that are not UTF-8 on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await backend.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it.each([
    ['an invalid byte in event_data', [0xff]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['an encoded surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
  ])('rejects %s with 400 and stores nothing', async (_label, bytes) => {
    const ok = minimalEvent();
    const ev = minimalEvent({ event_action: 'recorded_MARK' });
    for (const [path, body] of [
      [BATCH, withBytes([ok, ev], 'MARK', bytes)],
      ['/api/v1/audit/events', withBytes(ev, 'MARK', bytes)],
    ] as const) {
      const r = await fetch(`${h.server.url}${path}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...TEST_AUTH_HEADERS },
      });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      const problem = (await r.json()) as { type: string; detail: string };
      expect(problem.type).toBe(`${PROBLEM}invalid_request`);
      expect(problem.detail).toMatch(/UTF-8/);
    }
    for (const e of [ok, ev]) {
      const q = await queryEvents(h.server.url, { correlation_id: e.correlation_id as string });
      expect(q.pagination.total).toBe(0);
    }
  });

  it('still stores every valid UTF-8 character as sent', async () => {
    const ev = minimalEvent({ event_action: 'recorded_é€😀' });
    const r = await request(h.server.url, 'POST', BATCH, [ev]);
    expect(r.status).toBe(201);
    const q = await queryEvents(h.server.url, { correlation_id: ev.correlation_id as string });
    expect(q.data[0]?.event_action).toBe('recorded_é€😀');
  });
});

/** A raw HTTP/1.1 client on one loopback socket: what it received, and waits on it. */
class RawClient {
  readonly socket: Socket;
  received = '';
  readonly closed: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(url: string) {
    const u = new URL(url);
    this.socket = connect(Number(u.port), u.hostname);
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => {
      this.received += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve()));
    this.closed.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves once `pattern` was received (rejects if the connection closes first). */
  async until(pattern: RegExp): Promise<string> {
    for (;;) {
      const m = pattern.exec(this.received);
      if (m) return m[0];
      if (this.socket.destroyed) throw new Error(`closed without ${pattern}: ${this.received}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}

/** Request head of a JSON POST with the suite's token. */
const head = (path: string, headers: Record<string, string | number>) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\n${Object.entries({
    'content-type': 'application/json',
    ...TEST_AUTH_HEADERS,
    ...headers,
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** A valid batch of one event, padded with spaces to `size` bytes. */
function paddedBatch(size: number): { ev: Record<string, unknown>; body: Buffer } {
  const ev = minimalEvent();
  const text = JSON.stringify([ev]);
  return { ev, body: Buffer.from(text.padEnd(size, ' ')) };
}

describe('request bodies held at once, and Expect: 100-continue', () => {
  let h: Harness;
  const BUDGET = 1024 * 1024;
  const LARGE = 600_000;
  beforeAll(async () => {
    h = await pgliteBackend.start({ maxBufferedBodyBytes: BUDGET });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('answers 503 with Retry-After past the budget, unread, and takes bodies again once it frees', async () => {
    const a = new RawClient(h.server.url);
    const held = paddedBatch(LARGE);
    a.socket.write(head(BATCH, { expect: '100-continue', 'content-length': LARGE }));
    // 100 Continue: the server counts A's body from now on, before it is sent.
    await a.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);

    const b = paddedBatch(LARGE);
    const refused = await request(h.server.url, 'POST', BATCH, b.body.toString());
    expect(refused.status).toBe(503);
    expect(refused.contentType).toBe('application/problem+json');
    expect(refused.body.type).toBe(`${PROBLEM}service-unavailable`);
    expect(refused.headers.get('retry-after')).toBe('1');
    // A small body still fits beside A's.
    const small = minimalEvent();
    expect((await request(h.server.url, 'POST', BATCH, [small])).status).toBe(201);

    a.socket.write(held.body);
    expect(await a.until(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 \d+/)).toMatch(/ 201$/);
    a.socket.destroy();
    const again = await request(h.server.url, 'POST', BATCH, b.body.toString());
    expect(again.status).toBe(201);
    for (const e of [held.ev, b.ev, small]) {
      const q = await queryEvents(h.server.url, { correlation_id: e.correlation_id as string });
      expect(q.pagination.total).toBe(1);
    }
  });

  it.each([
    ['a declared body over 5 MiB', { 'content-length': 100_000_000 }, 413],
    ['a body that is not JSON', { 'content-type': 'text/plain', 'content-length': 10 }, 415],
    [
      'a request without a valid token',
      { authorization: 'Bearer nope', 'content-length': 10 },
      401,
    ],
  ])('refuses %s before inviting it: no 100 Continue, connection closed', async (_label, headers, status) => {
    const c = new RawClient(h.server.url);
    c.socket.write(head(BATCH, { expect: '100-continue', ...headers }));
    await c.closed;
    expect(c.received).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(c.received).not.toContain('100 Continue');
    expect(c.received).toMatch(/\r\nconnection: close\r\n/i);
    expect(c.received).toContain('application/problem+json');
  });
});

describe('requests the HTTP parser refuses', () => {
  let h: Harness;
  const metrics = testMetrics();
  const lines: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    h = await pgliteBackend.start({
      meterProvider: metrics.meterProvider,
      quiet: false,
      logger: createJsonLogger({
        level: 'info',
        stream: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
      }),
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const body = () => JSON.stringify([minimalEvent()]);
  it.each([
    [
      'a chunk size that is not hexadecimal',
      () => `${head(BATCH, { 'transfer-encoding': 'chunked' })}ZZ\r\n${body()}\r\n0\r\n\r\n`,
      400,
      'invalid_request',
    ],
    [
      'a chunk longer than its size',
      () => `${head(BATCH, { 'transfer-encoding': 'chunked' })}5\r\n${body()}\r\n0\r\n\r\n`,
      400,
      'invalid_request',
    ],
    [
      'both Content-Length and Transfer-Encoding',
      () =>
        `${head(BATCH, { 'content-length': 5, 'transfer-encoding': 'chunked' })}5\r\n[1,2]\r\n0\r\n\r\n`,
      400,
      'invalid_request',
    ],
    [
      'a negative Content-Length',
      () => head(BATCH, { 'content-length': -1 }),
      400,
      'invalid_request',
    ],
    [
      'headers over 16 KiB',
      () => head(BATCH, { 'x-padding': 'x'.repeat(20_000), 'content-length': 2 }),
      431,
      'request-header-fields-too-large',
    ],
  ])('answers %s with a problem, logs and counts it, and closes', async (_label, text, status, type) => {
    const before = await metrics.histogramCount('http.server.request.duration', {
      'http.response.status_code': status,
    });
    const logged = lines.length;
    const c = new RawClient(h.server.url);
    c.socket.write(text());
    await c.closed;
    expect(c.received).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(c.received).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/i);
    expect(c.received).toMatch(/\r\nconnection: close\r\n/i);
    const problem = JSON.parse(c.received.slice(c.received.indexOf('\r\n\r\n') + 4)) as {
      type: string;
      status: number;
    };
    expect(problem).toMatchObject({ type: `${PROBLEM}${type}`, status });
    expect(
      await metrics.histogramCount('http.server.request.duration', {
        'http.response.status_code': status,
      }),
    ).toBe(before + 1);
    expect(lines.slice(logged)).toContainEqual(
      expect.objectContaining({ msg: 'malformed request refused', status }),
    );
  });
});

describe('a connection reset by its client', () => {
  let h: Harness;
  const metrics = testMetrics();
  let logged: (msg: string) => void = () => {};
  beforeAll(async () => {
    h = await pgliteBackend.start({
      meterProvider: metrics.meterProvider,
      quiet: false,
      logger: createJsonLogger({
        level: 'debug',
        stream: { write: (l: string) => logged(String(JSON.parse(l).msg)) },
      }),
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('is not refused as a malformed request (no 400 counted)', async () => {
    const seen = new Promise<string>((resolve) => {
      logged = (msg) => {
        if (msg === 'connection failed' || msg === 'malformed request refused') resolve(msg);
      };
    });
    const c = new RawClient(h.server.url);
    // Half a request line, then a reset: the server's socket fails with ECONNRESET.
    c.socket.write('POST /api/v1/audit/ev', () => c.socket.resetAndDestroy());
    expect(await seen).toBe('connection failed');
    expect(
      await metrics.histogramCount('http.server.request.duration', {
        'http.response.status_code': 400,
      }),
    ).toBe(0);
  });
});

describe('a malformed request pipelined behind a good one', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await pgliteBackend.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('answers the good one first (its 201 is not replaced by the 400), then closes', async () => {
    const ev = minimalEvent();
    const body = JSON.stringify([ev]);
    const c = new RawClient(h.server.url);
    // One write: node's parser meets the garbage while the batch is still being stored.
    c.socket.write(
      `${head(BATCH, { 'content-length': Buffer.byteLength(body) })}${body}GARBAGE\r\n\r\n`,
    );
    await c.closed;
    expect(c.received).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(c.received).toMatch(
      /\r\n\r\n\{"event_ids":\[[^\]]+\][^}]*\}HTTP\/1\.1 400 Bad Request\r\n/,
    );
    expect(c.received).toContain(`"type":"${PROBLEM}invalid_request"`);
    const q = await queryEvents(h.server.url, { correlation_id: ev.correlation_id as string });
    expect(q.pagination.total).toBe(1);
  });
});

describe.each(backends)('a database that lost its tables on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await backend.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('is not ready (503 naming the cause) while writes cannot succeed', async () => {
    expect((await request(h.server.url, 'GET', '/readyz')).status).toBe(200);
    // As after the database was dropped and created again empty, or restored without them.
    await h.sql('DROP TABLE audit_events, audit_event_chain_heads CASCADE');
    expect((await request(h.server.url, 'POST', BATCH, [minimalEvent()])).status).toBe(500);
    const r = await request(h.server.url, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.contentType).toBe('application/problem+json');
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.body.detail).toMatch(/audit_events tables/);
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * The bridge against a hostile world, on real loopback sockets: malformed and abusive HTTP
 * (raw `node:net` sockets), hostile bodies (gzip tricks, malformed protobuf and JSON, bodies
 * that decode into millions of values), credentials sent twice or rotated away, and the command
 * abused from the outside (bad flags, a busy port, signals). Well-behaved bodies are what the
 * OTel SDK's own OTLP exporters send. Every answer must be a clear status with an OTLP body,
 * never a crash or a hang, and a 200 must mean every audit record is delivered or reported in
 * partial_success.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import { spoolUsageOf } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  type AppEncoding,
  auditLogRecord,
  cleanupTempDirs,
  FaultServer,
  REPO_ROOT,
  realisticPayload,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
  tempDir,
  waitFor,
} from '@kubernaut/test-kit';
import type { AnyValue, LogRecord } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type OtlpBridge, type OtlpBridgeOptions, startOtlpBridge } from '../src/index.ts';
import { testBridgeOptions } from './support/bridge-options.ts';
import { startOtlpCapture } from './support/otlp-capture.ts';

const PB = 'application/x-protobuf';
const JSON_CT = 'application/json';

let ds: FaultServer;
let bridge: OtlpBridge | undefined;
let logLines: string[] = [];

async function startBridge(extra: Partial<OtlpBridgeOptions> = {}): Promise<OtlpBridge> {
  bridge = await startOtlpBridge(
    testBridgeOptions(ds.url, tempDir('otlp-bridge-hostile-'), {
      logger: (level, message, fields) =>
        logLines.push(`${level} ${message} ${JSON.stringify(fields)}`),
      ...extra,
    }),
  );
  return bridge;
}

beforeEach(async () => {
  ds = await FaultServer.start();
  logLines = [];
});

afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
  await ds.close();
  cleanupTempDirs();
});

/** What the real SDK OTLP exporter sends for `records`, one request. */
async function sdkBody(encoding: AppEncoding, records: LogRecord[]): Promise<Buffer> {
  const capture = await startOtlpCapture();
  try {
    const app = startSdkApp({
      url: capture.url,
      encoding,
      resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
    });
    for (const r of records) app.emit(r);
    await app.flush();
    await app.shutdown();
    return capture.requests[0]!.body;
  } finally {
    await capture.close();
  }
}

interface Exchange {
  /** Everything the bridge sent, as latin1. */
  text: string;
  /** The status codes of the answers, in order. */
  statuses: number[];
  /** Whether the bridge closed the connection (else the exchange timed out). */
  closed: boolean;
  millis: number;
}

/**
 * Sends `steps` on a raw connection (a number is a pause in ms) and collects what comes back
 * until the bridge closes the connection or `timeoutMs` passes.
 */
async function exchange(
  port: number,
  steps: Array<Buffer | string | number>,
  timeoutMs = 3_000,
): Promise<Exchange> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const started = Date.now();
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  void (async () => {
    for (const step of steps) {
      if (typeof step === 'number') await new Promise((r) => setTimeout(r, step));
      else if (!socket.destroyed)
        socket.write(typeof step === 'string' ? Buffer.from(step, 'latin1') : step);
    }
  })();
  const wasClosed = await closed;
  socket.destroy();
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  return { text, statuses, closed: wasClosed, millis: Date.now() - started };
}

/** A raw POST /v1/logs with `headers` (a value may hold "\r\n" for repeated headers). */
function rawPost(
  body: Buffer,
  headers: Record<string, string> = {},
  options: { path?: string; version?: string } = {},
): Buffer {
  const all = {
    Host: 'bridge',
    'Content-Type': PB,
    'Content-Length': String(body.length),
    ...headers,
  };
  const head = Object.entries(all)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n');
  return Buffer.concat([
    Buffer.from(
      `POST ${options.path ?? '/v1/logs'} HTTP/${options.version ?? '1.1'}\r\n${head}\r\n\r\n`,
      'latin1',
    ),
    body,
  ]);
}

async function post(
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function delivered(): Promise<string[]> {
  await bridge!.processor.forceFlush({ timeoutMillis: 10_000 });
  return ds.received().map((s) => s.event.correlation_id);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited protobuf field. */
function field(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), varint(content.length), content]);
}

/** A protobuf request of `n` empty log records in one scope: two bytes each on the wire. */
function emptyRecordsProtobuf(n: number): Buffer {
  const records = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) records[2 * i] = 0x12; // ScopeLogs.log_records, length 0
  return field(0x0a, field(0x12, records)); // request.resource_logs → ResourceLogs.scope_logs
}

describe('transport', () => {
  it('answers pipelined requests in order on one connection, the good one after 401/404/415/400 included', async () => {
    const b = await startBridge({ bearerToken: 'tok' });
    const good = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'pipelined' })]);
    const auth = { Authorization: 'Bearer tok' };
    const result = await exchange(
      b.port,
      [
        Buffer.concat([
          rawPost(good, { Authorization: 'Bearer wrong' }),
          rawPost(good, auth, { path: '/v1/traces' }),
          rawPost(good, { ...auth, 'Content-Type': 'text/plain' }),
          rawPost(Buffer.from([0x0a, 0xff]), auth),
          rawPost(good, auth),
        ]),
      ],
      1_500,
    );
    expect(result.statuses).toEqual([401, 404, 415, 400, 200]);
    expect(await delivered()).toEqual(['pipelined']);
  });

  it('takes Expect: 100-continue and HTTP/1.0 requests', async () => {
    const b = await startBridge();
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'continue' })]);
    const head = rawPost(body, { Expect: '100-continue' }).subarray(0, -body.length);
    const continued = await exchange(b.port, [head, 200, body], 1_000);
    expect(continued.statuses).toEqual([100, 200]);
    const old = await exchange(b.port, [
      rawPost(
        await sdkBody('protobuf', [auditLogRecord({ correlationId: 'http10' })]),
        {},
        {
          version: '1.0',
        },
      ),
    ]);
    expect(old.statuses).toEqual([200]);
    expect(old.closed).toBe(true);
    expect((await delivered()).sort()).toEqual(['continue', 'http10']);
  });

  it('a client that disconnects right after its body: the records are spooled and delivered once, the room released', async () => {
    const b = await startBridge();
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'gone' })]);
    const socket = connect(b.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.end(rawPost(body));
    socket.destroy();
    await waitFor(() => ds.received().length > 0 || undefined, { timeoutMs: 10_000 });
    expect(await delivered()).toEqual(['gone']);
    expect(spoolUsageOf(b.processor)?.bytes).toBe(0);
  });

  it('a client that disconnects mid-body frees its reservation; the next request is taken', async () => {
    const b = await startBridge();
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'after-abort' })]);
    const socket = connect(b.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(rawPost(body).subarray(0, -10));
    await waitFor(() => (spoolUsageOf(b.processor)?.bytes ?? 0) > 0 || undefined, {
      timeoutMs: 5_000,
    });
    socket.destroy();
    await waitFor(() => spoolUsageOf(b.processor)?.bytes === 0 || undefined, { timeoutMs: 5_000 });
    expect((await post(b.url, body, { 'Content-Type': PB })).status).toBe(200);
    expect(await delivered()).toEqual(['after-abort']);
  });

  it('answers what Node refuses to parse with a status and a google.rpc.Status body, then closes', async () => {
    const b = await startBridge();
    const chunked = (size: string) =>
      `POST /v1/logs HTTP/1.1\r\nHost: b\r\nContent-Type: ${JSON_CT}\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\nabc\r\n0\r\n\r\n`;
    const manyHeaders = Array.from({ length: 3_000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const cases: Array<[string, string, number]> = [
      ['bad chunk size', chunked('zz'), 400],
      ['chunk size past 2^64', chunked('fffffffffffffffffff'), 400],
      [
        'Content-Length and Transfer-Encoding',
        rawPost(Buffer.from('{}'), { 'Transfer-Encoding': 'chunked' }).toString('latin1'),
        400,
      ],
      [
        'an oversized header',
        `POST /v1/logs HTTP/1.1\r\nHost: b\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
      ],
      ['very many headers', `POST /v1/logs HTTP/1.1\r\nHost: b\r\n${manyHeaders}\r\n`, 431],
    ];
    for (const [name, request, status] of cases) {
      const result = await exchange(b.port, [request]);
      expect({ name, statuses: result.statuses, closed: result.closed }).toEqual({
        name,
        statuses: [status],
        closed: true,
      });
      const body = result.text.slice(result.text.indexOf('\r\n\r\n') + 4);
      expect(JSON.parse(body), name).toMatchObject({ code: 3, message: expect.any(String) });
    }
  });

  it('slowloris: headers trickled past requestTimeoutMillis get 408 with a body, and the connection is closed', async () => {
    const b = await startBridge({ requestTimeoutMillis: 900 });
    const trickle = Array.from({ length: 60 }, (_, i) => [100, `X-${i}: a\r\n`]).flat();
    const result = await exchange(b.port, ['POST /v1/logs HTTP/1.1\r\n', ...trickle], 5_000);
    expect(result.closed).toBe(true);
    expect(result.statuses).toEqual([408]);
    expect(result.millis).toBeLessThan(4_000);
    expect(result.text).toContain('"code":4');
  });

  it('a requestTimeoutMillis no timer can wait is capped with a warning, never a process warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const b = await startBridge({ requestTimeoutMillis: 1e10 });
      expect(
        logLines.some((l) =>
          /requestTimeoutMillis 10000000000 is longer than a timer can wait/.test(l),
        ),
      ).toBe(true);
      const answer = await post(b.url, '{}', { 'Content-Type': JSON_CT });
      expect(answer.status).toBe(200);
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('100 parallel connections are each answered 200, and every record is delivered', async () => {
    const b = await startBridge();
    const bodies = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        sdkBody('protobuf', [auditLogRecord({ correlationId: `parallel-${i}` })]),
      ),
    );
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        exchange(b.port, [rawPost(bodies[i % 4]!, { Connection: 'close' })], 20_000),
      ),
    );
    expect(answers.map((a) => a.statuses)).toEqual(Array.from({ length: 100 }, () => [200]));
    const ids = await delivered();
    expect(ids).toHaveLength(100);
    expect(new Set(ids)).toEqual(new Set(['parallel-0', 'parallel-1', 'parallel-2', 'parallel-3']));
  });
});

describe('content', () => {
  it('gzip: any casing and spacing of "gzip" is taken; gzip bombs 413, truncated, trailing garbage and double gzip 400, other codings 415', async () => {
    const b = await startBridge({ maxRequestBodyBytes: 1024 * 1024 });
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'gzipped' })]);
    const gz = gzipSync(body);
    const send = async (payload: Buffer, encoding: string) =>
      (await post(b.url, payload, { 'Content-Type': PB, 'Content-Encoding': encoding })).status;
    expect(await send(gz, 'GZIP')).toBe(200);
    expect(await send(gz, ' gzip ')).toBe(200);
    expect(await send(gzipSync(Buffer.alloc(64 * 1024 * 1024)), 'gzip')).toBe(413);
    expect(await send(gz.subarray(0, gz.length - 12), 'gzip')).toBe(400);
    expect(await send(Buffer.concat([gz, Buffer.from('trailing garbage')]), 'gzip')).toBe(400);
    expect(await send(gzipSync(gz), 'gzip')).toBe(400);
    expect(await send(gz, 'gzip, identity')).toBe(415);
    expect(await send(gz, 'br')).toBe(415);
    expect(await delivered()).toEqual(['gzipped', 'gzipped']);
  });

  it('Content-Type: parameters and casing are taken, a missing one is 415', async () => {
    const b = await startBridge();
    const pb = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'ct-pb' })]);
    const json = await sdkBody('json', [auditLogRecord({ correlationId: 'ct-json' })]);
    expect(
      (await post(b.url, pb, { 'Content-Type': 'application/x-protobuf; charset=binary' })).status,
    ).toBe(200);
    expect((await post(b.url, json, { 'Content-Type': 'Application/JSON' })).status).toBe(200);
    const none = await exchange(
      b.port,
      [rawPost(pb).toString('latin1').replace(`Content-Type: ${PB}\r\n`, '')],
      1_000,
    );
    expect(none.statuses).toEqual([415]);
    expect(await delivered()).toEqual(['ct-pb', 'ct-json']);
  });

  it('malformed JSON shapes are 400 with a Status body; empty requests are 200', async () => {
    const b = await startBridge();
    const cases: Array<[string, number]> = [
      ['', 400],
      ['[1]', 400],
      ['"resourceLogs"', 400],
      ['null', 400],
      ['['.repeat(100_000), 400],
      [`{"resourceLogs":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 400],
      ['{"resourceLogs":{}}', 400],
      ['{"resourceLogs":[null]}', 400],
      ['{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"-1"}]}]}]}', 400],
      [
        '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"99999999999999999999"}}]}]}]}',
        400,
      ],
      [
        '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"\\ud800"}}]}]}]}',
        400,
      ],
      ['{}', 200],
      ['{"resourceLogs":[]}', 200],
      ['{"resourceLogs":[{"scopeLogs":[{"logRecords":null}]}]}', 200],
    ];
    for (const [text, status] of cases) {
      const answer = await post(b.url, text, { 'Content-Type': JSON_CT });
      expect({ text: text.slice(0, 60), status: answer.status }).toEqual({
        text: text.slice(0, 60),
        status,
      });
      if (status === 400) expect(JSON.parse(answer.text)).toMatchObject({ code: 3 });
    }
  });

  it('keys named __proto__, constructor, toString are data or unknown fields, never a crash', async () => {
    const b = await startBridge();
    const json = JSON.parse(
      (await sdkBody('json', [auditLogRecord({ correlationId: 'keys' })])).toString(),
    ) as { resourceLogs: Array<Record<string, unknown>> };
    const rl = json.resourceLogs[0]!;
    Object.assign(rl, { constructor: 1, toString: 'x', hasOwnProperty: {} });
    const text = JSON.stringify(json).replace(
      '{"resourceLogs"',
      '{"__proto__":{"x":1},"constructor":{},"resourceLogs"',
    );
    expect((await post(b.url, text, { 'Content-Type': JSON_CT })).status).toBe(200);
    expect(await delivered()).toEqual(['keys']);
  });

  it('malformed protobuf is 400: invalid UTF-8 in a string, a length past the end, and an unknown field that swallows the next resource', async () => {
    const b = await startBridge();
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'swallowed' })]);
    const badUtf8 = Buffer.from(body);
    const at = badUtf8.indexOf('swallowed');
    badUtf8[at] = 0xff;
    const pastEnd = Buffer.concat([Buffer.from([0x0a, 0x7f]), body.subarray(0, 20)]);
    // A first ResourceLogs of two bytes whose unknown field 15 claims the bytes after it: a
    // reader that follows it never sees the second ResourceLogs, the one with the record.
    const head = Buffer.concat([Buffer.from([0x7a]), varint(body.length)]);
    const swallowing = Buffer.concat([Buffer.from([0x0a, head.length]), head, body]);
    for (const bad of [badUtf8, pastEnd, swallowing]) {
      const answer = await post(b.url, bad, { 'Content-Type': PB });
      expect(answer.status).toBe(400);
    }
    expect(await delivered()).toEqual([]);
  });

  it('protobuf with unknown fields of every wire type is taken; an empty body is an empty request', async () => {
    const b = await startBridge();
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'unknown-fields' })]);
    // field 20 varint, 21 fixed64, 22 length-delimited, 23 group (start, a varint, end), 24 fixed32
    const unknown = Buffer.from([
      0xa0, 0x01, 0x05, 0xa9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0xb2, 0x01, 0x02, 0x41, 0x42, 0xbb,
      0x01, 0x08, 0x01, 0xbc, 0x01, 0xc5, 0x01, 1, 2, 3, 4,
    ]);
    expect(
      (await post(b.url, Buffer.concat([unknown, body, unknown]), { 'Content-Type': PB })).status,
    ).toBe(200);
    expect((await post(b.url, Buffer.alloc(0), { 'Content-Type': PB })).status).toBe(200);
    expect(await delivered()).toEqual(['unknown-fields']);
  });

  it('every AnyValue kind arrives in event_data; NaN and infinities are rejected in partial_success, not stored altered', async () => {
    const b = await startBridge();
    const data: Record<string, AnyValue> = {
      ...(realisticPayload('gateway.signal.received') as Record<string, AnyValue>),
      text: 'ünïcödé ✓',
      flag: true,
      count: 42,
      big: 2 ** 53 + 2,
      ratio: 0.125,
      list: ['a', 1, false, { inner: 'x' }],
      map: { nested: { deeper: [1, 2] } },
    };
    // Bytes travel as base64 in event_data (the mapping's documented encoding).
    const withBytes = { ...data, raw: new Uint8Array([1, 2, 3]) };
    const body = await sdkBody('json', [
      auditLogRecord({ correlationId: 'kinds', data: withBytes as never }),
    ]);
    expect((await post(b.url, body, { 'Content-Type': JSON_CT })).status).toBe(200);
    for (const special of ['NaN', 'Infinity', '-Infinity']) {
      const text = body.toString().replace('{"doubleValue":0.125}', `{"doubleValue":"${special}"}`);
      expect(text).toContain(special);
      const answer = await post(b.url, text, { 'Content-Type': JSON_CT });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text).partialSuccess).toMatchObject({ rejectedLogRecords: '1' });
    }
    expect(await delivered()).toEqual(['kinds']);
    expect(ds.received()[0]?.event.event_data).toMatchObject({ ...data, raw: 'AQID' });
  });

  it('timestamps: 0 takes the observed time or now; far future is rejected in partial_success; observed only is kept', async () => {
    const b = await startBridge();
    const now = Date.now();
    const observed = [Math.floor(now / 1000) - 60, 5_000] as [number, number];
    const body = await sdkBody('json', [
      auditLogRecord({ correlationId: 'observed-only', observedTimestamp: observed }),
    ]);
    const json = JSON.parse(body.toString());
    const record = json.resourceLogs[0].scopeLogs[0].logRecords[0];
    record.timeUnixNano = '0';
    expect((await post(b.url, JSON.stringify(json), { 'Content-Type': JSON_CT })).status).toBe(200);
    record.observedTimeUnixNano = '0';
    record.attributes.find(
      (a: { key: string }) => a.key === 'audit.correlation.id',
    ).value.stringValue = 'no-time';
    expect((await post(b.url, JSON.stringify(json), { 'Content-Type': JSON_CT })).status).toBe(200);
    record.timeUnixNano = '18446744073709551615';
    const future = await post(b.url, JSON.stringify(json), { 'Content-Type': JSON_CT });
    expect(JSON.parse(future.text).partialSuccess.errorMessage).toMatch(/future/);
    const events = (await delivered()).map((id, i) => [
      id,
      ds.received()[i]?.event.event_timestamp,
    ]);
    expect(events[0]).toEqual([
      'observed-only',
      `${new Date(observed[0] * 1000).toISOString().slice(0, 19)}.000005Z`,
    ]);
    expect(events[1]?.[0]).toBe('no-time');
    expect(Math.abs(Date.parse(String(events[1]?.[1])) - now)).toBeLessThan(60_000);
    expect(events).toHaveLength(2);
  });

  it.each([
    ['protobuf', PB, () => emptyRecordsProtobuf(2 ** 20 + 1)],
    [
      'json',
      JSON_CT,
      () =>
        Buffer.from(
          `{"resourceLogs":[{"scopeLogs":[{"logRecords":[${'{},'.repeat(2 ** 20)}{}]}]}]}`,
        ),
    ],
  ])('a small %s body that decodes into over a million values is 413 before it is decoded (memory, event loop)', async (_name, contentType, make) => {
    const b = await startBridge();
    const body = make();
    expect(body.length).toBeLessThan(4 * 1024 * 1024);
    // Before, it was decoded and answered 200, after 4-6 s of one event loop and ~600 MB.
    const answer = await post(b.url, body, { 'Content-Type': contentType });
    expect(answer.status).toBe(413);
    expect(answer.text).toMatch(/too large: the request holds more than 1048576/);
  });

  it('maxRequestValues bounds what one request decodes into; below it the request is taken', async () => {
    const b = await startBridge({ maxRequestValues: 200 });
    const records = (n: number) =>
      Array.from({ length: n }, (_, i) => auditLogRecord({ correlationId: `values-${n}-${i}` }));
    for (const encoding of ['protobuf', 'json'] as const) {
      const ct = encoding === 'protobuf' ? PB : JSON_CT;
      expect(
        (await post(b.url, await sdkBody(encoding, records(1)), { 'Content-Type': ct })).status,
      ).toBe(200);
      expect(
        (await post(b.url, await sdkBody(encoding, records(20)), { 'Content-Type': ct })).status,
      ).toBe(413);
    }
    expect(await delivered()).toEqual(['values-1-0', 'values-1-0']);
  });
});

describe('authentication', () => {
  it('the scheme is case-insensitive and whitespace around the token is allowed; anything else is 401', async () => {
    const b = await startBridge({ bearerToken: 'tok' });
    const body = await sdkBody('protobuf', [{ body: 'not audit' }]);
    const answers: Record<string, number> = {};
    for (const value of [
      'bearer tok',
      'BEARER tok',
      'Bearer   tok  ',
      'Bearer\ttok',
      'Basic dG9rOg==',
      'Bearertok',
      'Bearer tok extra',
      'Bearer',
    ]) {
      answers[value] = (
        await exchange(b.port, [rawPost(body, { Authorization: value, Connection: 'close' })])
      ).statuses[0]!;
    }
    expect(answers).toEqual({
      'bearer tok': 200,
      'BEARER tok': 200,
      'Bearer   tok  ': 200,
      'Bearer\ttok': 200,
      'Basic dG9rOg==': 401,
      Bearertok: 401,
      'Bearer tok extra': 401,
      Bearer: 401,
    });
  });

  it('two Authorization headers are refused (400) whichever comes first: Node would read the first, a proxy the last', async () => {
    const b = await startBridge({ bearerToken: 'tok' });
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'two-credentials' })]);
    for (const pair of [
      'Bearer tok\r\nAuthorization: Bearer other',
      'Bearer other\r\nAuthorization: Bearer tok',
    ]) {
      const result = await exchange(b.port, [
        rawPost(body, { Authorization: pair, Connection: 'close' }),
      ]);
      expect(result.statuses).toEqual([400]);
    }
    expect(await delivered()).toEqual([]);
  });

  it('a rotated token file takes effect; a removed one keeps the last token and says so; an emptied one refuses all and says so', async () => {
    const file = join(tempDir('otlp-bridge-token-'), 'token');
    writeFileSync(file, 'first\n');
    const b = await startBridge({ bearerTokenFile: file });
    const body = await sdkBody('protobuf', [{ body: 'not audit' }]);
    const status = async (token: string) =>
      (await post(b.url, body, { 'Content-Type': PB, Authorization: `Bearer ${token}` })).status;
    expect(await status('first')).toBe(200);
    writeFileSync(file, 'second\n');
    await waitFor(async () => (await status('second')) === 200 || undefined, { timeoutMs: 5_000 });
    expect(await status('first')).toBe(401);

    rmSync(file);
    // A request looks at the file again once a second has passed since the last look: the
    // last good token stays in force, and the look that finds the file gone says so.
    await waitFor(
      async () => {
        expect(await status('second')).toBe(200);
        return (
          logLines.some((l) => /cannot read the bearer token file.*ENOENT/.test(l)) || undefined
        );
      },
      { timeoutMs: 10_000 },
    );

    writeFileSync(file, '');
    await waitFor(async () => (await status('second')) === 401 || undefined, { timeoutMs: 5_000 });
    expect(logLines.some((l) => /bearer token file is empty/.test(l))).toBe(true);
    expect(logLines.join('\n')).not.toContain('second');
  });

  it('refuses to start with a token no client can send: an empty token file, whitespace inside', async () => {
    const dir = tempDir('otlp-bridge-token-');
    writeFileSync(join(dir, 'empty'), '\n');
    writeFileSync(join(dir, 'spaced'), 'two words\n');
    await expect(startBridge({ bearerTokenFile: join(dir, 'empty') })).rejects.toThrow(/empty/);
    await expect(startBridge({ bearerTokenFile: join(dir, 'spaced') })).rejects.toThrow(
      /whitespace/,
    );
    await expect(startBridge({ bearerToken: 'two words' })).rejects.toThrow(/whitespace/);
    bridge = undefined;
  });
});

describe('management port', () => {
  it('answers HEAD, unknown paths and methods, and readyz while closing', async () => {
    const b = await startBridge({ managementPort: 0 });
    const m = b.managementUrl!;
    const head = await fetch(`${m}/readyz`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
    expect((await fetch(`${m}/metrics`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${m}/nope`)).status).toBe(404);
    const postAnswer = await fetch(`${m}/readyz`, { method: 'POST' });
    expect([postAnswer.status, postAnswer.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    // A request in flight holds close() open: readyz says 503 meanwhile.
    const socket = connect(b.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(rawPost(Buffer.alloc(100)).subarray(0, -50));
    await waitFor(() => (spoolUsageOf(b.processor)?.bytes ?? 0) > 0 || undefined, {
      timeoutMs: 5_000,
    });
    const closing = b.close();
    const ready = await fetch(`${m}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/shutting down/);
    socket.destroy();
    await closing;
  });
});

describe('the command', () => {
  const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
  const BIN = join(REPO_ROOT, 'packages/otlp-bridge/src/bin.ts');
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  function run(args: string[]) {
    const child = spawn(NODE, ['--conditions=@kubernaut/source', BIN, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const stderr: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
    const exit = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    const line = (msg: string) =>
      waitFor(
        () =>
          stderr.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === msg),
        {
          timeoutMs: 20_000,
          describe: () => stderr.join('\n'),
        },
      );
    return { child, stderr, exit, line };
  }
  const base = () => [
    '--datastorage-url',
    'http://127.0.0.1:9',
    '--spool-dir',
    join(tempDir('otlp-bridge-bin-'), 'spool'),
    '--host',
    '127.0.0.1',
  ];

  it.each([
    [['--port', 'abc'], /invalid port abc/],
    [['--port', '70000'], /invalid port 70000/],
    [['--port', '1.5'], /invalid port 1.5/],
    [['--max-body-bytes', '0'], /invalid max body bytes 0/],
    [['--max-request-values', '-3'], /max-request-values|invalid max request values/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--datastorage-url', 'datastorage:8080'], /invalid DataStorage URL datastorage:8080/],
  ])(
    'bad flags %j: exit 2, one JSON error line and the usage, no stack trace',
    async (args, message) => {
      const cmd = run([...base(), '--port', '0', '--management-port', '0', ...args]);
      expect(await cmd.exit).toBe(2);
      const first = JSON.parse(cmd.stderr[0]!) as { level: string; msg: string };
      expect(first.level).toBe('error');
      expect(first.msg).toMatch(message);
      expect(cmd.stderr.join('\n')).toMatch(/^usage: kubernaut-audit-otlp-bridge/m);
      expect(cmd.stderr.join('\n')).not.toMatch(/^\s+at /m);
    },
    20_000,
  );

  it('a port in use: exit 1 with one JSON line naming it, no stack trace', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      for (const flag of ['--port', '--management-port']) {
        const other = flag === '--port' ? ['--management-port', '0'] : ['--port', '0'];
        const cmd = run([...base(), ...other, flag, String(port)]);
        expect(await cmd.exit).toBe(1);
        expect(cmd.stderr).toHaveLength(1);
        const line = JSON.parse(cmd.stderr[0]!) as { msg: string; error: string };
        expect(line.msg).toBe('the audit OTLP bridge failed to start');
        expect(line.error).toMatch(new RegExp(`EADDRINUSE.*${port}`));
      }
    } finally {
      busy.close();
    }
  }, 20_000);

  it('SIGINT drains and exits 0; a second SIGTERM while DataStorage is away exits at once (143), the records kept in the spool', async () => {
    const calm = run([...base(), '--port', '0', '--management-port', '0']);
    await calm.line('audit OTLP bridge listening');
    calm.child.kill('SIGINT');
    expect(await calm.exit).toBe(0);

    // DataStorage away: shutdown would keep retrying for 30 s.
    await ds.stop();
    const spool = join(tempDir('otlp-bridge-bin-'), 'spool');
    const args = [
      '--datastorage-url',
      ds.url,
      '--spool-dir',
      spool,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--management-port',
      '0',
    ];
    const cmd = run(args);
    const url = String((await cmd.line('audit OTLP bridge listening')).url);
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'kept' })]);
    expect((await post(url, body, { 'Content-Type': PB })).status).toBe(200);
    cmd.child.kill('SIGTERM');
    await cmd.line('shutting down');
    const started = Date.now();
    cmd.child.kill('SIGTERM');
    expect(await cmd.exit).toBe(143);
    // Before, the second signal was ignored and the process waited out its 30 s shutdown.
    expect(Date.now() - started).toBeLessThan(5_000);

    // The next bridge on the spool delivers the record once DataStorage is back.
    await ds.listen();
    const next = run(args);
    await next.line('audit OTLP bridge listening');
    await waitFor(() => ds.received().length > 0 || undefined, { timeoutMs: 20_000 });
    expect(ds.received().map((s) => s.event.correlation_id)).toEqual(['kept']);
    next.child.kill('SIGTERM');
    expect(await next.exit).toBe(0);
  }, 45_000);
});

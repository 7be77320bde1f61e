// SPDX-License-Identifier: Apache-2.0
/*
 * The bridge acknowledges only what is durable (issue 11, item 13): admission reserves spool
 * room before a request's body is decoded, and a 200 covers exactly the records on the spool;
 * what does not fit is refused with 503 + Retry-After, records DataStorage can never store come
 * back in partial_success, and an attribute key `__proto__` is data. Request bodies are what the
 * real OTLP exporters of the OTel SDK send (captured from them), posted in parallel.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { spoolUsageOf } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  type AppEncoding,
  auditLogRecord,
  FaultServer,
  realisticPayload,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import type { LogRecord } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
// The processor's test hooks (its spool's filesystem seam), from the exporter package's sources.
import { createProcessor } from '../../exporter-kubernaut-audit/src/processor/create.ts';
import { faultyFs } from '../../exporter-kubernaut-audit/test/spool/faulty-fs.ts';
import {
  decodeExportLogsResponse,
  type OtlpBridge,
  type OtlpBridgeOptions,
  startOtlpBridge,
} from '../src/index.ts';
import { testBridgeOptions } from './support/bridge-options.ts';
import { startOtlpCapture } from './support/otlp-capture.ts';

const resource = resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES });
const CONTENT_TYPE: Record<AppEncoding, string> = {
  json: 'application/json',
  protobuf: 'application/x-protobuf',
};

let dirs: string[] = [];
let ds: FaultServer;
let bridge: OtlpBridge | undefined;

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'otlp-bridge-admission-'));
  dirs.push(d);
  return d;
}

async function startBridge(extra: Partial<OtlpBridgeOptions> = {}): Promise<OtlpBridge> {
  bridge = await startOtlpBridge(testBridgeOptions(ds.url, tempDir(), extra));
  return bridge;
}

beforeEach(async () => {
  ds = await FaultServer.start();
});

afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
  await ds.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** The bodies the real SDK exporter sends for each batch of `batches`, one request each. */
async function sdkBodies(
  encoding: AppEncoding,
  batches: LogRecord[][],
  logRecordLimits?: { attributeCountLimit?: number },
): Promise<Buffer[]> {
  const capture = await startOtlpCapture();
  try {
    for (const records of batches) {
      const app = startSdkApp({
        url: capture.url,
        encoding,
        resource,
        ...(logRecordLimits && { logRecordLimits }),
      });
      for (const r of records) app.emit(r);
      await app.flush();
      await app.shutdown();
    }
    expect(capture.requests).toHaveLength(batches.length);
    return capture.requests.map((r) => r.body);
  } finally {
    await capture.close();
  }
}

async function post(
  url: string,
  body: Uint8Array,
  encoding: AppEncoding,
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${url}/v1/logs`, {
    method: 'POST',
    headers: { 'Content-Type': CONTENT_TYPE[encoding] },
    body: Buffer.from(body),
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('admission: 25 parallel requests against a small spool', () => {
  it.each([
    'protobuf',
    'json',
  ] as AppEncoding[])('every record answered 200 is on the spool and delivered; the rest got 503 + Retry-After (%s)', async (encoding) => {
    const REQUESTS = 25;
    const PER_REQUEST = 144;
    // Small events: their frames on the spool (stamped, with defaults) are several times the
    // size of the protobuf request that carried them.
    const batches = Array.from({ length: REQUESTS }, (_, r) =>
      Array.from({ length: PER_REQUEST }, (_, i) =>
        auditLogRecord({
          correlationId: `req-${String(r).padStart(2, '0')}-rec-${String(i).padStart(3, '0')}`,
          eventType: 'datastorage.ratelimit.denied',
        }),
      ),
    );
    const bodies = await sdkBodies(encoding, batches);
    // What one request takes on a spool: measured on a bridge of its own.
    const probe = await startBridge({
      exporter: new KubernautAuditExporter({ url: 'http://127.0.0.1:9' }),
      shutdownTimeoutMillis: 1,
    });
    expect((await post(probe.url, bodies[0]!, encoding)).status).toBe(200);
    const perRequest = spoolUsageOf(probe.processor)?.bytes as number;
    await probe.close();
    expect(perRequest).toBeGreaterThan(bodies[0]!.length);

    // DataStorage down: nothing leaves the spool while the requests arrive. Room for four
    // requests and most of a fifth.
    await ds.stop();
    const maxBytes = Math.round(perRequest * 4.86);
    const b = await startBridge({ spool: { directory: tempDir(), maxBytes } });
    const answers = await Promise.all(bodies.map((body) => post(b.url, body, encoding)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    const acknowledged = new Set<string>();
    const refused: number[] = [];
    const tally = (a: { status: number; headers: Headers; body: Buffer }, r: number) => {
      if (a.status === 200) {
        expect(decodeExportLogsResponse(a.body, encoding).partialSuccess).toBeUndefined();
        for (const record of batches[r] as LogRecord[]) {
          acknowledged.add(String(record.attributes?.['audit.correlation.id']));
        }
      } else {
        expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        refused.push(r);
      }
    };
    answers.forEach(tally);
    // Both answers occurred: the spool's bound was reached.
    expect(statuses).toContain(200);
    expect(statuses).toContain(503);
    // The refused requests again, one at a time (as a client retries), until one is refused:
    // admission then has used the room, short of one request's estimate.
    for (const r of refused.splice(0)) {
      const again = await post(b.url, bodies[r] as Buffer, encoding);
      tally(again, r);
      if (again.status === 503) break;
    }
    const usage = spoolUsageOf(b.processor)?.bytes as number;
    expect(usage).toBeLessThanOrEqual(maxBytes);
    expect(usage).toBeGreaterThanOrEqual(0.9 * maxBytes - 2 * perRequest);

    await ds.listen();
    await b.processor.forceFlush({ timeoutMillis: 30_000 });
    expect(ds.specViolations).toEqual([]);
    // Exactly the acknowledged records: none lost, and none of a refused request kept (a
    // client's retry would duplicate it).
    const delivered = ds.received().map((s) => s.event.correlation_id);
    expect(delivered.sort()).toEqual([...acknowledged].sort());
  });

  it('refuses a request larger than the whole spool before reading it (Content-Length)', async () => {
    const b = await startBridge({ spool: { directory: tempDir(), maxBytes: 4096 } });
    const [body] = await sdkBodies('protobuf', [
      Array.from({ length: 50 }, (_, i) => auditLogRecord({ correlationId: `big-${i}` })),
    ]);
    expect(body!.length).toBeGreaterThan(4096);
    const answer = await post(b.url, body!, 'protobuf');
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    // Nothing reserved stays behind.
    expect(spoolUsageOf(b.processor)?.bytes).toBe(0);
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.received()).toHaveLength(0);
  });
});

describe('a spool that cannot write to disk', () => {
  it('refuses with 503 + Retry-After what would only be held in memory; acknowledges again once the disk takes writes', async () => {
    const fs = faultyFs();
    const processor = createProcessor(
      {
        exporter: new KubernautAuditExporter({
          url: ds.url,
          retry: { initialDelayMillis: 10, maxDelayMillis: 50 },
        }),
        spool: { directory: tempDir(), durability: 'sync' },
      },
      { fs },
    );
    const b = await startBridge({ processor });
    const [first, second, third] = await sdkBodies('protobuf', [
      [auditLogRecord({ correlationId: 'disk-ok-1' })],
      [auditLogRecord({ correlationId: 'disk-full' })],
      [auditLogRecord({ correlationId: 'disk-ok-2' })],
    ]);
    expect((await post(b.url, first!, 'protobuf')).status).toBe(200);

    fs.fail({ ops: ['writeSync'], code: 'ENOSPC', path: /\.kaf$/ });
    const refused = await post(b.url, second!, 'protobuf');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    // While frames wait in memory, nothing more is admitted.
    expect((await post(b.url, third!, 'protobuf')).status).toBe(503);

    fs.heal();
    // The spool's background retry writes what it held (its first retry comes after a second).
    await vi.waitFor(() => expect(spoolUsageOf(processor)?.durable).toBe(true), {
      timeout: 20_000,
      interval: 100,
    });
    expect((await post(b.url, third!, 'protobuf')).status).toBe(200);
    await processor.forceFlush({ timeoutMillis: 10_000 });
    const delivered = ds.received().map((s) => s.event.correlation_id);
    expect(delivered).toContain('disk-ok-1');
    expect(delivered).toContain('disk-ok-2');
    await b.close();
    await processor.shutdown();
  });
});

describe('partial_success from what the drain decided', () => {
  it.each([
    'json',
    'protobuf',
  ] as AppEncoding[])('a record its sender dropped attributes of (droppedAttributesCount) is rejected, not stored with defaults (%s)', async (encoding) => {
    const spool = tempDir();
    const b = await startBridge({ spool: { directory: spool } });
    const whole = auditLogRecord({
      correlationId: 'whole-1',
      eventType: 'datastorage.ratelimit.denied',
    });
    const count = Object.keys(whole.attributes ?? {}).length;
    // The sending app's SDK keeps `count` attributes: the record with two more loses two (its
    // actor), and its OTLP exporter says so in droppedAttributesCount.
    const [body] = await sdkBodies(
      encoding,
      [
        [
          whole,
          auditLogRecord({
            correlationId: 'lost-actor',
            eventType: 'datastorage.ratelimit.denied',
            attributes: { 'audit.actor.type': 'user', 'audit.actor.id': 'alice@example.com' },
          }),
        ],
      ],
      { attributeCountLimit: count },
    );
    const answer = await post(b.url, body!, encoding);
    expect(answer.status).toBe(200);
    const response = decodeExportLogsResponse(answer.body, encoding);
    expect(Number(response.partialSuccess?.rejectedLogRecords)).toBe(1);
    expect(response.partialSuccess?.errorMessage).toMatch(/log record 1: .*dropped 2 attribute/);
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.received().map((s) => s.event.correlation_id)).toEqual(['whole-1']);
    const dead = readFileSync(join(spool, 'dead-letter.jsonl'), 'utf8').trim().split('\n');
    expect(dead.map((l) => (JSON.parse(l) as { reason: string }).reason)).toEqual([
      'attributes_dropped',
    ]);
    await b.close();
  });

  it.each([
    'json',
    'protobuf',
  ] as AppEncoding[])('records DataStorage can never store are rejected in partial_success, the rest acknowledged (%s)', async (encoding) => {
    const spool = tempDir();
    const b = await startBridge({ spool: { directory: spool } });
    // event_data just under 256 KiB: valid as sent, over the limit once the provenance stamp is in.
    const base = { event_type: 'datastorage.ratelimit.denied', pad: '' };
    const pad = 256 * 1024 - 40 - JSON.stringify(base).length;
    const [body] = await sdkBodies(encoding, [
      [
        auditLogRecord({ correlationId: 'fine-1', eventType: 'datastorage.ratelimit.denied' }),
        auditLogRecord({ correlationId: 'nul-1', data: { note: 'a\u0000b' } }),
        auditLogRecord({
          correlationId: 'stamped-too-large',
          eventType: 'datastorage.ratelimit.denied',
          data: { ...base, pad: 'p'.repeat(pad) },
        }),
        { body: 'ordinary, ignored' },
        auditLogRecord({ correlationId: 'fine-2', eventType: 'datastorage.ratelimit.denied' }),
      ],
    ]);
    const answer = await post(b.url, body!, encoding);
    expect(answer.status).toBe(200);
    const response = decodeExportLogsResponse(answer.body, encoding);
    expect(Number(response.partialSuccess?.rejectedLogRecords)).toBe(2);
    expect(response.partialSuccess?.errorMessage).toMatch(/log record 1: .*event_data/);
    expect(response.partialSuccess?.errorMessage).toMatch(
      /log record 2: .*event_data_too_large.*provenance/,
    );
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.specViolations).toEqual([]);
    expect(
      ds
        .received()
        .map((s) => s.event.correlation_id)
        .sort(),
    ).toEqual(['fine-1', 'fine-2']);
    // Both rejected records are in the dead-letter file, with their reasons.
    const deadLetters = readFileSync(join(spool, 'dead-letter.jsonl'), 'utf8').trim().split('\n');
    expect(deadLetters).toHaveLength(2);
  });
});

describe('__proto__ is data', () => {
  it.each([
    'json',
    'protobuf',
  ] as AppEncoding[])('a body key __proto__ from the SDK exporter arrives as an event_data key, never a prototype (%s)', async (encoding) => {
    const b = await startBridge();
    // An own key `__proto__`, as JSON.parse makes it (an object literal would set the prototype).
    const data = Object.assign(
      JSON.parse('{"__proto__":{"polluted":"yes"}}'),
      realisticPayload('gateway.signal.received'),
    );
    const [body] = await sdkBodies(encoding, [
      [auditLogRecord({ correlationId: 'proto-body', data })],
    ]);
    const answer = await post(b.url, body!, encoding);
    expect(answer.status).toBe(200);
    expect(decodeExportLogsResponse(answer.body, encoding).partialSuccess).toBeUndefined();
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    const events = ds.received().map((s) => s.event);
    expect(events.map((e) => e.correlation_id)).toEqual(['proto-body']);
    const delivered = events[0]!.event_data as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(delivered, '__proto__')?.value).toEqual({
      polluted: 'yes',
    });
    expect(delivered.signal_type).toBe(data.signal_type);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('attribute keys __proto__ in OTLP JSON are data: in audit.event.data they arrive as keys, at the top they select nothing', async () => {
    const b = await startBridge();
    const kv = (key: string, value: unknown) => ({ key, value });
    const str = (s: string) => ({ stringValue: s });
    const kvlist = (...values: unknown[]) => ({ kvlistValue: { values } });
    const now = `${BigInt(Date.now()) * 1_000_000n}`;
    const auditAttrs = (cid: string) => [
      kv('audit.event.category', str('gateway')),
      kv('audit.event.action', str('received')),
      kv('audit.event.outcome', str('success')),
      kv('audit.correlation.id', str(cid)),
    ];
    // The SDK's own attribute setter cannot carry such a key, so the OTLP JSON is written here.
    const request = {
      resourceLogs: [
        {
          resource: { attributes: [kv('service.name', str('proto-test'))] },
          scopeLogs: [
            {
              scope: { name: 'proto-test' },
              logRecords: [
                {
                  timeUnixNano: now,
                  eventName: 'datastorage.ratelimit.denied',
                  body: str('audit event with __proto__ keys'),
                  attributes: [
                    ...auditAttrs('proto-attr'),
                    kv('__proto__', str('a top-level attribute named __proto__')),
                    kv(
                      'audit.event.data',
                      kvlist(
                        kv('__proto__', kvlist(kv('polluted', str('yes')))),
                        kv('event_type', str('datastorage.ratelimit.denied')),
                        kv('event_id', str('proto-1')),
                      ),
                    ),
                  ],
                },
                {
                  // Its only audit attributes sit under `__proto__`: not an audit record.
                  timeUnixNano: now,
                  body: str('ordinary'),
                  attributes: [kv('__proto__', kvlist(...auditAttrs('inherited')))],
                },
              ],
            },
          ],
        },
      ],
    };
    const answer = await post(b.url, Buffer.from(JSON.stringify(request)), 'json');
    expect(answer.status).toBe(200);
    expect(decodeExportLogsResponse(answer.body, 'json').partialSuccess).toBeUndefined();
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    const events = ds.received().map((s) => s.event);
    expect(events.map((e) => e.correlation_id)).toEqual(['proto-attr']);
    const delivered = events[0]!.event_data as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(delivered, '__proto__')?.value).toEqual({
      polluted: 'yes',
    });
    expect(delivered.event_id).toBe('proto-1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('slow and stalled clients', () => {
  /** A raw connection that sends `head` and `body`, then nothing more. */
  async function stalled(port: number, head: string, body: string): Promise<Socket> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => undefined);
    socket.write(head + body);
    return socket;
  }
  const head = (length: string) =>
    `POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n${length}\r\n\r\n`;

  it('a client silent mid-body is disconnected after a third of requestTimeoutMillis, and frees what it held', async () => {
    const b = await startBridge({ requestTimeoutMillis: 600 });
    const socket = await stalled(b.port, head('Content-Length: 100000'), 'x'.repeat(10));
    // Closed by the bridge (a stalled body held its spool room for 330 s before).
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(socket.destroyed).toBe(true);
  });

  it('a client that trickles its body past requestTimeoutMillis gets 408 and is disconnected', async () => {
    const b = await startBridge({ requestTimeoutMillis: 600 });
    const socket = await stalled(b.port, head('Content-Length: 100000'), 'x');
    // One byte every 100 ms: never silent for long, never done.
    const trickle = setInterval(() => socket.writable && socket.write('x'), 100);
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    clearInterval(trickle);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('bodies in memory are bounded across connections: past maxInflightBodyBytes a request gets 503 + Retry-After', async () => {
    const b = await startBridge({
      maxRequestBodyBytes: 1024 * 1024,
      maxInflightBodyBytes: 2 * 1024 * 1024,
    });
    // Two chunked bodies that never end: each counts for maxRequestBodyBytes while it is read.
    const held = [
      await stalled(b.port, head('Transfer-Encoding: chunked'), '5\r\nhello\r\n'),
      await stalled(b.port, head('Transfer-Encoding: chunked'), '5\r\nhello\r\n'),
    ];
    const res = await fetch(`${b.url}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"resourceLogs":[]}',
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    for (const s of held) s.destroy();
  });
});

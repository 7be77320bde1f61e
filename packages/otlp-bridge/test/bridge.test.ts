// SPDX-License-Identifier: Apache-2.0
/*
 * The audit OTLP bridge end to end: a real OTel SDK app (LoggerProvider + BatchLogRecordProcessor
 * + the real OTLP/HTTP JSON and protobuf exporters) → the bridge → AuditLogRecordProcessor with a
 * synchronous spool → KubernautAuditExporter → a loopback DataStorage that validates every event
 * against the upstream spec (the test kit's FaultServer).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import {
  type AppEncoding,
  auditLogRecord,
  FaultServer,
  SUCCESS,
  sampleEventTypes,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import { type Attributes, type LogRecord, SeverityNumber } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeExportLogsResponse,
  type OtlpBridge,
  type OtlpBridgeOptions,
  startOtlpBridge,
} from '../src/index.ts';
import { testBridgeOptions } from './support/bridge-options.ts';
import { startOtlpCapture } from './support/otlp-capture.ts';

const resource = resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES });

let dirs: string[] = [];
let ds: FaultServer;
let bridge: OtlpBridge | undefined;

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'otlp-bridge-test-'));
  dirs.push(d);
  return d;
}

function exporterFor(url: string): KubernautAuditExporter {
  return new KubernautAuditExporter({
    url,
    retry: { initialDelayMillis: 10, maxDelayMillis: 50 },
    timeoutMillis: 5_000,
  });
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

/** Audit records, one per category (realistic payloads), plus ordinary logs in between. */
function mixedRecords(): { audit: LogRecord[]; all: LogRecord[] } {
  const base = Date.now() - 60_000;
  const audit = sampleEventTypes().map((t, i) =>
    auditLogRecord({
      eventType: t.eventType,
      correlationId: `corr-${i}`,
      timestamp: [Math.floor(base / 1000) + i, 123_456_789],
      ...(i % 3 === 1 && { eventTypeAs: 'attribute' as const, dataAs: 'attribute-json' as const }),
      attributes: { 'audit.duration_ms': 10 + i, 'client.address': '10.0.0.7' },
    }),
  );
  const all: LogRecord[] = [];
  audit.forEach((r, i) => {
    all.push(r);
    all.push({ body: `ordinary line ${i}`, severityNumber: SeverityNumber.INFO });
  });
  all.push({ body: { not: 'audit' }, attributes: { 'audit.event.action': 'looks-like-audit' } });
  return { audit, all };
}

/** Events without what differs between two deliveries of the same record. */
function comparable(events: AuditEventRequest[]): unknown[] {
  return events
    .map((e) => {
      const { [AUDIT_EVENT_DATA_PROVENANCE_KEY]: _p, ...data } = e.event_data;
      return { ...e, event_data: data };
    })
    .sort((a, b) => a.correlation_id.localeCompare(b.correlation_id));
}

/** The same records through the direct path: AuditLogRecordProcessor in the app itself. */
async function deliverDirect(records: LogRecord[]): Promise<AuditEventRequest[]> {
  const direct = await FaultServer.start();
  try {
    const processor = new AuditLogRecordProcessor({
      exporter: exporterFor(direct.url),
      spool: { directory: tempDir(), durability: 'sync' },
    });
    const provider = new LoggerProvider({ resource, processors: [processor] });
    const logger = provider.getLogger('bridge-test-app', '0.1.0');
    for (const r of records) logger.emit(r);
    await provider.forceFlush();
    await provider.shutdown();
    expect(direct.specViolations).toEqual([]);
    return direct.received().map((s) => s.event);
  } finally {
    await direct.close();
  }
}

describe.each([
  ['json', false],
  ['protobuf', false],
  ['protobuf', true],
  ['json', true],
] as Array<[AppEncoding, boolean]>)('SDK OTLP/%s exporter (gzip %s) → bridge', (encoding, gzip) => {
  it('delivers exactly the audit records, with the same content as the direct path', async () => {
    const b = await startBridge();
    const { audit, all } = mixedRecords();
    const app = startSdkApp({ url: b.url, encoding, resource, gzip });
    for (const r of all) app.emit(r);
    await app.flush();
    expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);
    // Answered only once durable; delivery follows.
    await b.processor.forceFlush({ timeoutMillis: 20_000 });
    await app.shutdown();

    expect(ds.specViolations).toEqual([]);
    const viaBridge = ds.received().map((s) => s.event);
    expect(viaBridge).toHaveLength(audit.length);
    expect(new Set(viaBridge.map((e) => e.correlation_id)).size).toBe(audit.length);
    const direct = await deliverDirect(all);
    expect(comparable(viaBridge)).toEqual(comparable(direct));
    // Timestamps keep microseconds across OTLP.
    expect(viaBridge.find((e) => e.correlation_id === 'corr-0')?.event_timestamp).toMatch(
      /\.123456Z$/,
    );
  });
});

async function post(
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
  path = '/v1/logs',
  method = 'POST',
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers,
    ...(method === 'POST' && { body: Buffer.from(body) }),
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** Real SDK exporter bytes for `records`, captured (not sent to the bridge). */
async function sdkBody(encoding: AppEncoding, records: LogRecord[]): Promise<Buffer> {
  const capture = await startOtlpCapture();
  try {
    const app = startSdkApp({ url: capture.url, encoding, resource });
    for (const r of records) app.emit(r);
    await app.flush();
    await app.shutdown();
    expect(capture.requests).toHaveLength(1);
    return capture.requests[0]!.body;
  } finally {
    await capture.close();
  }
}

const PB = { 'Content-Type': 'application/x-protobuf' };
const JSON_CT = { 'Content-Type': 'application/json' };

describe('bad requests', () => {
  it('answers 400/400/400/413/401/415/404/405 and stores nothing', async () => {
    const b = await startBridge({ bearerToken: 's3cret', maxRequestBodyBytes: 64 * 1024 });
    const auth = { Authorization: 'Bearer s3cret' };
    const valid = await sdkBody('json', [auditLogRecord({ correlationId: 'never' })]);

    const malformedPb = await post(b.url, Buffer.from([0x0a, 0xff, 0x01, 0x02]), {
      ...PB,
      ...auth,
    });
    expect(malformedPb.status).toBe(400);
    expect(malformedPb.headers.get('content-type')).toBe('application/x-protobuf');

    const truncatedJson = await post(b.url, valid.subarray(0, valid.length - 7), {
      ...JSON_CT,
      ...auth,
    });
    expect(truncatedJson.status).toBe(400);
    expect(JSON.parse(truncatedJson.body.toString()).message).toMatch(/invalid JSON/);

    const gzipGarbage = await post(b.url, Buffer.from('definitely not gzip'), {
      ...JSON_CT,
      ...auth,
      'Content-Encoding': 'gzip',
    });
    expect(gzipGarbage.status).toBe(400);

    const oversized = await post(b.url, Buffer.alloc(65 * 1024, 0x20), { ...JSON_CT, ...auth });
    expect(oversized.status).toBe(413);
    // A small gzip body that expands beyond the limit is refused too.
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const bombAnswer = await post(b.url, bomb, { ...JSON_CT, ...auth, 'Content-Encoding': 'gzip' });
    expect(bombAnswer.status).toBe(413);

    const noToken = await post(b.url, valid, JSON_CT);
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toBe('Bearer');
    const wrongToken = await post(b.url, valid, { ...JSON_CT, Authorization: 'Bearer s3cre' });
    expect(wrongToken.status).toBe(401);

    expect((await post(b.url, valid, { 'Content-Type': 'text/plain', ...auth })).status).toBe(415);
    expect((await post(b.url, valid, { ...JSON_CT, ...auth }, '/v1/traces')).status).toBe(404);
    const get = await post(b.url, '', auth, '/v1/logs', 'GET');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');

    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.requests).toHaveLength(0);
    expect(ds.received()).toHaveLength(0);

    // The same body with the token is accepted and delivered: the rejections above were real.
    const ok = await post(b.url, valid, { ...JSON_CT, ...auth });
    expect(ok.status).toBe(200);
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.received().map((s) => s.event.correlation_id)).toEqual(['never']);
  });

  it('fails to start on a busy port and releases its spool for the next bridge', async () => {
    const spool = tempDir();
    await expect(startBridge({ port: ds.port, spool: { directory: spool } })).rejects.toThrow(
      /EADDRINUSE/,
    );
    bridge = undefined;
    const b = await startBridge({ spool: { directory: spool } });
    const body = await sdkBody('json', [auditLogRecord({ correlationId: 'after-busy-port' })]);
    expect((await post(b.url, body, JSON_CT)).status).toBe(200);
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.received().map((s) => s.event.correlation_id)).toEqual(['after-busy-port']);
  });

  it('refuses to start when its spool cannot be opened (a memory-only spool is not durable)', async () => {
    const parent = tempDir();
    const notADir = join(parent, 'file');
    writeFileSync(notADir, 'not a directory');
    await expect(startBridge({ spool: { directory: join(notADir, 'spool') } })).rejects.toThrow(
      /refuses to acknowledge records it cannot keep/,
    );
    bridge = undefined;
  });

  it('reads the token from a file', async () => {
    const dir = tempDir();
    const file = join(dir, 'token');
    (await import('node:fs')).writeFileSync(file, 'from-file\n');
    const b = await startBridge({ bearerTokenFile: file });
    const body = await sdkBody('protobuf', [{ body: 'ordinary' }]);
    expect((await post(b.url, body, { ...PB, Authorization: 'Bearer from-file' })).status).toBe(
      200,
    );
    expect((await post(b.url, body, { ...PB, Authorization: 'Bearer other' })).status).toBe(401);
  });

  it('answers 503 with Retry-After when the spool is full, and takes nothing', async () => {
    const b = await startBridge({ spool: { directory: tempDir(), maxBytes: 64 } });
    const body = await sdkBody('protobuf', [auditLogRecord({ correlationId: 'refused' })]);
    const answer = await post(b.url, body, PB);
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.received()).toHaveLength(0);
  });
});

describe('partial success', () => {
  it.each([
    'json',
    'protobuf',
  ] as AppEncoding[])('reports invalid audit records (%s), dead-letters them and delivers the valid ones', async (encoding) => {
    const spool = tempDir();
    const b = await startBridge({ spool: { directory: spool } });
    const body = await sdkBody(encoding, [
      auditLogRecord({ correlationId: 'good-1' }),
      auditLogRecord({ correlationId: 'bad-1', attributes: { 'audit.event.outcome': undefined } }),
      { body: 'ordinary, ignored' },
      auditLogRecord({ correlationId: 'good-2' }),
    ]);
    const answer = await post(b.url, body, encoding === 'json' ? JSON_CT : PB);
    expect(answer.status).toBe(200);
    const response = decodeExportLogsResponse(answer.body, encoding);
    expect(Number(response.partialSuccess?.rejectedLogRecords)).toBe(1);
    expect(response.partialSuccess?.errorMessage).toMatch(/log record 1: .*event_outcome/);

    await b.processor.forceFlush({ timeoutMillis: 10_000 });
    expect(ds.specViolations).toEqual([]);
    expect(
      ds
        .received()
        .map((s) => s.event.correlation_id)
        .sort(),
    ).toEqual(['good-1', 'good-2']);
    const deadLetters = readFileSync(join(spool, 'dead-letter.jsonl'), 'utf8').trim().split('\n');
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatch(/event_outcome/);
  });

  it('counts records by outcome and requests by status in metrics, and logs once', async () => {
    class Reader extends MetricReader {
      protected override async onForceFlush(): Promise<void> {}
      protected override async onShutdown(): Promise<void> {}
    }
    const reader = new Reader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const b = await startBridge({
      meterProvider,
      logger: (level, message, fields) => lines.push([level, message, fields]),
    });
    const body = await sdkBody('protobuf', [
      auditLogRecord({ correlationId: 'm-1' }),
      auditLogRecord({ correlationId: 'm-2', attributes: { 'audit.correlation.id': undefined } }),
      { body: 'ordinary' },
      auditLogRecord({ correlationId: 'm-3' }),
    ]);
    expect((await post(b.url, body, PB)).status).toBe(200);
    expect((await post(b.url, body.subarray(0, 5), PB)).status).toBe(400);
    expect((await post(b.url, body.subarray(0, 5), PB)).status).toBe(400);

    const { resourceMetrics } = await reader.collect();
    const points = (name: string, attr: string) =>
      Object.fromEntries(
        resourceMetrics.scopeMetrics
          .flatMap((s) => s.metrics)
          .filter((m) => m.descriptor.name === name)
          .flatMap((m) => m.dataPoints as Array<{ attributes: Attributes; value: unknown }>)
          .map((p) => [String(p.attributes[attr]), p.value]),
      );
    expect(points('kubernaut.audit.bridge.log_records', 'kubernaut.audit.bridge.outcome')).toEqual({
      accepted: 2,
      rejected: 1,
      ignored: 1,
    });
    expect(points('kubernaut.audit.bridge.requests', 'http.response.status_code')).toEqual({
      '200': 1,
      '400': 2,
    });
    // Two undecodable requests in a row: one warning line, the second suppressed.
    const undecodable = lines.filter(([, m]) => m === 'rejected an undecodable OTLP request');
    expect(undecodable).toHaveLength(1);
    expect(lines.filter(([l, m]) => l === 'warn' && m.startsWith('rejected invalid'))).toHaveLength(
      1,
    );
    await meterProvider.shutdown();
  });

  it('answers an all-valid request without partial_success', async () => {
    const b = await startBridge();
    const body = await sdkBody('json', [auditLogRecord({ correlationId: 'fine' })]);
    const answer = await post(b.url, body, JSON_CT);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.toString())).toEqual({});
  });
});

describe('DataStorage outage', () => {
  it('answers success once spooled while DataStorage refuses connections, delivers after', async () => {
    await ds.stop();
    const b = await startBridge();
    const app = startSdkApp({ url: b.url, encoding: 'protobuf', resource });
    const records = [0, 1, 2, 3, 4].map((i) => auditLogRecord({ correlationId: `outage-${i}` }));
    for (const r of records) app.emit(r);
    await app.flush();
    expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);
    expect(ds.received()).toHaveLength(0);

    await ds.listen();
    await b.processor.forceFlush({ timeoutMillis: 20_000 });
    await app.shutdown();
    expect(ds.specViolations).toEqual([]);
    expect(
      ds
        .received()
        .map((s) => s.event.correlation_id)
        .sort(),
    ).toEqual(records.map((_, i) => `outage-${i}`));
  });

  it('leaves undelivered records in the spool for the next bridge on it', async () => {
    await ds.stop();
    const spool = tempDir();
    const first = await startBridge({ spool: { directory: spool } });
    const body = await sdkBody('json', [
      auditLogRecord({ correlationId: 'kept-1' }),
      auditLogRecord({ correlationId: 'kept-2' }),
    ]);
    expect((await post(first.url, body, JSON_CT)).status).toBe(200);
    await first.close();
    bridge = undefined;

    await ds.listen();
    const second = await startBridge({ spool: { directory: spool } });
    await second.processor.forceFlush({ timeoutMillis: 20_000 });
    expect(
      ds
        .received()
        .map((s) => s.event.correlation_id)
        .sort(),
    ).toEqual(['kept-1', 'kept-2']);
  });
});

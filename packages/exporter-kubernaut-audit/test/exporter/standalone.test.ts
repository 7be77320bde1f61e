// SPDX-License-Identifier: Apache-2.0
/*
 * KubernautAuditExporter used standalone under the SDK's own processors (a real
 * LoggerProvider with BatchLogRecordProcessor / SimpleLogRecordProcessor), like an OTLP
 * exporter: mapping, ignoring non-audit records, dead-lettering invalid ones, giving up
 * after timeoutMillis, concurrency, forceFlush and shutdown.
 */
import { join } from 'node:path';
import { ATTR_AUDIT_EVENT_OUTCOME } from '@kubernaut/audit-semantic-conventions';
import type {
  KubernautAuditExporter,
  KubernautAuditExporterOptions,
} from '@kubernaut/exporter-kubernaut-audit';
import {
  auditLogRecord,
  cleanupTempDirs,
  FaultServer,
  makeAuditLogRecord,
  readJsonLines,
  realisticPayload,
  sampleEventTypes,
  specPath,
  TEST_RESOURCE_ATTRIBUTES,
  type TestMetrics,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type ReadableLogRecord,
} from '@opentelemetry/sdk-logs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExporter, type KubernautAuditExporterInternals } from '../../src/exporter/create.ts';

let ds: FaultServer;
let tmpDir: string;
let metrics: TestMetrics;
let exporters: KubernautAuditExporter[];

beforeEach(async () => {
  ds = await FaultServer.start();
  tmpDir = tempDir();
  metrics = testMetrics();
  exporters = [];
});

afterEach(async () => {
  for (const e of exporters) await e.shutdown();
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

const deadLetterPath = () => join(tmpDir, 'dead-letter.jsonl');

function exporter(
  options: KubernautAuditExporterOptions = {},
  internals: KubernautAuditExporterInternals = {},
): KubernautAuditExporter {
  const e = createExporter(
    {
      url: ds.url,
      meterProvider: metrics.meterProvider,
      retry: { initialDelayMillis: 5, maxDelayMillis: 20 },
      openapiSpec: specPath(),
      ...options,
    },
    { deadLetterPath: deadLetterPath(), env: {}, ...internals },
  );
  exporters.push(e);
  return e;
}

function exportAsync(
  e: KubernautAuditExporter,
  records: ReadableLogRecord[],
): Promise<ExportResult> {
  return new Promise((resolve) => e.export(records, resolve));
}

describe('KubernautAuditExporter under the SDK BatchLogRecordProcessor', () => {
  it('delivers a mixed stream of every category, ignoring non-audit records', async () => {
    const e = exporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(TEST_RESOURCE_ATTRIBUTES),
      processors: [
        new BatchLogRecordProcessor({
          exporter: e,
          maxExportBatchSize: 64,
          scheduledDelayMillis: 50,
        }),
      ],
    });
    const logger = provider.getLogger('standalone-test');
    const types = sampleEventTypes();
    expect(types.length).toBe(14);
    const perType = 10;
    let plain = 0;
    for (let round = 0; round < perType; round++) {
      for (const t of types) {
        logger.emit(
          auditLogRecord({ eventType: t.eventType, dataAs: round % 2 ? 'attribute-json' : 'body' }),
        );
        if (round % 3 === 0) {
          logger.emit({ body: 'an ordinary log line', attributes: { 'http.route': '/x' } });
          plain++;
        }
      }
    }
    await provider.forceFlush();
    expect(ds.received()).toHaveLength(types.length * perType);
    const counts = new Map<string, number>();
    for (const s of ds.received()) {
      counts.set(s.event.event_category, (counts.get(s.event.event_category) ?? 0) + 1);
    }
    expect([...counts.values()]).toEqual(Array(types.length).fill(perType));
    expect(ds.received().every((s) => s.event.namespace === 'payments')).toBe(true);
    expect(await metrics.sum('kubernaut.audit.exporter.ignored')).toBe(plain);
    expect(
      await metrics.sum('otel.sdk.exporter.log.exported', {
        'otel.component.type': 'kubernaut_audit_exporter',
      }),
    ).toBe(types.length * perType);
    expect(readJsonLines(deadLetterPath())).toEqual([]);
    await provider.shutdown();
  });

  it('dead-letters an invalid audit record with its reasons and delivers the rest', async () => {
    const e = exporter();
    const good = makeAuditLogRecord({});
    const bad = makeAuditLogRecord({ attributes: { [ATTR_AUDIT_EVENT_OUTCOME]: 'maybe' } });
    const r = await exportAsync(e, [good, bad]);
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    expect(ds.received()).toHaveLength(1);
    const dl = readJsonLines(deadLetterPath());
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ reason: 'invalid' });
    expect(dl[0]!.detail).toMatch(/event_outcome/);
    expect((dl[0]!.event as { attributes: Record<string, unknown> }).attributes).toMatchObject({
      [ATTR_AUDIT_EVENT_OUTCOME]: 'maybe',
    });
    expect(await metrics.sum('kubernaut.audit.dead_lettered')).toBe(1);
  });

  it('dead-letters a record DataStorage could not store (NUL in event_data) instead of sending it', async () => {
    const e = exporter();
    const nul = makeAuditLogRecord({
      data: { ...realisticPayload('gateway.signal.received'), note: 'before\u0000after' },
    });
    const r = await exportAsync(e, [nul]);
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    expect(ds.requests).toHaveLength(0);
    const dl = readJsonLines(deadLetterPath());
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ reason: 'invalid' });
    expect(dl[0]!.detail).toMatch(/event_data: event_data contains a NUL character/);
    expect(
      await metrics.sum('kubernaut.audit.dead_lettered', {
        'kubernaut.audit.reason': 'unstorable_string',
      }),
    ).toBe(1);
  });

  it('gives up after timeoutMillis with FAILED and a clear error', async () => {
    ds.inject({ type: 'unavailable' }, 10_000);
    const e = exporter({
      timeoutMillis: 300,
      retry: { initialDelayMillis: 20, maxDelayMillis: 40 },
    });
    const r = await exportAsync(e, [makeAuditLogRecord({}), makeAuditLogRecord({})]);
    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(r.error?.name).toBe('KubernautAuditExportError');
    expect(r.error?.message).toMatch(
      /2 audit event\(s\) not delivered within 300 ms: DataStorage answered 503/,
    );
    expect(ds.received()).toHaveLength(0);
    expect(ds.requests.length).toBeGreaterThan(1);
    expect(await metrics.sum('otel.sdk.exporter.log.exported', { 'error.type': 'timeout' })).toBe(
      2,
    );
    expect(await metrics.sum('otel.sdk.exporter.log.inflight')).toBe(0);
  });

  it('reports the last answer of DataStorage when the export deadline cuts the last request short', async () => {
    // 503, then a request still unanswered when the 300 ms export deadline passes.
    ds.inject({ type: 'unavailable' }).inject({ type: 'slow', delayMillis: 5_000, commit: false });
    const e = exporter({
      timeoutMillis: 300,
      retry: { initialDelayMillis: 10, maxDelayMillis: 10 },
    });
    const r = await exportAsync(e, [makeAuditLogRecord({})]);
    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(r.error?.message).toMatch(/not delivered within 300 ms: DataStorage answered 503/);
    expect(ds.received()).toHaveLength(0);
  });

  it('fails with a clear error when DataStorage cannot be reached at all', async () => {
    await ds.stop();
    const e = exporter({
      timeoutMillis: 200,
      retry: { initialDelayMillis: 10, maxDelayMillis: 20 },
    });
    const r = await exportAsync(e, [makeAuditLogRecord({})]);
    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(r.error?.message).toMatch(/network error ECONNREFUSED/);
  });

  it('tolerates concurrent export() calls', async () => {
    ds.inject({ type: 'slow', delayMillis: 100 }).inject({ type: 'unavailable' });
    const e = exporter();
    const batches = [0, 1, 2, 3].map(() => [0, 1, 2, 3, 4].map(() => makeAuditLogRecord({})));
    const results = await Promise.all(batches.map((b) => exportAsync(e, b)));
    expect(results.map((r) => r.code)).toEqual(Array(4).fill(ExportResultCode.SUCCESS));
    expect(ds.received()).toHaveLength(20);
    expect(ds.duplicates()).toBe(0);
    expect(new Set(ds.received().map((s) => s.event.correlation_id)).size).toBe(20);
  });

  it('forceFlush() waits for exports in flight', async () => {
    ds.inject({ type: 'slow', delayMillis: 150 });
    const e = exporter();
    let result: ExportResult | undefined;
    e.export([makeAuditLogRecord({}), makeAuditLogRecord({})], (r) => {
      result = r;
    });
    expect(result).toBeUndefined();
    await e.forceFlush();
    expect(result?.code).toBe(ExportResultCode.SUCCESS);
    expect(ds.received()).toHaveLength(2);
  });

  it('after shutdown(), export() fails at once', async () => {
    const e = exporter();
    await e.shutdown();
    let result: ExportResult | undefined;
    e.export([makeAuditLogRecord({})], (r) => {
      result = r;
    });
    // Synchronous: no network, no timer.
    expect(result?.code).toBe(ExportResultCode.FAILED);
    expect(result?.error?.message).toMatch(/shut down/);
    expect(ds.requests).toHaveLength(0);
  });

  it('without a URL, construction works and exports fail with a clear error', () => {
    const e = createExporter({}, { env: {} });
    exporters.push(e);
    let result: ExportResult | undefined;
    e.export([makeAuditLogRecord({})], (r) => {
      result = r;
    });
    expect(result?.code).toBe(ExportResultCode.FAILED);
    expect(result?.error?.message).toMatch(/KUBERNAUT_AUDIT_ENDPOINT/);
  });

  it('openapiSpec without its validation libraries: a clear error through diag and the export result, nothing sent', async () => {
    const logged: string[] = [];
    const push = (...a: unknown[]) => logged.push(a.map(String).join(' '));
    diag.setLogger(
      { error: push, warn: push, info: () => {}, debug: () => {}, verbose: () => {} },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    try {
      const missing = Object.assign(new Error("Cannot find package 'ajv'"), {
        code: 'ERR_MODULE_NOT_FOUND',
      });
      const e = exporter({}, { loadOpenApi: () => Promise.reject(missing) });
      const r = await exportAsync(e, [makeAuditLogRecord({})]);
      expect(r.code).toBe(ExportResultCode.FAILED);
      expect(r.error?.message).toMatch(/install ajv, ajv-formats, yaml/);
      expect(logged.some((l) => /npm install ajv ajv-formats yaml/.test(l))).toBe(true);
      expect(ds.requests).toHaveLength(0);
    } finally {
      diag.disable();
    }
  });

  it('takes the URL and token file from the environment; code options win', async () => {
    ds.setToken('env-token');
    const { writeFileSync } = await import('node:fs');
    const file = join(tmpDir, 'tok');
    writeFileSync(file, 'env-token');
    const fromEnv = exporter(
      { url: undefined },
      { env: { KUBERNAUT_AUDIT_ENDPOINT: ds.url, KUBERNAUT_AUDIT_BEARER_TOKEN_FILE: file } },
    );
    expect((await exportAsync(fromEnv, [makeAuditLogRecord({})])).code).toBe(
      ExportResultCode.SUCCESS,
    );
    const codeWins = exporter(
      { timeoutMillis: 200, bearerToken: 'code-token' },
      {
        env: {
          KUBERNAUT_AUDIT_ENDPOINT: 'http://127.0.0.1:1',
          KUBERNAUT_AUDIT_BEARER_TOKEN_FILE: file,
        },
      },
    );
    const r = await exportAsync(codeWins, [makeAuditLogRecord({})]);
    expect(r.code).toBe(ExportResultCode.FAILED); // the code URL was used (401 with code token)
    expect(ds.requests.at(-1)?.authorization).toBe('Bearer code-token');
    expect(ds.received()).toHaveLength(1);
  });
});

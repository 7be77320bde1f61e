// SPDX-License-Identifier: Apache-2.0
/*
 * The Collector route with a real OpenTelemetry Collector: the distribution built from Go
 * modules by scripts/peers.sh (collector/builder-config.yaml), running
 * examples/collector-routing/otel-collector.yaml exactly as shipped (only its environment
 * variables are set). Applications send all their logs to the Collector over OTLP; the routing
 * connector sends the audit records to the audit OTLP bridge, everything else to `debug`.
 *
 * The Collector delivers in its own time (its queue, its retries): the tests poll what it does
 * with a deadline, never sleep.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOtlpBridge } from '@kubernaut/audit-otlp-bridge';
import { startDataStorageServer } from '@kubernaut/datastorage-server';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import {
  auditLogRecord,
  FaultServer,
  freePort,
  REPO_ROOT,
  SUCCESS,
  specPath,
  startCollector,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
  testPgliteCacheDir,
  waitFor,
} from '@kubernaut/test-kit';
import { DiagLogLevel, diag, SeverityNumber } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, describe, expect, it } from 'vitest';

const HERE = join(REPO_ROOT, 'examples/collector-routing');
const CONFIG = join(HERE, 'otel-collector.yaml');
const AUDIT_EXPORTER = 'otlp_http/audit-bridge';
const TOKEN = 'collector-route-token';
const DEADLINE = 90_000;
/** A test waits for several deadlines at most. */
const TEST_TIMEOUT = 240_000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The bridge's warnings and errors, for assertions and failure messages. */
function bridgeLog(): {
  lines: string[];
  logger: (level: string, message: string, fields?: Record<string, unknown>) => void;
} {
  const lines: string[] = [];
  return {
    lines,
    logger: (level, message, fields) => {
      if (level === 'warn' || level === 'error') {
        lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
      }
    },
  };
}

function exporterFor(url: string): KubernautAuditExporter {
  return new KubernautAuditExporter({
    url,
    retry: { initialDelayMillis: 50, maxDelayMillis: 500 },
    timeoutMillis: 10_000,
  });
}

async function startCollectorFor(bridgeUrl: string, queueDir: string) {
  const collector = await startCollector({
    config: CONFIG,
    env: {
      AUDIT_BRIDGE_ENDPOINT: bridgeUrl,
      AUDIT_BRIDGE_TOKEN: TOKEN,
      OTELCOL_QUEUE_DIR: queueDir,
    },
  });
  cleanups.push(() => collector.kill('SIGKILL'));
  return collector;
}

/** Runs examples/collector-routing/app.ts (NodeSDK, env-only) against `otlpUrl`. */
async function runApp(otlpUrl: string, env: Record<string, string> = {}): Promise<string> {
  const child = spawn(
    join(REPO_ROOT, 'node_modules/.bin/node'),
    ['--conditions=@kubernaut/source', join(HERE, 'app.ts')],
    {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        OTEL_SERVICE_NAME: 'payments-gateway',
        OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRICS_EXPORTER: 'none',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, output).toBe(0);
  return output;
}

const tail = (lines: string[], n = 15) => lines.slice(-n).join('\n');

describe('app → real Collector (otel-collector.yaml as shipped) → audit bridge → DataStorage', {
  timeout: TEST_TIMEOUT,
}, () => {
  it('delivers every audit record exactly once, and nothing else', async () => {
    const ds = await startDataStorageServer({
      port: 0,
      storage: { kind: 'pglite', cacheDir: testPgliteCacheDir() },
      openapiSpec: specPath(),
      quiet: true,
    });
    cleanups.push(() => ds.close());
    const log = bridgeLog();
    const bridge = await startOtlpBridge({
      port: 0,
      exporter: exporterFor(ds.url),
      spool: { directory: tempDir('collector-route-spool-') },
      bearerToken: TOKEN,
      logger: log.logger,
    });
    cleanups.push(() => bridge.close());
    const collector = await startCollectorFor(bridge.url, tempDir('collector-route-queue-'));

    const alerts = 6;
    await runApp(collector.otlpHttpUrl, { APP_ALERTS: String(alerts) });

    type Page = { data: Array<Record<string, unknown>> };
    const query = async (): Promise<Page> =>
      (await (
        await fetch(`${ds.url}/api/v1/audit/events?event_type=gateway.signal.received&limit=100`)
      ).json()) as Page;
    // The ordinary lines reach the debug exporter, the audit records DataStorage.
    await waitFor(
      async () => collector.debugLogRecords() >= alerts && (await query()).data.length >= alerts,
      {
        timeoutMs: DEADLINE,
        describe: () => `Collector:\n${tail(collector.lines)}\nbridge:\n${tail(log.lines)}`,
      },
    );
    // Everything the Collector took is settled: its queue is empty, the bridge delivered.
    await waitFor(
      async () =>
        (await collector.metric('otelcol_exporter_queue_size', { exporter: AUDIT_EXPORTER })) === 0,
      { timeoutMs: DEADLINE },
    );
    await bridge.processor.forceFlush({ timeoutMillis: 30_000 });

    const events = (await query()).data;
    expect(events).toHaveLength(alerts);
    expect(new Set(events.map((e) => e.correlation_id)).size).toBe(alerts);
    for (const e of events) {
      expect(e).toMatchObject({
        event_category: 'gateway',
        event_action: 'received',
        event_outcome: 'success',
        actor_id: 'payments-gateway',
        resource_type: 'Pod',
        namespace: 'payments',
      });
      expect((e.event_data as Record<string, unknown>).signal_name).toBe('KubePodCrashLooping');
    }
    // Nothing else: DataStorage holds only these, the Collector sent the bridge exactly the
    // audit records (none of the ordinary lines) and the debug route exactly the ordinary lines.
    const all = (await (await fetch(`${ds.url}/api/v1/audit/events?limit=1000`)).json()) as Page;
    expect(all.data).toHaveLength(alerts);
    // The Collector counts a request as sent once it has read the bridge's answer.
    const sent = () =>
      collector.metric('otelcol_exporter_sent_log_records_total', { exporter: AUDIT_EXPORTER });
    await waitFor(async () => (await sent()) >= alerts, { timeoutMs: DEADLINE });
    expect(await sent()).toBe(alerts);
    expect(
      await collector.metric('otelcol_exporter_send_failed_log_records_total', {
        exporter: AUDIT_EXPORTER,
      }),
    ).toBe(0);
    expect(collector.debugLogRecords()).toBe(alerts);
    expect(log.lines).toEqual([]);
    // The shipped config runs without deprecation warnings on the tested Collector.
    expect(collector.lines.filter((l) => /\bwarn\b/.test(l))).toEqual([]);
  });

  it('retries while the bridge answers 503 (spool full, DataStorage down) and loses nothing', async () => {
    const ds = await FaultServer.start();
    cleanups.push(() => ds.close());
    await ds.stop(); // DataStorage is down: the bridge's spool fills up
    const log = bridgeLog();
    // The processor reports drops through OTel diag.
    diag.setLogger(
      {
        error: (m) => log.lines.push(`diag error ${m}`),
        warn: (m) => log.lines.push(`diag warn ${m}`),
        info: () => undefined,
        debug: () => undefined,
        verbose: () => undefined,
      },
      DiagLogLevel.WARN,
    );
    cleanups.push(() => diag.disable());
    const bridge = await startOtlpBridge({
      port: 0,
      exporter: exporterFor(ds.url),
      spool: { directory: tempDir('collector-503-spool-'), maxBytes: 24 * 1024 },
      retryAfterSeconds: 1,
      logger: log.logger,
      bearerToken: TOKEN,
    });
    cleanups.push(() => bridge.close());
    const collector = await startCollectorFor(bridge.url, tempDir('collector-503-queue-'));

    // Many small OTLP requests (two records each), as a busy app would send.
    const alerts = 40;
    await runApp(collector.otlpHttpUrl, {
      APP_ALERTS: String(alerts),
      OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '4',
    });
    // The bridge refuses with 503 + Retry-After; the Collector keeps the records and retries.
    await waitFor(
      () =>
        log.lines.some((l) => l.includes('refused an OTLP request')) &&
        collector.lines.some((l) => l.includes('503')),
      {
        timeoutMs: DEADLINE,
        describe: () => `Collector:\n${tail(collector.lines)}\nbridge:\n${tail(log.lines)}`,
      },
    );
    expect(ds.received()).toHaveLength(0);

    await ds.listen(); // DataStorage is back: the bridge drains, the Collector's retries succeed
    await waitFor(() => ds.received().length >= alerts, {
      timeoutMs: DEADLINE,
      describe: () =>
        `${ds.received().length}/${alerts} stored\nCollector:\n${tail(collector.lines)}\nbridge:\n${tail(log.lines)}`,
    });
    await waitFor(
      async () =>
        (await collector.metric('otelcol_exporter_queue_size', { exporter: AUDIT_EXPORTER })) === 0,
      { timeoutMs: DEADLINE },
    );
    await bridge.processor.forceFlush({ timeoutMillis: 30_000 });

    expect(ds.specViolations).toEqual([]);
    expect(ds.received()).toHaveLength(alerts);
    expect(ds.duplicates()).toBe(0);
    expect(new Set(ds.received().map((s) => s.event.correlation_id)).size).toBe(alerts);
    expect(
      await collector.metric('otelcol_exporter_send_failed_log_records_total', {
        exporter: AUDIT_EXPORTER,
      }),
    ).toBe(0);
    // Nothing the bridge accepted was dropped by its processor.
    expect(log.lines.filter((l) => /drop/i.test(l))).toEqual([]);
    expect(log.lines.some((l) => l.includes('refused an OTLP request'))).toBe(true);
  });

  it('logs partial_success for records DataStorage can never store; the bridge dead-letters them', async () => {
    const ds = await FaultServer.start();
    cleanups.push(() => ds.close());
    const spool = tempDir('collector-partial-spool-');
    const bridge = await startOtlpBridge({
      port: 0,
      exporter: exporterFor(ds.url),
      spool: { directory: spool },
      bearerToken: TOKEN,
      logger: () => undefined,
    });
    cleanups.push(() => bridge.close());
    const collector = await startCollectorFor(bridge.url, tempDir('collector-partial-queue-'));

    const app = startSdkApp({
      url: collector.otlpHttpUrl,
      encoding: 'protobuf',
      resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
    });
    app.emit(auditLogRecord({ correlationId: 'partial-valid-1' }));
    // No audit.event.outcome: a required DataStorage field is missing.
    app.emit(
      auditLogRecord({
        correlationId: 'partial-invalid-1',
        attributes: { 'audit.event.outcome': undefined },
      }),
    );
    app.emit(auditLogRecord({ correlationId: 'partial-valid-2' }));
    app.emit({ body: 'an ordinary line', severityNumber: SeverityNumber.INFO });
    await app.flush();
    await app.shutdown();
    expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);

    const partial = await waitFor(
      () => collector.lines.find((l) => l.includes('Partial success response')),
      { timeoutMs: DEADLINE, describe: () => tail(collector.lines) },
    );
    expect(partial).toContain(`"otelcol.component.id": "${AUDIT_EXPORTER}"`);
    expect(partial).toContain('"dropped_log_records": 1');
    expect(partial).toMatch(/event_outcome/);

    const deadLetterFile = join(spool, 'dead-letter.jsonl');
    const deadLetters = await waitFor(
      () => {
        if (!existsSync(deadLetterFile)) return undefined;
        const lines = readFileSync(deadLetterFile, 'utf8').split('\n').filter(Boolean);
        return lines.length > 0 && lines;
      },
      { timeoutMs: DEADLINE },
    );
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toContain('partial-invalid-1');
    expect(deadLetters[0]).toMatch(/event_outcome/);

    await waitFor(() => ds.received().length >= 2, { timeoutMs: DEADLINE });
    await bridge.processor.forceFlush({ timeoutMillis: 30_000 });
    expect(
      ds
        .received()
        .map((s) => s.event.correlation_id)
        .sort(),
    ).toEqual(['partial-valid-1', 'partial-valid-2']);
    expect(ds.specViolations).toEqual([]);
    await waitFor(() => collector.debugLogRecords() >= 1, { timeoutMs: DEADLINE });
    expect(collector.debugLogRecords()).toBe(1);
  });

  it('restarted after a kill, the Collector delivers from file_storage everything it acknowledged', async () => {
    const ds = await FaultServer.start();
    cleanups.push(() => ds.close());
    const queueDir = tempDir('collector-restart-queue-');
    // The bridge is not running yet: the Collector can only queue.
    const bridgePort = await freePort();
    const bridgeUrl = `http://127.0.0.1:${bridgePort}`;
    const first = await startCollectorFor(bridgeUrl, queueDir);

    const resource = resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES });
    const acknowledged: string[] = [];
    for (let round = 0; round < 3; round++) {
      const app = startSdkApp({ url: first.otlpHttpUrl, encoding: 'protobuf', resource });
      const ids = Array.from({ length: 5 }, (_, i) => `restart-${round}-${i}`);
      for (const id of ids) app.emit(auditLogRecord({ correlationId: id }));
      await app.flush();
      await app.shutdown();
      // SUCCESS from the Collector's receiver: the records are in its persistent queue.
      expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);
      acknowledged.push(...ids);
    }
    await waitFor(
      () => first.lines.some((l) => l.includes('Exporting failed') && l.includes(bridgeUrl)),
      { timeoutMs: DEADLINE, describe: () => tail(first.lines) },
    );
    await first.kill('SIGKILL');

    const second = await startCollectorFor(bridgeUrl, queueDir);
    const log = bridgeLog();
    const bridge = await startOtlpBridge({
      port: bridgePort,
      exporter: exporterFor(ds.url),
      spool: { directory: tempDir('collector-restart-spool-') },
      bearerToken: TOKEN,
      logger: log.logger,
    });
    cleanups.push(() => bridge.close());

    await waitFor(() => ds.received().length >= acknowledged.length, {
      timeoutMs: DEADLINE,
      describe: () =>
        `${ds.received().length}/${acknowledged.length} stored\nCollector:\n${tail(second.lines)}\nbridge:\n${tail(log.lines)}`,
    });
    await waitFor(
      async () =>
        (await second.metric('otelcol_exporter_queue_size', { exporter: AUDIT_EXPORTER })) === 0,
      { timeoutMs: DEADLINE },
    );
    await bridge.processor.forceFlush({ timeoutMillis: 30_000 });
    expect(ds.specViolations).toEqual([]);
    expect(
      ds
        .received()
        .map((s) => s.event.correlation_id)
        .sort(),
    ).toEqual([...acknowledged].sort());
    expect(ds.duplicates()).toBe(0);
  });
});

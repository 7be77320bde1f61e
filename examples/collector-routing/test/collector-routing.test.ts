// SPDX-License-Identifier: Apache-2.0
/*
 * The Collector routing example: the Collector config is wired as documented (checked
 * structurally here; collector.test.ts runs it on a real Collector), and the env-only app's
 * records sent over OTLP to the audit bridge — what the Collector's audit route forwards — land
 * in DataStorage: exactly the audit ones, spec-valid.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOtlpBridge } from '@kubernaut/audit-otlp-bridge';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { FaultServer, REPO_ROOT } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const HERE = join(REPO_ROOT, 'examples/collector-routing');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML of a known shape
type Yaml = Record<string, any>;

describe('otel-collector.yaml', () => {
  const config = parse(readFileSync(join(HERE, 'otel-collector.yaml'), 'utf8')) as Yaml;
  const pipelines = config.service.pipelines as Yaml;

  it('routes records carrying audit.event.category to the bridge pipeline, per log record', () => {
    const [connectorId, connector] = Object.entries(config.connectors as Yaml).find(([id]) =>
      id.startsWith('routing'),
    )!;
    expect(connector.table).toEqual([
      {
        context: 'log',
        condition: 'attributes["audit.event.category"] != nil',
        pipelines: ['logs/audit'],
      },
    ]);
    expect(connector.default_pipelines).toEqual(['logs/default']);
    expect(pipelines['logs/in'].receivers).toEqual(['otlp']);
    expect(pipelines['logs/in'].exporters).toEqual([connectorId]);
    expect(pipelines['logs/audit'].receivers).toEqual([connectorId]);
    expect(pipelines['logs/default'].receivers).toEqual([connectorId]);
    expect(pipelines['logs/default'].exporters).toEqual(['debug']);
  });

  it('sends audit records through a persistent, blocking, never-giving-up otlphttp queue', () => {
    const exporterId = pipelines['logs/audit'].exporters[0] as string;
    expect(exporterId).toMatch(/^otlp_?http(\/|$)/);
    const exporter = config.exporters[exporterId] as Yaml;
    expect(exporter.compression).toBe('gzip');
    expect(exporter.retry_on_failure).toMatchObject({ enabled: true, max_elapsed_time: 0 });
    expect(exporter.sending_queue).toMatchObject({ enabled: true, block_on_overflow: true });
    const storage = exporter.sending_queue.storage as string;
    expect(storage).toMatch(/^file_storage(\/|$)/);
    expect(Object.keys(config.extensions)).toContain(storage);
    expect(config.service.extensions).toContain(storage);
  });
});

describe('app.ts → OTLP → audit bridge → DataStorage', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it.each([
    'http/protobuf',
    'http/json',
  ])('delivers exactly the audit records (%s)', async (protocol) => {
    const ds = await FaultServer.start();
    cleanups.push(() => ds.close());
    const spool = mkdtempSync(join(tmpdir(), 'collector-routing-'));
    cleanups.push(() => rmSync(spool, { recursive: true, force: true }));
    const bridge = await startOtlpBridge({
      port: 0,
      exporter: new KubernautAuditExporter({ url: ds.url, retry: { initialDelayMillis: 10 } }),
      spool: { directory: spool },
      logger: () => undefined,
    });
    cleanups.push(() => bridge.close());

    const child = spawn(
      join(REPO_ROOT, 'node_modules/.bin/node'),
      ['--conditions=@kubernaut/source', join(HERE, 'app.ts')],
      {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          OTEL_SERVICE_NAME: 'payments-gateway',
          OTEL_EXPORTER_OTLP_ENDPOINT: bridge.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_TRACES_EXPORTER: 'none',
          OTEL_METRICS_EXPORTER: 'none',
          APP_ALERTS: '4',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, output).toBe(0);

    await bridge.processor.forceFlush({ timeoutMillis: 20_000 });
    expect(ds.specViolations).toEqual([]);
    const events = ds.received().map((s) => s.event);
    expect(events).toHaveLength(4);
    for (const e of events) {
      expect(e.event_type).toBe('gateway.signal.received');
      expect(e.actor_id).toBe('payments-gateway');
      expect(e.event_data.signal_name).toBe('KubePodCrashLooping');
    }
  });
});

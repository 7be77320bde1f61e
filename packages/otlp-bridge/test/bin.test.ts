// SPDX-License-Identifier: Apache-2.0
/*
 * The kubernaut-audit-otlp-bridge process: starts from flags, logs JSON lines, receives a real
 * SDK export, and on SIGTERM finishes, drains the spool into DataStorage and exits 0. Its
 * management port serves the library's metrics (processor and exporter), not only its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  auditLogRecord,
  FaultServer,
  freePort,
  REPO_ROOT,
  scrape,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
  waitFor,
} from '@kubernaut/test-kit';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, expect, it } from 'vitest';
import { startOtlpCapture } from './support/otlp-capture.ts';

const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
const BIN = join(REPO_ROOT, 'packages/otlp-bridge/src/bin.ts');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
  waitFor(msg: string): Promise<Record<string, unknown>>;
}

function run(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(NODE, ['--conditions=@kubernaut/source', BIN, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (l: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stderr! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { raw: text };
    }
    lines.push(line);
    for (const w of waiters.filter((w) => w.msg === line.msg)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    lines,
    exit,
    waitFor: (msg) => {
      const seen = lines.find((l) => l.msg === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ msg, resolve });
        exit.then((code) =>
          reject(new Error(`exited ${code} before "${msg}": ${JSON.stringify(lines)}`)),
        );
      });
    },
  };
}

it('serves OTLP, then drains and exits 0 on SIGTERM', async () => {
  const ds = await FaultServer.start();
  cleanups.push(() => ds.close());
  const dir = mkdtempSync(join(tmpdir(), 'otlp-bridge-bin-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'bin-token\n');

  const bridge = run(
    [
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--datastorage-url',
      ds.url,
      '--bearer-token-file',
      tokenFile,
    ],
    { KUBERNAUT_AUDIT_SPOOL_DIR: join(dir, 'spool') },
  );
  const listening = await bridge.waitFor('audit OTLP bridge listening');
  const url = String(listening.url);
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

  const app = startSdkApp({
    url,
    encoding: 'protobuf',
    resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
    headers: { Authorization: 'Bearer bin-token' },
  });
  app.emit(auditLogRecord({ correlationId: 'via-bin' }));
  app.emit({ body: 'ordinary' });
  await app.flush();
  await app.shutdown();
  expect(app.results.map((r) => r.code)).toEqual([0]);

  bridge.child.kill('SIGTERM');
  expect(await bridge.exit).toBe(0);
  expect(ds.received().map((s) => s.event.correlation_id)).toEqual(['via-bin']);
  expect(bridge.lines.some((l) => l.msg === 'audit OTLP bridge stopped')).toBe(true);
  // The token never appears in the logs.
  expect(JSON.stringify(bridge.lines)).not.toContain('bin-token');
});

it('refuses to start without a DataStorage URL, with a usage message', async () => {
  const bridge = run(['--port', '0', '--spool-dir', tmpdir()]);
  expect(await bridge.exit).toBe(2);
  expect(bridge.lines.some((l) => String(l.msg).includes('--datastorage-url'))).toBe(true);
});

it('rejects unauthenticated requests when started with a token file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otlp-bridge-bin-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), 't');
  const bridge = run([
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--datastorage-url',
    'http://127.0.0.1:9',
    '--spool-dir',
    join(dir, 'spool'),
    '--bearer-token-file',
    join(dir, 'token'),
  ]);
  const url = String((await bridge.waitFor('audit OTLP bridge listening')).url);
  const capture = await startOtlpCapture();
  cleanups.push(() => capture.close());
  const res = await fetch(`${url}/v1/logs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  expect(res.status).toBe(401);
  bridge.child.kill('SIGTERM');
  expect(await bridge.exit).toBe(0);
});

it('serves the library metrics on --management-port, with probes; 0 turns the port off', async () => {
  const ds = await FaultServer.start();
  cleanups.push(() => ds.close());
  const dir = mkdtempSync(join(tmpdir(), 'otlp-bridge-bin-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const managementPort = await freePort();
  const bridge = run([
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--datastorage-url',
    ds.url,
    '--spool-dir',
    join(dir, 'spool'),
    '--management-port',
    String(managementPort),
  ]);
  const listening = await bridge.waitFor('audit OTLP bridge listening');
  const management = `http://127.0.0.1:${managementPort}`;
  expect(listening.management).toBe(management);
  for (const path of ['/healthz', '/livez', '/readyz']) {
    expect((await fetch(`${management}${path}`)).status).toBe(200);
  }

  const app = startSdkApp({
    url: String(listening.url),
    encoding: 'json',
    resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
  });
  app.emit(auditLogRecord({ correlationId: 'metered' }));
  await app.flush();
  await app.shutdown();
  // The exporter the command builds records into the served provider: once DataStorage has the
  // event, the exporter has counted it.
  const m = await waitFor(
    async () => {
      const text = await scrape(management);
      return (text.value('otel_sdk_exporter_log_exported_total') ?? 0) >= 1 && text;
    },
    { timeoutMs: 15_000 },
  );
  expect(ds.received().map((s) => s.event.correlation_id)).toEqual(['metered']);
  expect(m.value('otel_sdk_processor_log_processed_total')).toBe(1);
  expect(m.value('kubernaut_audit_bridge_log_records_total')).toBe(1);
  expect(m.value('target_info', { service_name: 'kubernaut-audit-otlp-bridge' })).toBe(1);
  bridge.child.kill('SIGTERM');
  expect(await bridge.exit).toBe(0);

  const off = run([
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--datastorage-url',
    ds.url,
    '--spool-dir',
    join(dir, 'spool'),
    '--management-port',
    '0',
  ]);
  expect((await off.waitFor('audit OTLP bridge listening')).management).toBeNull();
  off.child.kill('SIGTERM');
  expect(await off.exit).toBe(0);
});

it('refuses an invalid management port', async () => {
  const bridge = run([
    '--datastorage-url',
    'http://127.0.0.1:9',
    '--spool-dir',
    tmpdir(),
    '--management-port',
    '70000',
  ]);
  expect(await bridge.exit).toBe(2);
  expect(bridge.lines.some((l) => String(l.msg).includes('invalid management port 70000'))).toBe(
    true,
  );
});

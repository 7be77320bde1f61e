// SPDX-License-Identifier: Apache-2.0
/*
 * examples/winston end to end: the example, run as its README says, delivers its audit lines into
 * the reference DataStorage (read back through the query API) and keeps them out of winston's Console
 * output; started without its telemetry file, it is told why nothing arrives.
 */
import { fileURLToPath } from 'node:url';
import { type DataStorageServer, startDataStorageServer } from '@kubernaut/datastorage-server';
import {
  cleanupTempDirs,
  nodeBinary,
  queryEvents,
  run,
  tempDir,
  testPgliteCacheDir,
} from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const DIR = fileURLToPath(new URL('..', import.meta.url));
let server: DataStorageServer;

beforeAll(async () => {
  server = await startDataStorageServer({
    port: 0,
    storage: { kind: 'pglite', cacheDir: testPgliteCacheDir() },
    quiet: true,
  });
});
afterAll(async () => {
  await server?.close();
  cleanupTempDirs();
});

function runExample(correlationId: string, nodeArgs: string[]) {
  return run(nodeBinary(), ['--conditions=@kubernaut/source', ...nodeArgs, 'main.ts'], {
    cwd: DIR,
    env: {
      KUBERNAUT_AUDIT_ENDPOINT: server.url,
      KUBERNAUT_AUDIT_SPOOL_DIR: tempDir(),
      CORRELATION_ID: correlationId,
      // No Collector here: NodeSDK would export traces and metrics to localhost:4318.
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'none',
    },
    timeoutMs: 60_000,
  });
}

describe('examples/winston', () => {
  // The OpenTelemetry transport emits through @opentelemetry/api-logs (a separate global under
  // SDK 3.x): these events arrive because AuditLogRecordProcessor bridges that global.
  it('delivers its audit lines into DataStorage and keeps them out of stdout', async () => {
    const correlationId = `rr-winston-${Date.now()}`;
    const r = await runExample(correlationId, ['--import', './telemetry.ts']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The Console transport's output: the ordinary lines, and no audit line or payload.
    expect(r.stdout).toContain('"message":"service started"');
    expect(r.stdout).toContain('"message":"three signals recorded"');
    expect(r.stdout).not.toContain('signal received');
    expect(r.stdout).not.toContain('audit.');
    expect(r.stdout).not.toContain('fp-0');

    const { data } = await queryEvents(server.url, { correlation_id: correlationId });
    expect(data).toHaveLength(3);
    const events = data.sort((a, b) => String(a.resource_id).localeCompare(String(b.resource_id)));
    expect(events.map((e) => [e.event_type, e.event_outcome, e.resource_id])).toEqual([
      ['gateway.signal.received', 'success', 'signal-0'],
      ['gateway.signal.received', 'success', 'signal-1'],
      ['gateway.signal.received', 'failure', 'signal-2'],
    ]);
    expect(events[0]).toMatchObject({
      event_category: 'gateway',
      event_action: 'received',
      actor_type: 'service',
      actor_id: 'payments',
      event_data: { signal_name: 'HighMemoryUsage', fingerprint: 'fp-0' },
    });
  });

  it('run without its telemetry file, it is told that winston audit lines do not arrive, and why', async () => {
    const correlationId = `rr-winston-wrong-${Date.now()}`;
    const r = await runExample(correlationId, []);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'winston logged 3 audit line(s) (kept out of its ordinary output), but none reached an AuditLogRecordProcessor',
    );
    expect(r.stderr).toContain('@opentelemetry/instrumentation/hook.mjs');
    const { data } = await queryEvents(server.url, { correlation_id: correlationId });
    expect(data).toHaveLength(0);
  });
});

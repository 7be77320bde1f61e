// SPDX-License-Identifier: Apache-2.0
/*
 * The bridge into the reference DataStorage (DESIGN §8) on in-memory PGlite with full OpenAPI
 * validation: a real SDK app's audit records, sent over OTLP/JSON+gzip, are stored, queryable,
 * and their correlation's hash chain verifies. (Own file: PGlite takes seconds to start, and
 * files run in parallel.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDataStorageServer } from '@kubernaut/datastorage-server';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import {
  auditLogRecord,
  SUCCESS,
  specPath,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
  testPgliteCacheDir,
} from '@kubernaut/test-kit';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, describe, expect, it } from 'vitest';
import { type OtlpBridge, startOtlpBridge } from '../src/index.ts';

const resource = resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES });
const quiet = () => undefined;
let bridge: OtlpBridge | undefined;
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'otlp-bridge-ref-'));
  dirs.push(d);
  return d;
}

function exporterFor(url: string): KubernautAuditExporter {
  return new KubernautAuditExporter({ url, retry: { initialDelayMillis: 10, maxDelayMillis: 50 } });
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('into the reference DataStorage (PGlite, full OpenAPI validation)', () => {
  it('stores the audit records of a correlation queryable, with a valid hash chain', async () => {
    const server = await startDataStorageServer({
      port: 0,
      storage: { kind: 'pglite', cacheDir: testPgliteCacheDir() },
      openapiSpec: specPath(),
      quiet: true,
    });
    try {
      bridge = await startOtlpBridge({
        port: 0,
        exporter: exporterFor(server.url),
        spool: { directory: tempDir() },
        logger: quiet,
      });
      const app = startSdkApp({ url: bridge.url, encoding: 'json', resource, gzip: true });
      const base = Math.floor(Date.now() / 1000) - 60;
      for (let i = 0; i < 3; i++) {
        app.emit(
          auditLogRecord({
            eventType: 'gateway.signal.received',
            correlationId: 'rr-bridge-chain',
            timestamp: [base + i, 500_000],
          }),
        );
        app.emit({ body: `ordinary ${i}` });
      }
      await app.flush();
      expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);
      await bridge.processor.forceFlush({ timeoutMillis: 20_000 });
      await app.shutdown();

      const query = await fetch(
        `${server.url}/api/v1/audit/events?correlation_id=rr-bridge-chain&limit=100`,
      );
      expect(query.status).toBe(200);
      const page = (await query.json()) as { data: Array<Record<string, unknown>> };
      expect(page.data).toHaveLength(3);
      expect(page.data.map((e) => e.event_type)).toEqual([
        'gateway.signal.received',
        'gateway.signal.received',
        'gateway.signal.received',
      ]);
      expect(page.data.map((e) => e.actor_id)).toEqual(Array(3).fill('payments-gateway'));

      const verify = await fetch(`${server.url}/api/v1/audit/verify-chain`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ correlation_id: 'rr-bridge-chain' }),
      });
      expect(verify.status).toBe(200);
      expect(await verify.json()).toMatchObject({ is_valid: true, total_events: 3 });
    } finally {
      await bridge?.close();
      bridge = undefined;
      await server.close();
    }
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * OTEP 0267 names on the Collector route (issue 16): an application's real OTLP exporter sends a
 * record that carries `audit.record.id` (and its own `audit.sequence.number`); the bridge's
 * processor keeps the record id in the stamp as `record_id`, and stamps its own seq.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import {
  auditLogRecord,
  FaultServer,
  SUCCESS,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
} from '@kubernaut/test-kit';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, describe, expect, it } from 'vitest';
import { type OtlpBridge, startOtlpBridge } from '../src/index.ts';

let ds: FaultServer | undefined;
let bridge: OtlpBridge | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await bridge?.close();
  await ds?.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('OTEP 0267 names through the audit OTLP bridge', () => {
  it("keeps a caller's audit.record.id in the stamp; the seq is the bridge producer's own", async () => {
    ds = await FaultServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'otep-bridge-'));
    dirs.push(dir);
    bridge = await startOtlpBridge({
      port: 0,
      exporter: new KubernautAuditExporter({ url: ds.url, timeoutMillis: 5000 }),
      spool: { directory: dir },
      shutdownTimeoutMillis: 1000,
      logger: () => undefined,
    });
    const app = startSdkApp({
      url: bridge.url,
      encoding: 'json',
      resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
    });
    app.emit(
      auditLogRecord({
        correlationId: 'otep-1',
        attributes: {
          'audit.record.id': 'a1b2c3d4-e5f6-4890-abcd-ef1234567890',
          'audit.sequence.number': 41,
        },
      }),
    );
    app.emit(auditLogRecord({ correlationId: 'otep-1' }));
    await app.flush();
    expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);
    await bridge.processor.forceFlush({ timeoutMillis: 20_000 });
    await app.shutdown();
    const events = ds.received().map((s) => s.event as unknown as Record<string, unknown>);
    expect(events).toHaveLength(2);
    const stamps = events.map(
      (e) => (e.event_data as Record<string, Record<string, unknown>>).audit_provenance,
    );
    expect(stamps[0]).toMatchObject({ seq: 1, record_id: 'a1b2c3d4-e5f6-4890-abcd-ef1234567890' });
    expect(stamps[1]?.record_id).toBeUndefined();
  });
});

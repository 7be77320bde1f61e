// SPDX-License-Identifier: Apache-2.0
/*
 * A spool belongs to one destination (behaviour 10 of issue 11): two programs of one service
 * name with their own DataStorages never deliver each other's records — the default spool
 * directory is keyed by the destination, and a spool records its destination: a process whose
 * exporter points elsewhere does not send from it, reports it (diag + gauge) and the records wait.
 */

import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';
import {
  captureDiag,
  cleanupTempDirs,
  FaultServer,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { deliveredIds, fastExporter, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

// The default spool directories are under the OS tmpdir: this file's tmpdir is a temporary
// directory of its own (os.tmpdir() reads TMPDIR at each call), so that nothing of the test
// lands in, or is removed from, the machine's shared one.
const savedTmpdir = process.env.TMPDIR;
process.env.TMPDIR = tempDir();
afterAll(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  cleanupTempDirs();
});

function emit(p: AuditLogRecordProcessor, prefix: string, n: number): LoggerProvider {
  const provider = new LoggerProvider({ processors: [p] });
  for (let i = 0; i < n; i++)
    provider.getLogger('t').emit(auditRecord(`${prefix}-0:${i}`, `${prefix}-0`));
  return provider;
}

describe('a spool belongs to one destination', () => {
  it('default directories: another program of the same service never delivers our records to its DataStorage', async () => {
    const service = `dest-test-${randomUUID().slice(0, 8)}`;
    const saved = process.env.OTEL_SERVICE_NAME;
    process.env.OTEL_SERVICE_NAME = service;
    const dsA = await FaultServer.start();
    const dsB = await FaultServer.start();
    try {
      const portA = Number(new URL(dsA.url).port);
      await dsA.close(); // program A's DataStorage is down: its records stay in its spool
      const a = new AuditLogRecordProcessor({
        exporter: fastExporter(dsA),
        shutdownTimeoutMillis: 10,
      });
      await emit(a, 'a', 30).shutdown();
      const b = new AuditLogRecordProcessor({ exporter: fastExporter(dsB) });
      const providerB = emit(b, 'b', 5);
      await b.forceFlush({ timeoutMillis: 30_000 });
      expect(deliveredIds(dsB).sort()).toEqual(
        Array.from({ length: 5 }, (_, i) => `b-0:${i}`).sort(),
      );
      await providerB.shutdown();
      // A, restarted with its DataStorage back, delivers its own records there.
      const dsA2 = await FaultServer.start({ port: portA });
      const a2 = new AuditLogRecordProcessor({ exporter: fastExporter(dsA2) });
      await a2.forceFlush({ timeoutMillis: 30_000 });
      expect(deliveredIds(dsA2)).toHaveLength(30);
      await a2.shutdown();
      await dsA2.close();
      // The defaults were used: one directory per destination of the service, under tmpdir.
      const defaults = readdirSync(join(tmpdir(), 'kubernaut-audit'));
      expect(defaults.filter((d) => d.startsWith(`${service}-`))).toHaveLength(2);
    } finally {
      process.env.OTEL_SERVICE_NAME = saved;
      if (saved === undefined) delete process.env.OTEL_SERVICE_NAME;
      await dsB.close();
    }
  });

  it('one directory, another destination: nothing is sent, it is reported, and the records wait', async () => {
    const dir = tempDir();
    const dsA = await FaultServer.start();
    const dsB = await FaultServer.start();
    await dsA.stop();
    await emit(
      processorFor(dsA, { spool: { directory: dir }, shutdownTimeoutMillis: 10 }),
      'w',
      12,
    ).shutdown();
    const m = testMetrics();
    const log = captureDiag();
    try {
      const b = processorFor(dsB, {
        spool: { directory: dir },
        meterProvider: m.meterProvider,
        shutdownTimeoutMillis: 10,
      });
      await expect(b.forceFlush({ timeoutMillis: 300 })).rejects.toMatchObject({
        name: 'TimeoutError',
      });
      expect(deliveredIds(dsB)).toEqual([]);
      expect(dsB.requests).toEqual([]);
      expect(await m.sum('kubernaut.audit.spool.destination_mismatch')).toBe(1);
      expect(log.messages.some((l) => /belongs to DataStorage .*the records wait/.test(l))).toBe(
        true,
      );
      await b.shutdown();
    } finally {
      log.restore();
    }
    await dsA.listen();
    const a = processorFor(dsA, { spool: { directory: dir } });
    await a.forceFlush({ timeoutMillis: 30_000 });
    expect(deliveredIds(dsA)).toHaveLength(12);
    await a.shutdown();
    await dsA.close();
    await dsB.close();
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * forceFlush timeout, shutdown leaving records in the spool for the next process,
 * excludeAuditRecords, NodeSDK with the `@opentelemetry/api` logs API, env configuration.
 */

import { AuditLogRecordProcessor, excludeAuditRecords } from '@kubernaut/exporter-kubernaut-audit';
import { readProcessorEnv } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { captureDiag, FaultServer, tempDir, testMetrics } from '@kubernaut/test-kit';
import { logs } from '@opentelemetry/api';
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { describe, expect, it } from 'vitest';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  processorFor,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile({ checkSpec: true });

describe('AuditLogRecordProcessor lifecycle', () => {
  it('forceFlush rejects with a timeout error when DataStorage never answers', async () => {
    const sink = await FaultServer.start();
    sink.inject({ type: 'slow', delayMillis: 600_000, commit: false }, 100);
    const processor = processorFor(sink, { shutdownTimeoutMillis: 50 });
    const provider = new LoggerProvider({ processors: [processor] });
    provider.getLogger('t').emit(auditRecord('hang-0:0', 'hang-0'));
    await expect(processor.forceFlush({ timeoutMillis: 300 })).rejects.toMatchObject({
      name: 'TimeoutError',
      message: expect.stringMatching(/timed out after 300 ms/),
    });
    await sink.close();
    await provider.shutdown(); // bounded by shutdownTimeoutMillis, never hangs
  });

  it('shutdown leaves undelivered records in the spool; the next processor on it delivers them', async () => {
    const dir = tempDir();
    await ds.stop();
    const first = processorFor(ds, { spool: { directory: dir }, shutdownTimeoutMillis: 100 });
    const p1 = new LoggerProvider({ processors: [first] });
    for (let i = 0; i < 40; i++)
      p1.getLogger('t').emit(auditRecord(`left-${i % 2}:${i}`, `left-${i % 2}`));
    const log = captureDiag();
    await p1.shutdown();
    log.restore();
    expect(
      log.messages.some((m) => /40 audit record\(s\) undelivered; they stay in the spool/.test(m)),
    ).toBe(true);

    await ds.listen();
    const before = ds.received().length;
    const second = processorFor(ds, { spool: { directory: dir } });
    await second.forceFlush({ timeoutMillis: 20_000 });
    const ids = deliveredIds(ds).slice(before);
    expect(ids.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `left-${i % 2}:${i}`).sort());
    await second.shutdown();
  });

  it('never throws into the application, whatever it emits', async () => {
    const before = ds.received().length;
    const dir = tempDir();
    const processor = processorFor(ds, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    const cyclic: Record<string, unknown> = { fingerprint: 'x' };
    cyclic.self = cyclic;
    expect(() => {
      logger.emit({ ...auditRecord('weird-0:0', 'weird-0'), body: cyclic as never });
      logger.emit({ ...auditRecord('weird-0:1', 'weird-0'), eventName: 'no.such.type'.repeat(20) });
      logger.emit({ attributes: { 'audit.event.category': 42 } });
      logger.emit({ body: 'plain' });
    }).not.toThrow();
    await processor.forceFlush();
    expect(deliveredIds(ds).slice(before)).toEqual([]);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(`${dir}/dead-letter.jsonl`, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3); // each invalid audit record is dead-lettered, none is lost
    await provider.shutdown();
  });

  it('spools records emitted during shutdown, and counts those emitted after it', async () => {
    const before = ds.received().length;
    const m = testMetrics();
    const processor = processorFor(ds, { meterProvider: m.meterProvider });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    logger.emit(auditRecord('late-0:0', 'late-0'));
    const done = processor.shutdown();
    logger.emit(auditRecord('late-0:1', 'late-0')); // while draining: written to the spool directly
    await done;
    logger.emit(auditRecord('late-0:2', 'late-0')); // after: nowhere to go, counted
    expect(deliveredIds(ds).slice(before)).toEqual(['late-0:0', 'late-0:1']);
    expect(
      await m.sum('kubernaut.audit.spool.dropped', { 'kubernaut.audit.reason': 'closed' }),
    ).toBe(1);
  });

  it('excludeAuditRecords keeps audit records out of another processor', async () => {
    const before = ds.received().length;
    const memory = new InMemoryLogRecordExporter();
    const audit = processorFor(ds);
    const provider = new LoggerProvider({
      processors: [excludeAuditRecords(new SimpleLogRecordProcessor({ exporter: memory })), audit],
    });
    const logger = provider.getLogger('t');
    logger.emit({ body: 'plain 1' });
    logger.emit(auditRecord('mixed-0:0', 'mixed-0'));
    logger.emit({ body: 'plain 2', attributes: { 'http.route': '/x' } });
    logger.emit(auditRecord('mixed-0:1', 'mixed-0'));
    await provider.forceFlush();
    await audit.forceFlush();
    expect(memory.getFinishedLogRecords().map((r) => r.body)).toEqual(['plain 1', 'plain 2']);
    expect(deliveredIds(ds).slice(before)).toEqual(['mixed-0:0', 'mixed-0:1']);
    await provider.shutdown();
  });

  it('works under NodeSDK with logs from @opentelemetry/api', async () => {
    const before = ds.received().length;
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_METRICS_EXPORTER = 'none';
    const processor = new AuditLogRecordProcessor({
      exporter: fastExporter(ds),
      spool: { directory: tempDir() },
    });
    const sdk = new NodeSDK({ logRecordProcessors: [processor], instrumentations: [] });
    sdk.start();
    const logger = logs.getLogger('nodesdk-test');
    for (let i = 0; i < 25; i++) logger.emit(auditRecord(`sdk-0:${i}`, 'sdk-0'));
    logger.emit({ body: 'not audit' });
    await processor.forceFlush();
    expect(deliveredIds(ds).slice(before)).toEqual(
      Array.from({ length: 25 }, (_, i) => `sdk-0:${i}`),
    );
    await sdk.shutdown();
  });

  it('reads OTEL_BLRP_* and KUBERNAUT_AUDIT_SPOOL_* and warns on invalid values', () => {
    const log = captureDiag();
    try {
      const cfg = readProcessorEnv({
        OTEL_BLRP_MAX_QUEUE_SIZE: '4096',
        OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: 'lots',
        OTEL_BLRP_SCHEDULE_DELAY: '250',
        OTEL_BLRP_EXPORT_TIMEOUT: '-1',
        KUBERNAUT_AUDIT_SPOOL_DIR: '/var/spool/audit',
        KUBERNAUT_AUDIT_SPOOL_MAX_BYTES: '1048576',
        KUBERNAUT_AUDIT_SPOOL_DURABILITY: 'sometimes',
      });
      expect(cfg).toMatchObject({
        maxQueueSize: 4096,
        maxExportBatchSize: undefined,
        scheduledDelayMillis: 250,
        exportTimeoutMillis: undefined,
        spoolDirectory: '/var/spool/audit',
        spoolMaxBytes: 1048576,
      });
      expect(cfg.spoolDurability).toBeUndefined();
      expect(log.messages.filter((m) => /ignoring/.test(m))).toHaveLength(3);
    } finally {
      log.restore();
    }
  });

  it('uses the environment when options are absent, and code options win', async () => {
    const dir = tempDir();
    const saved = { ...process.env };
    process.env.KUBERNAUT_AUDIT_ENDPOINT = ds.url;
    process.env.KUBERNAUT_AUDIT_SPOOL_DIR = dir;
    process.env.KUBERNAUT_AUDIT_SPOOL_DURABILITY = 'sync';
    process.env.OTEL_BLRP_MAX_QUEUE_SIZE = '7';
    try {
      const before = ds.received().length;
      const fromEnv = new AuditLogRecordProcessor();
      const provider = new LoggerProvider({ processors: [fromEnv] });
      provider.getLogger('t').emit(auditRecord('env-0:0', 'env-0'));
      await fromEnv.forceFlush({ timeoutMillis: 20_000 });
      expect(deliveredIds(ds).slice(before)).toEqual(['env-0:0']);
      await provider.shutdown();
      // Code options win: a different spool directory than the environment's.
      const other = tempDir();
      const fromCode = new AuditLogRecordProcessor({ spool: { directory: other } });
      await fromCode.shutdown();
      const { readdirSync } = await import('node:fs');
      expect(readdirSync(other).length).toBeGreaterThan(0);
    } finally {
      process.env = saved;
    }
  });
});

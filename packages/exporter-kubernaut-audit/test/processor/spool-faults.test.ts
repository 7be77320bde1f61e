// SPDX-License-Identifier: Apache-2.0
/*
 * Spool faults: a corrupted tail is recovered and counted; a spool at its byte bound drops
 * and counts (metric + diag); an unwritable spool directory degrades to memory-only (metric
 * + diag) and the application keeps running and delivering; a spool directory removed while
 * in use is re-created by itself, its records written back (diag + metric).
 */
import { appendFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spoolUsageOf } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { captureDiag, tempDir, testMetrics } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterEach, describe, expect, it } from 'vitest';
import { createProcessor } from '../../src/processor/create.ts';
import { nodeFs, type SpoolFs } from '../../src/spool/fs.ts';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  processorFor,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile();

/** A temp directory, and a spool directory in it that can never be created (under a file). */
function underAFile(): { base: string; uncreatable: string } {
  const base = tempDir();
  const file = join(base, 'not-a-directory');
  writeFileSync(file, 'x');
  return { base, uncreatable: join(file, 'spool') };
}
afterEach(async () => {
  expect(ds.specViolations).toEqual([]);
  await ds.listen();
});

describe('AuditLogRecordProcessor spool faults', () => {
  it('recovers a spool with a corrupted tail, counts it, and delivers the intact records', async () => {
    const dir = tempDir();
    await ds.stop();
    const first = processorFor(ds, { spool: { directory: dir }, shutdownTimeoutMillis: 50 });
    const p1 = new LoggerProvider({ processors: [first] });
    for (let i = 0; i < 50; i++) p1.getLogger('t').emit(auditRecord(`torn-0:${i}`, 'torn-0'));
    await p1.shutdown(); // DataStorage down: the 50 records stay in the spool
    const segments = readdirSync(dir)
      .filter((f) => f.endsWith('.kaf'))
      .sort();
    expect(segments.length).toBeGreaterThan(0);
    // A torn write: half a frame of garbage at the end of the newest segment.
    appendFileSync(
      join(dir, segments[segments.length - 1] as string),
      Buffer.from([0, 0, 1, 7, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]),
    );

    await ds.listen();
    const before = ds.received().length;
    const m = testMetrics();
    const second = processorFor(ds, { spool: { directory: dir }, meterProvider: m.meterProvider });
    const p2 = new LoggerProvider({ processors: [second] });
    for (let i = 50; i < 60; i++) p2.getLogger('t').emit(auditRecord(`torn-0:${i}`, 'torn-0'));
    await second.forceFlush({ timeoutMillis: 20_000 });
    const ids = deliveredIds(ds).slice(before);
    expect(new Set(ids).size).toBe(60);
    expect(ids.length).toBe(60);
    expect(await m.sum('kubernaut.audit.spool.corrupted')).toBeGreaterThanOrEqual(1);
    await p2.shutdown();
  });

  it('drops and counts (metric + diag) what does not fit a spool at its byte bound', async () => {
    const dir = tempDir();
    const m = testMetrics();
    const log = captureDiag();
    try {
      await ds.stop();
      const before = ds.received().length;
      const processor = processorFor(ds, {
        spool: { directory: dir, maxBytes: 16 * 1024, durability: 'sync' },
        meterProvider: m.meterProvider,
      });
      const provider = new LoggerProvider({ processors: [processor] });
      const N = 200;
      for (let i = 0; i < N; i++)
        provider.getLogger('t').emit(auditRecord(`full-${i % 3}:${i}`, `full-${i % 3}`));
      const dropped = await m.sum('kubernaut.audit.spool.dropped', {
        'kubernaut.audit.reason': 'full',
      });
      expect(dropped).toBeGreaterThan(0);
      expect(dropped).toBeLessThan(N);
      expect(await m.sum('otel.sdk.processor.log.processed', { 'error.type': 'spool_full' })).toBe(
        dropped,
      );
      expect(log.messages.some((l) => /dropped: the spool is full/.test(l))).toBe(true);
      const during = await m.collect();
      const bytes = during.get('kubernaut.audit.spool.bytes')?.[0]?.value as number;
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThanOrEqual(16 * 1024);
      expect(during.get('kubernaut.audit.spool.oldest_age')?.[0]?.value).toBeGreaterThanOrEqual(0);
      await ds.listen();
      await processor.forceFlush({ timeoutMillis: 20_000 });
      expect((await m.collect()).get('kubernaut.audit.spool.bytes')?.[0]?.value).toBe(0);
      const ids = deliveredIds(ds).slice(before);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length + dropped).toBe(N); // every record is delivered or counted as dropped
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it('degrades to memory-only when the spool directory cannot be created; the app still runs', async () => {
    const { base, uncreatable } = underAFile();
    const m = testMetrics();
    const log = captureDiag();
    try {
      const before = ds.received().length;
      const processor = processorFor(ds, {
        spool: { directory: uncreatable },
        deadLetter: { path: join(base, 'dead-letter.jsonl') },
        meterProvider: m.meterProvider,
      });
      const provider = new LoggerProvider({ processors: [processor] });
      for (let i = 0; i < 20; i++) provider.getLogger('t').emit(auditRecord(`mem-0:${i}`, 'mem-0'));
      await processor.forceFlush({ timeoutMillis: 20_000 });
      expect(deliveredIds(ds).slice(before).length).toBe(20);
      const points = (await m.collect()).get('kubernaut.audit.spool.memory_only') ?? [];
      expect(points.map((p) => p.value)).toEqual([1]);
      expect(log.messages.some((l) => /memory only/.test(l))).toBe(true);
      await provider.shutdown();
    } finally {
      log.restore();
    }
  });

  it.each([
    ['the spool directory cannot be created', 'unwritable'],
    ['the spool is off', 'off'],
  ] as const)('a shutdown with records held in memory only (%s) counts them as dropped and says they are lost', async (_, mode) => {
    const { base, uncreatable } = underAFile();
    const m = testMetrics();
    const log = captureDiag();
    try {
      await ds.stop();
      const processor = processorFor(ds, {
        spool: mode === 'off' ? false : { directory: uncreatable },
        deadLetter: { path: join(base, 'dead-letter.jsonl') },
        shutdownTimeoutMillis: 300,
        meterProvider: m.meterProvider,
      });
      const provider = new LoggerProvider({ processors: [processor] });
      for (let i = 0; i < 20; i++)
        provider.getLogger('t').emit(auditRecord(`lost-0:${i}`, 'lost-0'));
      await provider.shutdown(); // DataStorage down: nothing delivered, nothing on disk
      expect(
        await m.sum('kubernaut.audit.spool.dropped', { 'kubernaut.audit.reason': 'unwritten' }),
      ).toBe(20);
      const text = log.messages.join('\n');
      expect(text).toMatch(/20 of them held in memory only .* those are lost/);
      expect(text).not.toMatch(/they stay in the spool and the next process on it delivers them/);
    } finally {
      log.restore();
    }
  });

  it('on a full volume, the room of acknowledged records is given back: writes resume, the spool is durable again', async () => {
    // A volume whose only room is what the acknowledged segment takes: segment writes fail with
    // ENOSPC until a segment is deleted.
    let full = false;
    const enospc = () =>
      Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const kaf = new Set<number>();
    const fs: SpoolFs = {
      ...nodeFs,
      openSync: (path, flags, mode) => {
        const fd = nodeFs.openSync(path, flags, mode);
        if (String(path).endsWith('.kaf')) kaf.add(fd);
        return fd;
      },
      writeSync: (fd, buf, offset, length, position) => {
        if (full && kaf.has(fd)) throw enospc();
        return nodeFs.writeSync(fd, buf, offset, length, position);
      },
      unlinkSync: (path) => {
        nodeFs.unlinkSync(path);
        if (String(path).endsWith('.kaf')) full = false;
      },
    };
    const before = ds.received().length;
    const processor = createProcessor(
      {
        exporter: fastExporter(ds),
        spool: { directory: tempDir(), durability: 'sync' },
      },
      { fs },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    for (let i = 0; i < 20; i++) logger.emit(auditRecord(`room-0:${i}`, 'room-0'));
    await processor.forceFlush({ timeoutMillis: 20_000 }); // delivered: the segment holds acked frames
    full = true;
    for (let i = 20; i < 40; i++) logger.emit(auditRecord(`room-0:${i}`, 'room-0'));
    expect(spoolUsageOf(processor)?.durable).toBe(false); // held in memory: no room
    await processor.forceFlush({ timeoutMillis: 20_000 }); // delivered from memory, acknowledged
    expect(full).toBe(false); // the acknowledged segment was deleted
    logger.emit(auditRecord('room-0:40', 'room-0'));
    expect(spoolUsageOf(processor)?.durable).toBe(true); // on disk again ('sync': at emit)
    await processor.forceFlush({ timeoutMillis: 20_000 });
    expect(new Set(deliveredIds(ds).slice(before)).size).toBe(41);
    await provider.shutdown();
  });

  it('a spool directory deleted while in use is re-created: said so, counted, durable again, nothing lost', async () => {
    const dir = join(tempDir(), 'spool');
    const m = testMetrics();
    const log = captureDiag();
    try {
      await ds.stop();
      const processor = processorFor(ds, {
        spool: { directory: dir, durability: 'sync' },
        shutdownTimeoutMillis: 300,
        meterProvider: m.meterProvider,
      });
      const provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('t');
      for (let i = 0; i < 10; i++) logger.emit(auditRecord(`gone-0:${i}`, 'gone-0'));
      expect(spoolUsageOf(processor)?.durable).toBe(true);
      rmSync(dir, { recursive: true, force: true }); // an operator's rm -rf
      for (let i = 10; i < 20; i++) logger.emit(auditRecord(`gone-0:${i}`, 'gone-0'));
      // The spool's periodic check (once a second) notices it and writes everything back.
      const back = await Promise.race([
        log.waitFor(/every unacknowledged record is on disk in it again/),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000).unref()),
      ]);
      expect(back).toContain(dir);
      expect(log.messages.join('\n')).toMatch(/the directory is gone/);
      expect(spoolUsageOf(processor)?.durable).toBe(true);
      expect(await m.sum('kubernaut.audit.spool.directory_lost')).toBe(1);
      await provider.shutdown(); // DataStorage down: the 20 stay in the spool
      expect(
        await m.sum('kubernaut.audit.spool.dropped', { 'kubernaut.audit.reason': 'unwritten' }),
      ).toBe(0);
      await ds.listen();
      const before = ds.received().length;
      const next = processorFor(ds, { spool: { directory: dir } });
      const p2 = new LoggerProvider({ processors: [next] });
      await next.forceFlush({ timeoutMillis: 20_000 });
      const ids = deliveredIds(ds).slice(before);
      expect(new Set(ids).size).toBe(20);
      expect(ids.length).toBe(20);
      await p2.shutdown();
    } finally {
      log.restore();
    }
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * The spool in hard places, seen from the processor (behaviour 9 of issue 11):
 * (a) a restart on a full volume delivers the predecessor's backlog (recovery needs no free
 *     space) and keeps new records in memory until space returns;
 * (b) the lock of a dead process naming another host (a new pod) does not hold the spool;
 * (c) a process that could not lock the spool writes its own dead-letter file, and the spool's
 *     file stays within its bound;
 * (d) damage found while running is counted in kubernaut.audit.spool.corrupted;
 * (e) the batch drains' writes on the thread pool failing (a full volume): nothing is lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, tempDir, testMetrics } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { createProcessor } from '../../src/processor/create.ts';
import { faultyFs, WRITES } from '../spool/faulty-fs.ts';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  processorFor,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const HOLDER = fileURLToPath(new URL('../spool/fixtures/hold-lock-child.ts', import.meta.url));
const ds = await faultServerForFile();

/** Spools `n` records with DataStorage down, then shuts down (they stay in the spool). */
async function leaveBacklog(dir: string, n: number, prefix: string, batch = 512): Promise<void> {
  await ds.stop();
  const p = processorFor(ds, {
    spool: { directory: dir },
    shutdownTimeoutMillis: 10,
    maxExportBatchSize: batch,
  });
  const provider = new LoggerProvider({ processors: [p] });
  for (let i = 0; i < n; i++) {
    provider.getLogger('t').emit(auditRecord(`${prefix}-${i % 4}:${i}`, `${prefix}-${i % 4}`));
    if (i % batch === batch - 1) await p.forceFlush({ timeoutMillis: 1 }).catch(() => undefined);
  }
  await provider.shutdown();
  await ds.listen();
}

describe('the spool in hard places', () => {
  it('(a) a restart on a full volume delivers the backlog, and holds new records until space returns', async () => {
    const dir = tempDir();
    await leaveBacklog(dir, 296, 'full');
    const before = ds.received().length;
    const fs = faultyFs();
    fs.fail({ ops: WRITES, code: 'ENOSPC' });
    const processor = createProcessor(
      { exporter: fastExporter(ds), spool: { directory: dir } },
      { fs },
    );
    expect(processor.spoolKind).toBe('file');
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 10; i++) provider.getLogger('t').emit(auditRecord(`new-0:${i}`, 'new-0'));
    await processor.forceFlush({ timeoutMillis: 30_000 });
    const ids = new Set(deliveredIds(ds).slice(before));
    expect(ids.size).toBe(306);
    fs.heal();
    await provider.shutdown();
  });

  it('(b) the lock of a dead process that names another host does not hold the spool', async () => {
    const dir = tempDir();
    const child: ChildProcess = spawn(
      nodeBinary(),
      ['--conditions=@kubernaut/source', HOLDER, dir],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // What each generation of the spool writes about its owner, claiming an old pod.
    const owner = JSON.stringify({ pid: 1, hostname: 'audit-7f9c-old-pod', lockedAt: Date.now() });
    writeFileSync(join(dir, 'lock'), owner);
    writeFileSync(join(dir, 'lock.owner'), owner);
    const processor = processorFor(ds, { spool: { directory: dir } });
    expect(processor.spoolKind).toBe('file');
    await processor.shutdown();
  });

  it('(c) a process without the lock writes its own dead-letter file; the spool’s stays within its bound', async () => {
    const dir = tempDir();
    const maxBytes = 64 * 1024;
    const holder = processorFor(ds, { spool: { directory: dir }, deadLetter: { maxBytes } });
    const other = processorFor(ds, { spool: { directory: dir }, deadLetter: { maxBytes } });
    expect(holder.spoolKind).toBe('file');
    expect(other.spoolKind).toBe('memory');
    for (const [p, name] of [
      [holder, 'holder'],
      [other, 'other'],
    ] as const) {
      const provider = new LoggerProvider({ processors: [p] });
      for (let i = 0; i < 150; i++) {
        const rec = auditRecord(`${name}-0:${i}`, `${name}-0`);
        delete (rec.attributes as Record<string, unknown>)['audit.event.outcome'];
        provider.getLogger('t').emit(rec);
      }
      await p.forceFlush();
    }
    const files = readdirSync(dir).filter((f) => f.startsWith('dead-letter'));
    expect(files.length).toBe(2);
    expect(statSync(join(dir, 'dead-letter.jsonl')).size).toBeLessThanOrEqual(maxBytes);
    const own = files.find((f) => f !== 'dead-letter.jsonl') as string;
    expect(own).toMatch(/^dead-letter\.[0-9a-f-]{36}\.jsonl$/);
    expect(readFileSync(join(dir, own), 'utf8')).toContain('other-0:');
    expect(readFileSync(join(dir, 'dead-letter.jsonl'), 'utf8')).not.toContain('other-0:');
    await holder.shutdown();
    await other.shutdown();
  });

  it.each([
    ['one frame at a time in memory (each read into a buffer of its own)', 1],
    ["frames read back through the lane's read arena", 64 * 1024],
  ])('(d) damage found while running is counted in kubernaut.audit.spool.corrupted: %s', async (_how, laneBudgetBytes) => {
    const dir = tempDir();
    await leaveBacklog(dir, 400, 'dmg', 10); // many small frames per lane
    await ds.stop();
    const m = testMetrics();
    const processor = createProcessor(
      {
        exporter: fastExporter(ds),
        spool: { directory: dir },
        meterProvider: m.meterProvider,
        senderLanes: 1,
      },
      { laneBudgetBytes }, // the rest is read from disk later
    );
    expect(await m.sum('kubernaut.audit.spool.corrupted')).toBe(0); // recovery found none
    const [seg] = readdirSync(dir).filter((f) => f.endsWith('.kaf'));
    const path = join(dir, seg as string);
    const buf = readFileSync(path);
    const last = buf.lastIndexOf(Buffer.from('KAF2'));
    const lost = buf.readUInt16LE(last + 14);
    buf[buf.length - 5] = (buf[buf.length - 5] as number) ^ 0xff; // in the last frame's body
    writeFileSync(path, buf);
    const before = ds.received().length;
    await ds.listen();
    await processor.forceFlush({ timeoutMillis: 30_000 });
    expect(await m.sum('kubernaut.audit.spool.corrupted')).toBe(1);
    expect(new Set(deliveredIds(ds).slice(before)).size).toBe(400 - lost);
    await processor.shutdown();
  });

  it("(e) the batch drains' thread-pool writes fail (ENOSPC) while DataStorage is down: every record reaches the next process, once", async () => {
    const dir = tempDir();
    const fs = faultyFs();
    fs.fail({ ops: ['write'], code: 'ENOSPC', path: /\.kaf$/ }); // writeSync still works
    await ds.stop();
    const processor = createProcessor(
      { exporter: fastExporter(ds), spool: { directory: dir }, shutdownTimeoutMillis: 10 },
      { fs },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    for (let i = 0; i < 1100; i++) {
      logger.emit(auditRecord(`defer-${i % 4}:${i}`, `defer-${i % 4}`));
      if (i % 100 === 99) await new Promise((r) => setImmediate(r)); // the batcher drains
    }
    expect(fs.failures.get('write')).toBeGreaterThan(0); // deferred writes were made, and failed
    await provider.shutdown(); // the failed ones are written again, in place, on close
    await ds.listen();
    const before = ds.received().length;
    const next = processorFor(ds, { spool: { directory: dir } });
    await next.forceFlush({ timeoutMillis: 30_000 });
    const ids = deliveredIds(ds).slice(before);
    expect(new Set(ids).size).toBe(1100);
    expect(ids.length).toBe(1100);
    await next.shutdown();
  });
});

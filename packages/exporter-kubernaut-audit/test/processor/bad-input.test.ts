// SPDX-License-Identifier: Apache-2.0
/*
 * Bad input at scale (behaviour 8 of issue 11): 93,500 invalid records among 11,000 valid ones —
 * every valid one arrives, nothing invalid reaches DataStorage, memory stays bounded (invalid
 * records are mapped at drain, never held), the dead-letter file stays within its bound and
 * every dead letter keeps its seq. Hostile bodies (a 23-level DAG of shared references, a BigInt)
 * are dead-lettered with a sanitised, size-capped copy and their seq.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, readJsonLines, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { BOTH_PROCESSORS, deliveredIds, faultServerForFile } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile();

const CHILD = fileURLToPath(new URL('./fixtures/bad-input-child.ts', import.meta.url));

type DeadLine = {
  reason: string;
  event: { audit_provenance?: { seq?: number }; record?: { body?: unknown } };
};

describe('bad input at scale', () => {
  it.each([
    ['AuditLogRecordProcessor', ''],
    ['ThreadedAuditLogRecordProcessor', 'threaded'],
  ])(
    '%s: 93,500 invalid among 11,000 valid, in a process with a 160 MB heap: all valid delivered, none invalid',
    async (_name, kind) => {
      const before = ds.received().length;
      const dir = tempDir();
      const child = spawn(
        nodeBinary(),
        ['--max-old-space-size=160', '--conditions=@kubernaut/source', CHILD],
        {
          env: { ...process.env, DS_URL: ds.url, SPOOL_DIR: dir, PROCESSOR: kind },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect({ code, heapExhausted: /heap out of memory/i.test(err) }).toEqual({
        code: 0,
        heapExhausted: false,
      });
      expect(out).toContain('VALID 11000');
      const ids = deliveredIds(ds).slice(before);
      expect(ids.length).toBe(11_000);
      expect(new Set(ids).size).toBe(11_000);
      expect(ds.specViolations).toEqual([]);
      const lines = readJsonLines(join(dir, 'dead-letter.jsonl')) as unknown as DeadLine[];
      expect(lines.length).toBeGreaterThan(1000);
      expect(statSync(join(dir, 'dead-letter.jsonl')).size).toBeLessThanOrEqual(16 * 1024 * 1024);
      expect(lines.every((l) => typeof l.event.audit_provenance?.seq === 'number')).toBe(true);
    },
    120_000,
  );

  it.each(
    BOTH_PROCESSORS,
  )('%s: a DAG body and a BigInt body: dead-lettered, sanitised and capped, with their seq', async (_name, make) => {
    const dir = tempDir();
    const processor = make(ds, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('hostile');
    let dag: Record<string, unknown> = { fingerprint: 'dag', leaf: 'x'.repeat(64) };
    for (let i = 0; i < 23; i++) dag = { left: dag, right: dag };
    logger.emit({ ...auditRecord('dag-0:0', 'dag-0'), body: dag as never });
    logger.emit({ ...auditRecord('big-0:0', 'big-0'), body: 12345678901234567890n as never });
    logger.emit({ ...auditRecord('ok-0:0', 'ok-0') });
    await processor.forceFlush({ timeoutMillis: 30_000 });
    const lines = readJsonLines(join(dir, 'dead-letter.jsonl')) as unknown as DeadLine[];
    expect(lines.map((l) => l.reason)).toEqual(['event_data_too_deep', 'missing_field']);
    expect(lines.map((l) => l.event.audit_provenance?.seq)).toEqual([1, 2]);
    expect(lines[1]?.event.record?.body).toBe('12345678901234567890n');
    expect(JSON.stringify(lines[0]).length).toBeLessThan(80 * 1024);
    expect(deliveredIds(ds)).toContain('ok-0:0');
    await provider.shutdown();
  });

  it.each(
    BOTH_PROCESSORS,
  )('%s: bodies that cannot be read (a Proxy whose traps throw, a getter that throws): one valid dead-letter line each, with the rest of the record and the seq', async (_name, make) => {
    const dir = tempDir();
    const processor = make(ds, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('hostile');
    const boom = (what: string) => () => {
      throw new Error(what);
    };
    const proxy = new Proxy({}, { ownKeys: boom('no keys'), get: boom('no value') });
    const getter = Object.defineProperty({ ok: 1 }, 'bad', {
      get: boom('no getter'),
      enumerable: true,
    });
    logger.emit({ ...auditRecord('proxy-0:0', 'proxy-0'), body: proxy as never });
    logger.emit({ ...auditRecord('getter-0:0', 'getter-0'), body: getter as never });
    logger.emit({ ...auditRecord('ok-1:0', 'ok-1') });
    await processor.forceFlush({ timeoutMillis: 30_000 });
    // readJsonLines parses every line: a line that is not JSON fails here.
    const lines = readJsonLines(join(dir, 'dead-letter.jsonl')) as unknown as Array<
      DeadLine & { event: { record?: { attributes?: Record<string, unknown> } } }
    >;
    expect(lines.map((l) => l.event.audit_provenance?.seq)).toEqual([1, 2]);
    expect(lines.map((l) => l.event.record?.attributes?.['audit.correlation.id'])).toEqual([
      'proxy-0',
      'getter-0',
    ]);
    expect(JSON.stringify(lines[0]?.event.record?.body)).toContain('[unreadable: no keys]');
    expect(JSON.stringify(lines[1]?.event.record?.body)).toContain('[unreadable: no getter]');
    expect(deliveredIds(ds)).toContain('ok-1:0');
    await provider.shutdown();
  });
});

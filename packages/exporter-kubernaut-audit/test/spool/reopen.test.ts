// SPDX-License-Identifier: Apache-2.0
/*
 * Acknowledgements survive any number of restarts: a record acknowledged is never delivered
 * again by a later process, also after opens that changed nothing (each open rewrites the
 * sent/ack log), after the log was compacted while running, and for fully acknowledged frames
 * that stay on disk in a kept segment (the active one, or one that still holds live frames).
 */
import { readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { LOG_FILE } from '../../src/spool/spool.ts';
import { deliveredIds, faultServerForFile, processorFor } from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';
import { faultyFs } from './faulty-fs.ts';
import { allPending, event, events, segmentFiles, spoolOpener } from './helpers.ts';

const ds = await faultServerForFile();

const spool = spoolOpener();

/** Opens and closes `dir` `times` times, returning the pending ids each open found. */
function reopen(dir: string, times: number): number[][] {
  const found: number[][] = [];
  for (let k = 0; k < times; k++) {
    const s = spool(dir);
    found.push(allPending(s).map(([, id]) => id));
    s.close();
  }
  return found;
}

describe('acknowledgements across restarts', () => {
  it('acknowledged records never come back, however many times the spool is reopened', () => {
    const dir = tempDir();
    const a = spool(dir, { lanes: 2 });
    a.append(events(0, 10, 2));
    a.ack([{ from: 1, to: 10 }]);
    a.close();
    expect(reopen(dir, 4)).toEqual([[], [], [], []]);
    const s = spool(dir);
    expect(s.stats().records).toBe(0);
    expect(s.oldestUnackedSeq()).toBe(Number.POSITIVE_INFINITY);
    // Seqs keep increasing, and what is appended now is all that is pending.
    expect(s.append(events(10, 12)).frames[0]?.firstSeq).toBe(11);
    s.close();
    expect(reopen(dir, 2)).toEqual([
      [10, 11],
      [10, 11],
    ]);
  });

  it('fully acknowledged frames beside live ones in a kept segment stay acknowledged', () => {
    const dir = tempDir();
    const a = spool(dir);
    a.append(events(0, 5)); // seqs 1..5
    a.append(events(5, 10)); // seqs 6..10
    a.append(events(10, 15)); // seqs 11..15
    a.ack([
      { from: 1, to: 7 },
      { from: 11, to: 15 },
    ]);
    a.close();
    expect(reopen(dir, 3)).toEqual([
      [7, 8, 9],
      [7, 8, 9],
      [7, 8, 9],
    ]);
    const b = spool(dir);
    b.append(events(15, 17)); // seqs 16..17
    b.ack([{ from: 8, to: 10 }]);
    b.close();
    expect(reopen(dir, 3)).toEqual([
      [15, 16],
      [15, 16],
      [15, 16],
    ]);
  });

  it('a log compacted while running keeps the acknowledgements of frames still on disk', () => {
    const dir = tempDir();
    // Small segments (two frames each): some are deleted once acknowledged, the first is kept
    // by its one live record although its second frame is acknowledged whole.
    const a = spool(dir, { segmentBytes: 64 * 1024 });
    const n = 40_000;
    for (let id = 0; id < n; id += 500) a.append(events(id, id + 500, 1, 20));
    expect(segmentFiles(dir).length).toBeGreaterThan(10);
    // One ack frame (28 bytes) per record: the log passes its compaction threshold (1 MiB).
    for (let seq = 2; seq <= n; seq++) a.ack([{ from: seq, to: seq }]);
    expect(statSync(join(dir, LOG_FILE)).size).toBeLessThan(512 * 1024); // it was compacted
    expect(allPending(a).map(([, id]) => id)).toEqual([0]);
    a.close();
    expect(reopen(dir, 3)).toEqual([[0], [0], [0]]);
  });

  it('an acknowledgement in the log never covers a record appended by a later process', () => {
    const dir = tempDir();
    const a = spool(dir);
    for (let id = 0; id < 3; id++) a.append([event(id)]);
    a.ack([{ from: 1, to: 3 }]);
    a.close();
    // The segment loses its last two (acknowledged) frames, as a power loss may take an
    // unsynced tail, and the log cannot be rewritten at the next open (a full volume).
    const [seg] = segmentFiles(dir);
    truncateSync(seg as string, readFileSync(seg as string).readUInt32LE(8));
    const fs = faultyFs();
    fs.fail({ ops: ['openSync'], code: 'ENOSPC', path: /\.tmp$/ });
    const b = spool(dir, { fs });
    expect(allPending(b)).toEqual([]);
    b.append([event(10)]);
    b.append([event(11)]);
    b.close();
    expect(reopen(dir, 2)).toEqual([
      [10, 11],
      [10, 11],
    ]);
  });
});

describe('acknowledgements across processor restarts', () => {
  it('a third process does not deliver again what the first one delivered', async () => {
    const dir = tempDir();
    const p1 = processorFor(ds, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [p1] });
    for (let i = 0; i < 10; i++) provider.getLogger('t').emit(auditRecord(`r-0:${i}`, 'r-0'));
    await p1.forceFlush({ timeoutMillis: 30_000 });
    await provider.shutdown();
    expect(deliveredIds(ds)).toHaveLength(10);
    for (let k = 2; k <= 4; k++) {
      const p = processorFor(ds, { spool: { directory: dir } });
      await p.forceFlush({ timeoutMillis: 30_000 });
      await p.shutdown();
      expect(deliveredIds(ds)).toHaveLength(10);
    }
  });

  it('a segment grown past what a writer makes (a 3 GiB sparse file) is read up to that bound: the rest is damage, the records before it come back', () => {
    const dir = tempDir();
    const a = spool(dir);
    a.append(events(0, 10));
    a.close();
    const [seg] = segmentFiles(dir);
    truncateSync(seg as string, 3 * 1024 * 1024 * 1024); // zeros past the frames, none on disk
    const s = spool(dir);
    expect({ kind: s.kind, error: s.lastError?.message }).toEqual({
      kind: 'file',
      error: undefined,
    });
    expect(allPending(s).map(([, id]) => id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(s.stats().corrupted).toBeGreaterThanOrEqual(1);
    // Appends go on after the last intact frame.
    expect(s.append(events(10, 11)).frames[0]?.firstSeq).toBe(11);
  });

  it('a sent/ack log grown past its bound (a 3 GiB sparse file) is read up to it: acknowledgements before it hold', () => {
    const dir = tempDir();
    const a = spool(dir);
    a.append(events(0, 10));
    a.ack([{ from: 1, to: 4 }]);
    a.close();
    truncateSync(join(dir, LOG_FILE), 3 * 1024 * 1024 * 1024);
    const s = spool(dir);
    expect({ kind: s.kind, error: s.lastError?.message }).toEqual({
      kind: 'file',
      error: undefined,
    });
    expect(allPending(s).map(([, id]) => id)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(s.stats().corrupted).toBeGreaterThanOrEqual(1);
  });
});

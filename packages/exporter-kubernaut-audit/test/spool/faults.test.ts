// SPDX-License-Identifier: Apache-2.0
/*
 * The spool in hard places (behaviour 9 of issue 11), with faults injected through its
 * filesystem seam: a restart on a full volume reads the predecessor's backlog without writing
 * anything and keeps new records in memory until space returns; a directory that cannot be
 * opened (read-only) is memory-only, re-tried in the background, and the memory records
 * migrate into it in order, before new ones; ENOSPC while running holds frames in memory and a
 * retry writes them; EIO on a read ends the read early and is counted, never losing records.
 */
import { tempDir } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';
import { faultyFs, WRITES } from './faulty-fs.ts';
import { allPending, events, spoolOpener } from './helpers.ts';

const spool = spoolOpener();

describe('spool faults', () => {
  it('restarts on a full volume: the backlog is read without a single write, new records wait in memory, then are written', () => {
    const dir = tempDir();
    const before = spool(dir);
    before.append(events(0, 296));
    before.ack([{ from: 1, to: 6 }]);
    before.close();

    const fs = faultyFs();
    fs.fail({ ops: WRITES, code: 'ENOSPC' });
    const s = spool(dir, { fs });
    expect(s.kind).toBe('file'); // recovery needed no free space
    expect(allPending(s).map(([, id]) => id)).toEqual(Array.from({ length: 290 }, (_, i) => i + 6));
    // Delivering the backlog: its acknowledgements cannot be persisted, the delivery goes on.
    s.ack([{ from: 7, to: 100 }]);
    expect(s.oldestUnackedSeq()).toBe(101);
    // New records cannot be written: held in memory, not dropped.
    const out = s.append(events(1000, 1010));
    expect(out.dropped).toEqual([]);
    expect(s.holdsUnwritten).toBe(true);
    expect(fs.failures.get('writeSync')).toBeGreaterThan(0);
    // Space is freed: the background retry (run now) writes them.
    fs.heal();
    s.retryNow();
    expect(s.holdsUnwritten).toBe(false);
    s.close();
    const after = spool(dir);
    const ids = allPending(after).map(([, id]) => id);
    expect(ids).toContain(1009);
    expect(ids).toContain(101); // acks made while full were not persisted: sent again (at least once)
  });

  it('cannot open the directory (read-only): memory-only, re-tried, memory records migrate in order before new ones', () => {
    const dir = `${tempDir()}/spool`;
    const fs = faultyFs();
    fs.fail({ ops: WRITES, code: 'EROFS' });
    const s = spool(dir, { fs, lanes: 1 });
    expect(s.kind).toBe('memory');
    expect(s.lastError?.message).toMatch(/EROFS/);
    s.append(events(0, 5));
    s.ack([{ from: 1, to: 1 }]); // delivered while in memory: never written
    fs.heal();
    s.retryNow();
    expect(s.kind).toBe('file');
    expect(s.holdsUnwritten).toBe(false);
    s.append(events(5, 8));
    expect(allPending(s).map(([, id]) => id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    s.close();
    expect(allPending(spool(dir)).map(([, id]) => id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('ENOSPC while running: frames are held in memory (bounded) and written by the retry, in order', () => {
    const dir = tempDir();
    const fs = faultyFs();
    const s = spool(dir, { fs, lanes: 1, memoryMaxBytes: 4_000 });
    s.append(events(0, 3));
    fs.fail({ ops: ['writeSync'], code: 'ENOSPC', path: /\.kaf$/ });
    expect(s.append(events(3, 6)).dropped).toEqual([]);
    expect(s.append(events(6, 9)).dropped).toEqual([]); // after held frames: held too (order)
    // Beyond the memory bound: dropped, reported as errors, counted.
    const over = s.append(events(9, 40));
    expect(over.dropped.map((d) => d.reason)).toEqual(['error']);
    expect(s.stats().droppedError).toBe(31);
    fs.heal();
    s.retryNow();
    s.close();
    expect(allPending(spool(dir)).map(([, id]) => id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('a reused append buffer: frames that go to disk use it; when the write fails, the frames held in memory keep their own bytes', () => {
    const dir = tempDir();
    const fs = faultyFs();
    const s = spool(dir, { fs, lanes: 1 });
    const reused = Buffer.allocUnsafeSlow(1 << 20);
    let supplied = 0;
    s.setAppendBuffer((bytes) => {
      supplied++;
      return reused.subarray(0, bytes);
    });
    const onDisk = s.append(events(0, 3)).frames;
    expect(supplied).toBe(1);
    expect(onDisk[0]?.body.buffer).toBe(reused.buffer); // valid until the next append
    fs.fail({ ops: ['writeSync'], code: 'ENOSPC', path: /\.kaf$/ });
    const held = s.append(events(3, 6)).frames; // written into the reused buffer, then refused
    expect(held[0]?.body.buffer).not.toBe(reused.buffer);
    reused.fill(0x7a); // what later appends would do to the reused bytes
    fs.heal();
    s.retryNow();
    s.append(events(6, 8));
    s.close();
    expect(allPending(spool(dir)).map(([, id]) => id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('EIO on a read ends the read early, counted; the records are read again later', () => {
    const dir = tempDir();
    const fs = faultyFs();
    const s = spool(dir, { fs, lanes: 1 });
    s.append(events(0, 3));
    s.append(events(3, 6));
    fs.fail({ ops: ['readSync'], code: 'EIO', path: /\.kaf$/ });
    const errorsBefore = s.ioErrors;
    // Frames just appended are read from disk (the spool keeps no frame bytes).
    expect(s.readLane(0, 0, 1 << 20)).toEqual([]);
    expect(s.ioErrors).toBe(errorsBefore + 1);
    expect(s.stats().records).toBe(6);
    fs.heal();
    expect(allPending(s).map(([, id]) => id)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

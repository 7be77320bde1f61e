// SPDX-License-Identifier: Apache-2.0
/*
 * Deferred writes (spool.ts, "Deferred writes"): an append with `deferWrite` returns before its
 * bytes are on disk, its write under way on the thread pool. Here the thread pool's writes are
 * held at a gate (a SpoolFs whose `write` waits for the test), so that every state between
 * "appended" and "landed" can be looked at: the frames read from memory, settleWrites() writing
 * them synchronously, a descriptor kept open under a write, a failed write retried in place
 * with later appends behind it, a directory removed under writes under way, and nothing deferred
 * under a reservation.
 */
import { cpSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';
import type { SpoolFs } from '../../src/spool/fs.ts';
import { MAX_DEFERRED_WRITES } from '../../src/spool/spool.ts';
import { type FaultyFs, faultyFs } from './faulty-fs.ts';
import { allPending, events, segmentFiles, spoolOpener } from './helpers.ts';

const spool = spoolOpener();
const DEFER = { deferWrite: true } as const;

interface GatedFs extends SpoolFs {
  /** Writes held at the gate. */
  readonly held: number;
  /** Lets the held writes through (to the base filesystem, which may fail them). */
  release(): Promise<void>;
  /** Descriptors closed so far. */
  readonly closed: number[];
  /** The descriptor last opened on each path. */
  readonly opened: Map<string, number>;
}

function gated(base: FaultyFs): GatedFs {
  const queue: Array<(landed: () => void) => void> = [];
  const closed: number[] = [];
  const opened = new Map<string, number>();
  return {
    ...base,
    opened,
    openSync(path, flags, mode) {
      const fd = base.openSync(path, flags, mode);
      opened.set(path, fd);
      return fd;
    },
    get held() {
      return queue.length;
    },
    closed,
    write(fd, buf, offset, length, position, cb) {
      queue.push((landed) =>
        base.write(fd, buf, offset, length, position, (err, n) => {
          cb(err, n);
          landed();
        }),
      );
    },
    closeSync(fd) {
      closed.push(fd);
      base.closeSync(fd);
    },
    async release() {
      await Promise.all(queue.splice(0).map((go) => new Promise<void>((resolve) => go(resolve))));
    },
  };
}

/** Polls the spool's background copy until `condition` holds; fails after 10 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ids = (s: Parameters<typeof allPending>[0]) => allPending(s).map(([, id]) => id);
const fileBytes = (dir: string) => segmentFiles(dir).reduce((n, f) => n + statSync(f).size, 0);

describe('deferred writes', () => {
  it('appended at once, read from memory until the write lands; settleWrites() writes them now', () => {
    const dir = tempDir();
    const fs = gated(faultyFs());
    const s = spool(dir, { fs, lanes: 1 });
    const out = s.append(events(0, 10), undefined, DEFER);
    expect(out.dropped).toEqual([]);
    expect(out.frames.reduce((n, f) => n + f.count, 0)).toBe(10);
    expect(fs.held).toBe(1);
    expect(fileBytes(dir)).toBe(0); // not written yet
    expect(ids(s)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // read from memory
    s.settleWrites();
    expect(fileBytes(dir)).toBeGreaterThan(0);
    s.close();
    expect(ids(spool(dir))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a write that lands after settleWrites() wrote the same bytes changes nothing', async () => {
    const dir = tempDir();
    const fs = gated(faultyFs());
    const s = spool(dir, { fs, lanes: 1 });
    s.append(events(0, 5), undefined, DEFER);
    s.append(events(5, 9), undefined, DEFER);
    s.settleWrites();
    const size = fileBytes(dir);
    await fs.release(); // the thread pool's copies land now
    expect(fileBytes(dir)).toBe(size);
    s.append(events(9, 12));
    s.close();
    const after = spool(dir);
    expect(ids(after)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(after.stats().corrupted).toBe(0);
  });

  it('close() and a recovery after it see every deferred append', () => {
    const dir = tempDir();
    const fs = gated(faultyFs());
    const s = spool(dir, { fs, lanes: 2 });
    for (let i = 0; i < 4; i++) s.append(events(i * 10, i * 10 + 10, 2), undefined, DEFER);
    expect(fs.held).toBe(4);
    s.close();
    expect(ids(spool(dir)).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it(`at most ${MAX_DEFERRED_WRITES} writes under way: an append beyond writes them and itself at once`, () => {
    const dir = tempDir();
    const fs = gated(faultyFs());
    const s = spool(dir, { fs, lanes: 1 });
    for (let i = 0; i < MAX_DEFERRED_WRITES; i++)
      s.append(events(i * 2, i * 2 + 2), undefined, DEFER);
    expect(fs.held).toBe(MAX_DEFERRED_WRITES);
    expect(fileBytes(dir)).toBe(0);
    const n = MAX_DEFERRED_WRITES * 2;
    s.append(events(n, n + 2), undefined, DEFER);
    expect(fs.held).toBe(MAX_DEFERRED_WRITES); // not one more
    s.close(); // nothing left to settle: what a crash would find now is all there
    const after = spool(dir);
    expect(ids(after)).toEqual(Array.from({ length: n + 2 }, (_, i) => i));
    expect(after.stats().corrupted).toBe(0);
  });

  it('the bound reached while the disk refuses writes: the append beyond is held in memory behind them', async () => {
    const dir = tempDir();
    const base = faultyFs();
    const fs = gated(base);
    const s = spool(dir, { fs, lanes: 1 });
    for (let i = 0; i < MAX_DEFERRED_WRITES; i++)
      s.append(events(i * 2, i * 2 + 2), undefined, DEFER);
    base.fail({ ops: ['writeSync', 'write'], code: 'ENOSPC', path: /\.kaf$/ });
    const n = MAX_DEFERRED_WRITES * 2;
    expect(s.append(events(n, n + 2), undefined, DEFER).dropped).toEqual([]);
    expect(fs.held).toBe(MAX_DEFERRED_WRITES); // not one more under way
    expect(s.unwrittenRecords).toBe(n + 2); // the settle failed: all of them wait in memory
    await fs.release(); // the thread pool's copies fail too
    base.heal();
    s.retryNow();
    expect(s.holdsUnwritten).toBe(false);
    s.close();
    const after = spool(dir);
    expect(ids(after)).toEqual(Array.from({ length: n + 2 }, (_, i) => i));
    expect(after.stats().corrupted).toBe(0);
  });

  it('under a reservation the write is never deferred (the bridge answers after it)', () => {
    const dir = tempDir();
    const fs = gated(faultyFs());
    const s = spool(dir, { fs, lanes: 1 });
    const r = s.reserve(100_000);
    expect(r).toBeDefined();
    s.append(events(0, 5), r, DEFER);
    expect(fs.held).toBe(0);
    expect(fileBytes(dir)).toBeGreaterThan(0);
  });

  it("a segment's descriptor stays open until the write under way on it has landed", async () => {
    const dir = tempDir();
    const fs = gated(faultyFs());
    // Four 20 KB events fill a 64 KiB segment: the next append starts a new one.
    const s = spool(dir, { fs, lanes: 1, segmentBytes: 64 * 1024 });
    s.append(events(0, 4, 1, 20_000), undefined, DEFER);
    s.append(events(4, 8, 1, 20_000), undefined, DEFER);
    const [first] = segmentFiles(dir);
    expect(segmentFiles(dir)).toHaveLength(2);
    const fd = fs.opened.get(first as string) as number;
    // The first segment is acknowledged whole before its write landed: it is deleted, and its
    // descriptor is not closed under the write.
    s.ack([{ from: 1, to: 4 }]);
    expect(fs.closed).not.toContain(fd);
    await fs.release();
    expect(fs.closed).toContain(fd);
    expect(ids(s)).toEqual([4, 5, 6, 7]);
    s.close();
    const after = spool(dir);
    expect(ids(after)).toEqual([4, 5, 6, 7]);
    expect(after.stats().corrupted).toBe(0);
  });

  it('a failed deferred write keeps its frames, holds later appends behind it, and is written again in place', async () => {
    const dir = tempDir();
    const base = faultyFs();
    const fs = gated(base);
    const s = spool(dir, { fs, lanes: 1 });
    s.append(events(0, 3));
    s.append(events(3, 6), undefined, DEFER);
    base.fail({ ops: ['write'], code: 'ENOSPC', path: /\.kaf$/ });
    await fs.release();
    expect(base.failures.get('write')).toBe(1);
    expect(s.holdsUnwritten).toBe(true);
    expect(s.unwrittenRecords).toBe(3);
    expect(ids(s)).toEqual([0, 1, 2, 3, 4, 5]); // still readable
    // Later appends wait in memory behind it, deferred or not.
    s.append(events(6, 8), undefined, DEFER);
    s.append(events(8, 9));
    expect(fs.held).toBe(0);
    expect(s.unwrittenRecords).toBe(6);
    base.heal();
    s.retryNow();
    expect(s.holdsUnwritten).toBe(false);
    expect(s.unwrittenRecords).toBe(0);
    s.close();
    const after = spool(dir);
    expect(ids(after)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(after.stats().corrupted).toBe(0);
  });

  it('a failed deferred write whose records were all acknowledged meanwhile is not written again', async () => {
    const dir = tempDir();
    const base = faultyFs();
    const fs = gated(base);
    const s = spool(dir, { fs, lanes: 1 });
    s.append(events(0, 3), undefined, DEFER);
    base.fail({ ops: ['write', 'writeSync'], code: 'EIO', path: /\.kaf$/ });
    await fs.release();
    expect(s.holdsUnwritten).toBe(true);
    s.ack([{ from: 1, to: 3 }]);
    expect(s.unwrittenRecords).toBe(0);
    s.retryNow(); // the volume still fails: nothing is left to write
    expect(s.holdsUnwritten).toBe(false);
    expect(base.failures.get('writeSync') ?? 0).toBe(0);
  });

  it('closed while a deferred write keeps failing: its records are reported lost, never silently', async () => {
    const dir = tempDir();
    const base = faultyFs();
    const fs = gated(base);
    const s = spool(dir, { fs, lanes: 1 });
    s.append(events(0, 4), undefined, DEFER);
    base.fail({ ops: ['write', 'writeSync'], code: 'EIO', path: /\.kaf$/ });
    await fs.release();
    s.close();
    expect(s.unwrittenRecords).toBe(4);
  });

  it('the directory removed while writes are under way: they land before the copy back reads the files, and a crash after it loses none', async () => {
    const dir = join(tempDir(), 'spool');
    const fs = gated(faultyFs());
    const s = spool(dir, { fs, lanes: 1 });
    s.append(events(0, 5));
    s.append(events(5, 10), undefined, DEFER);
    s.append(events(10, 15), undefined, DEFER);
    expect(fs.held).toBe(2);
    rmSync(dir, { recursive: true, force: true }); // the operator's rm -rf
    expect(s.checkDirectory()).toMatch(/gone/);
    await until(() => !s.holdsUnwritten, 'the copy back');
    await fs.release(); // the thread pool's copies land late, in the removed files
    expect(ids(s)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    // What a crash now leaves: a fresh spool on a copy of the directory.
    const copy = join(tempDir(), 'after-crash');
    cpSync(dir, copy, { recursive: true });
    const after = spool(copy, { lanes: 1 });
    expect(ids(after)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(after.stats().corrupted).toBe(0);
  });
});

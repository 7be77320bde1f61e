// SPDX-License-Identifier: Apache-2.0
/*
 * The spool's fsync cadence (src/spool/sync.ts) over real files and the filesystem seam: an
 * interval of 0 syncs before written() returns; otherwise one background fdatasync per dirty
 * file after the interval; a failed sync leaves the file dirty and is reported; a descriptor is
 * closed only after its pending sync.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nodeFs, type SpoolFs } from '../../src/spool/fs.ts';
import { type SyncedFile, SyncScheduler } from '../../src/spool/sync.ts';
import { faultyFs } from './faulty-fs.ts';

// The interval's timer is faked (advanced by the test); fdatasync runs for real.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
  cleanupTempDirs();
});

/**
 * A SpoolFs that records its fsync calls, can hold background ones until released, and tells
 * when a background sync has called back (`synced(n)`: once n have).
 */
function recordingFs(base: SpoolFs = nodeFs) {
  const calls: string[] = [];
  const held: Array<() => void> = [];
  let hold = false;
  let done = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const fs: SpoolFs = {
    ...base,
    fdatasyncSync: (fd) => {
      calls.push(`sync ${fd}`);
      base.fdatasyncSync(fd);
    },
    fdatasync: (fd, cb) => {
      calls.push(`async ${fd}`);
      const run = () =>
        base.fdatasync(fd, (err) => {
          cb(err);
          done++;
          for (const w of waiters.filter((x) => x.n <= done)) w.resolve();
        });
      if (hold) held.push(run);
      else run();
    },
    closeSync: (fd) => {
      calls.push(`close ${fd}`);
      base.closeSync(fd);
    },
  };
  return {
    fs,
    calls,
    synced: (n: number) =>
      new Promise<void>((resolve) => {
        if (done >= n) resolve();
        else waiters.push({ n, resolve });
      }),
    holdBackground(on: boolean) {
      hold = on;
      if (!on) for (const run of held.splice(0)) run();
    },
  };
}

function file(dir: string, name: string): SyncedFile {
  const path = join(dir, name);
  const fd = openSync(path, 'w+');
  writeSync(fd, 'x');
  return { fd, dirty: true, path };
}

describe('SyncScheduler', () => {
  it('interval 0: every write is fsynced before written() returns', () => {
    const dir = tempDir();
    const f = file(dir, 'a');
    const r = recordingFs();
    const errors: string[] = [];
    const s = new SyncScheduler({
      fs: r.fs,
      intervalMillis: 0,
      files: () => [f],
      directory: () => dir,
      onError: (what) => errors.push(what),
    });
    s.written();
    expect(r.calls).toEqual([`sync ${f.fd}`]);
    expect(f.dirty).toBe(false);
    expect(errors).toEqual([]);
    closeSync(f.fd as number);
  });

  it('an interval: one background fdatasync per dirty file after it, none for clean ones', async () => {
    const dir = tempDir();
    const a = file(dir, 'a');
    const b = { ...file(dir, 'b'), dirty: false };
    const r = recordingFs();
    const s = new SyncScheduler({
      fs: r.fs,
      intervalMillis: 5,
      files: () => [a, b],
      directory: () => dir,
      onError: () => undefined,
    });
    s.written();
    s.written(); // one timer, not two
    vi.advanceTimersByTime(4);
    expect(r.calls).toEqual([]);
    vi.advanceTimersByTime(1);
    await r.synced(1);
    expect(r.calls).toEqual([`async ${a.fd}`]);
    expect(a.dirty).toBe(false);
    closeSync(a.fd as number);
    closeSync(b.fd as number);
  });

  it('a failed background sync leaves the file dirty and is reported; syncNow() retries it', async () => {
    const dir = tempDir();
    const fs = faultyFs();
    const a = file(dir, 'a');
    const errors: string[] = [];
    let reported!: () => void;
    const failed = new Promise<void>((resolve) => {
      reported = resolve;
    });
    const s = new SyncScheduler({
      fs,
      intervalMillis: 5,
      files: () => [a],
      directory: () => dir,
      onError: (what) => {
        errors.push(what);
        reported();
      },
    });
    fs.fail({ ops: ['fdatasync', 'fdatasyncSync'], code: 'EIO' });
    s.written();
    vi.advanceTimersByTime(5);
    await failed;
    expect(a.dirty).toBe(true);
    expect(errors).toEqual([`fsync of ${a.path} failed`]);
    s.syncNow();
    expect(errors).toHaveLength(2); // still failing: reported again, still dirty
    expect(a.dirty).toBe(true);
    fs.heal();
    s.syncNow();
    expect(a.dirty).toBe(false);
    closeSync(a.fd as number);
  });

  it('closeFd() waits for the pending sync of that descriptor', async () => {
    const dir = tempDir();
    const a = file(dir, 'a');
    const r = recordingFs();
    const s = new SyncScheduler({
      fs: r.fs,
      intervalMillis: 1,
      files: () => [a],
      directory: () => dir,
      onError: () => undefined,
    });
    r.holdBackground(true);
    s.written();
    vi.advanceTimersByTime(1);
    expect(r.calls).toEqual([`async ${a.fd}`]);
    s.closeFd(a.fd as number);
    expect(r.calls).not.toContain(`close ${a.fd}`); // its sync is still running
    r.holdBackground(false);
    await r.synced(1);
    expect(r.calls).toEqual([`async ${a.fd}`, `close ${a.fd}`]);
  });

  it('the directory is synced when its entries changed, and only then', () => {
    const dir = tempDir();
    const r = recordingFs();
    const opened: string[] = [];
    const fs: SpoolFs = {
      ...r.fs,
      fsyncSync: (fd) => {
        opened.push('dir');
        nodeFs.fsyncSync(fd);
      },
    };
    const s = new SyncScheduler({
      fs,
      intervalMillis: 0,
      files: () => [],
      directory: () => dir,
      onError: () => undefined,
    });
    s.written();
    expect(opened).toEqual([]);
    s.directoryDirty = true;
    s.written();
    expect(opened).toEqual(['dir']);
    expect(s.directoryDirty).toBe(false);
  });
});

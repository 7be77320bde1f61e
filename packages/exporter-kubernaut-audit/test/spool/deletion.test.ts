// SPDX-License-Identifier: Apache-2.0
/*
 * Deleting acknowledged segments: the files are deleted on the thread pool (freeing a 64 MiB
 * file's blocks takes the kernel milliseconds, more on a network volume, which the event loop
 * must not wait for), and until a file is gone the sent/ack log keeps acknowledging its records:
 * a crash in between leaves an acknowledged file that the next start deletes, never a record
 * delivered again. A deletion that fails is reported and tried again.
 */
import { cpSync, existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tempDir } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';
import { nodeFs, type SpoolFs } from '../../src/spool/fs.ts';
import { LOG_FILE } from '../../src/spool/spool.ts';
import { faultyFs } from './faulty-fs.ts';
import { allPending, events, segmentFiles, spoolOpener } from './helpers.ts';

const spool = spoolOpener();

/** The real filesystem, with every segment deletion recorded and, while `hold` is set, held. */
function watchedFs() {
  const sync: string[] = [];
  const async: string[] = [];
  const held: Array<() => void> = [];
  const done: Array<Promise<void>> = [];
  const w = {
    hold: false,
    sync,
    async,
    /** Runs the held deletions. */
    release(): void {
      for (const run of held.splice(0)) run();
    },
    /** Resolves when every deletion issued so far has called back. */
    settled: () => Promise.all(done),
    fs: {
      ...nodeFs,
      unlinkSync(path: string) {
        if (path.endsWith('.kaf')) sync.push(path);
        nodeFs.unlinkSync(path);
      },
      unlink(path: string, cb: (err: NodeJS.ErrnoException | null) => void) {
        if (path.endsWith('.kaf')) async.push(path);
        done.push(
          new Promise<void>((resolve) => {
            const run = () =>
              nodeFs.unlink(path, (err) => {
                cb(err);
                resolve();
              });
            if (w.hold) held.push(run);
            else run();
          }),
        );
      },
    } satisfies SpoolFs,
  };
  return w;
}

/**
 * A spool whose first segment is fully acknowledged and replaced (the drained active segment
 * holds 4 MiB), its deletion held by the filesystem.
 */
function heldDeletion() {
  const dir = tempDir();
  const w = watchedFs();
  const s = spool(dir, { fs: w.fs, lanes: 1 });
  for (let i = 0; i < 2_200; i += 200) s.append(events(i, i + 200, 1, 2000));
  const [first] = segmentFiles(dir);
  w.hold = true;
  s.ack([{ from: 1, to: 2_200 }]);
  expect(w.async).toEqual([first]);
  return { dir, w, s, first: first as string };
}

describe('deleting acknowledged segments', () => {
  it('deletes them on the thread pool, never with a synchronous unlink on the event loop', async () => {
    const dir = tempDir();
    const w = watchedFs();
    const s = spool(dir, { fs: w.fs, lanes: 1, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 400; i += 50) s.append(events(i, i + 50, 1, 1000));
    const segments = segmentFiles(dir);
    expect(segments.length).toBeGreaterThan(3);
    s.ack([{ from: 1, to: 400 }]);
    expect(w.sync).toEqual([]);
    // Every segment but the active (last) one.
    expect(w.async.sort()).toEqual(segments.slice(0, -1));
    await w.settled();
    expect(segmentFiles(dir)).toEqual(segments.slice(-1));
    expect(allPending(s)).toEqual([]);
  });

  it('until a file is gone, the log still acknowledges its records: a crash in between sends nothing again', async () => {
    const { dir, w, first } = heldDeletion();
    // Held: the file is still there, and so is the log that acknowledges it (not truncated).
    expect(existsSync(first)).toBe(true);
    expect(statSync(join(dir, LOG_FILE)).size).toBeGreaterThan(0);
    // A crash now: the next process finds the acknowledged file and delivers nothing again.
    const crashed = join(tempDir(), 'spool');
    cpSync(dir, crashed, { recursive: true });
    const next = spool(crashed, { lanes: 1 });
    expect(allPending(next)).toEqual([]);
    next.close();
    expect(existsSync(join(crashed, basename(first)))).toBe(false); // deleted there
    // The deletion completes.
    w.release();
    await w.settled();
    expect(existsSync(first)).toBe(false);
  });

  it('a log rewritten while a deletion is under way still acknowledges that file', async () => {
    const { dir, w, s, first } = heldDeletion();
    // Acknowledgements one by one until the log is rewritten (over 1 MiB): 28 bytes each.
    const log = join(dir, LOG_FILE);
    let seq = 2_200;
    let before = statSync(log).size;
    for (let k = 0; k < 100; k++) {
      s.append(events(seq, seq + 500, 1, 40));
      for (let i = 1; i <= 500; i++) s.ack([{ from: seq + i, to: seq + i }]);
      seq += 500;
      const size = statSync(log).size;
      if (size < before) break; // rewritten
      before = size;
    }
    expect(statSync(log).size).toBeLessThan(before);
    const crashed = join(tempDir(), 'spool');
    cpSync(dir, crashed, { recursive: true });
    expect(existsSync(join(crashed, basename(first)))).toBe(true);
    expect(allPending(spool(crashed, { lanes: 1 }))).toEqual([]);
    w.release();
    await w.settled();
  });

  it('close() finishes the deletions still under way', () => {
    const dir = tempDir();
    const w = watchedFs();
    const s = spool(dir, { fs: w.fs, lanes: 1, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 200; i += 50) s.append(events(i, i + 50, 1, 1000));
    const segments = segmentFiles(dir);
    w.hold = true;
    s.ack([{ from: 1, to: 200 }]);
    expect(w.async.length).toBe(segments.length - 1);
    s.close();
    expect(segmentFiles(dir)).toEqual(segments.slice(-1));
    w.release(); // the late callbacks find nothing to do
  });

  it('a deletion that fails is reported and tried again at the next acknowledgement', async () => {
    const dir = tempDir();
    const fs = faultyFs();
    const s = spool(dir, { fs, lanes: 1, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 200; i += 50) s.append(events(i, i + 50, 1, 1000));
    const segments = segmentFiles(dir);
    fs.fail({ ops: ['unlink'], code: 'EIO', path: /\.kaf$/ });
    s.ack([{ from: 1, to: 100 }]);
    await new Promise((resolve) => setImmediate(resolve)); // the injected failure calls back
    expect(fs.failures.get('unlink')).toBeGreaterThan(0);
    expect(s.ioErrors).toBeGreaterThan(0);
    const stuck = segmentFiles(dir).filter((f) => segments.includes(f));
    expect(stuck.length).toBeGreaterThan(1);
    fs.heal();
    s.ack([{ from: 101, to: 200 }]);
    s.close(); // finishes what the retry started
    expect(segmentFiles(dir)).toEqual(segments.slice(-1));
    expect(allPending(spool(dir, { lanes: 1 }))).toEqual([]);
  });
});

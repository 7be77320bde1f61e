// SPDX-License-Identifier: Apache-2.0
/*
 * The spool directory removed or replaced while a spool uses it (a tmp cleaner, an operator's
 * `rm -rf`, a remount), on real files. What a crash would leave is read by opening a fresh spool
 * on a copy of the directory taken at that moment (a SIGKILL leaves exactly what is in the
 * files: every write is in the OS once it returned); one test runs a real child that exits
 * without closing its spool. Detection is driven by checkDirectory() (the periodic check's
 * hook), the background copy by polling its condition with a deadline.
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, tempDir } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';
import { type Spool, SpoolOpenError } from '../../src/spool/index.ts';
import { faultyFs, WRITES } from './faulty-fs.ts';
import { allPending, events, segmentFiles, spoolOpener } from './helpers.ts';

const open = spoolOpener();
const HOLD_LOCK_CHILD = fileURLToPath(new URL('./fixtures/hold-lock-child.ts', import.meta.url));
const REMOVE_CHILD = fileURLToPath(new URL('./fixtures/remove-dir-child.ts', import.meta.url));
const EVENT_BYTES = 1000;
const SEGMENT_BYTES = 64 * 1024; // the smallest: a few appends fill one

/** Polls `condition` until it holds; fails after `millis`. */
async function until(condition: () => boolean, what: string, millis = 10_000): Promise<void> {
  const deadline = Date.now() + millis;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Appends ids [from, to) in appends of 10 (lane 0). */
function appendIds(s: Spool, from: number, to: number): void {
  for (let id = from; id < to; id += 10) {
    const out = s.append(events(id, Math.min(to, id + 10), 1, EVENT_BYTES));
    expect(out.dropped).toEqual([]);
  }
}

/** Acknowledges ids [from, to) of a spool whose seq is id + 1 (one lane, fresh). */
function ackIds(s: Spool, from: number, to: number): void {
  s.ack([{ from: from + 1, to }]);
}

/** What a crash now would leave: a fresh spool's pending ids on a copy of the directory. */
function afterCrash(
  dir: string,
  tamper?: (copy: string) => void,
): { ids: number[]; producer: string } {
  const copy = join(tempDir(), 'after-crash');
  cpSync(dir, copy, { recursive: true });
  tamper?.(copy);
  const s = open(copy, { lanes: 1 });
  expect(s.kind).toBe('file');
  const ids = allPending(s).map(([, id]) => id);
  const producer = s.meta.producerId;
  s.close();
  return { ids, producer };
}

/** ids [from, to) without the `gone` ones. */
function range(from: number, to: number, gone: (id: number) => boolean = () => false): number[] {
  const out: number[] = [];
  for (let id = from; id < to; id++) if (!gone(id)) out.push(id);
  return out;
}

function hasSegments(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((n) => n.endsWith('.kaf'));
}

/** Runs the lock child on `dir`: resolves with its first line (OPEN or LOCKED) and a stopper. */
function holdLock(dir: string): Promise<{ line: string; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', HOLD_LOCK_CHILD, dir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let buf = '';
    child.on('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      resolve({
        line: buf.slice(0, nl),
        stop: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
  });
}

describe('a spool whose directory is removed while in use', () => {
  it('rm -rf: noticed, re-created, and a crash afterwards loses no unacknowledged record and brings back no acknowledged one', async () => {
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { lanes: 1, segmentBytes: SEGMENT_BYTES });
    appendIds(s, 0, 200); // several segments
    expect(segmentFiles(dir).length).toBeGreaterThan(2);
    const producer = s.meta.producerId;
    ackIds(s, 0, 50); // a whole segment and a part of the next
    ackIds(s, 120, 130);
    s.markSent([{ from: 51, to: 60 }]);

    rmSync(dir, { recursive: true, force: true }); // the operator's rm -rf
    appendIds(s, 200, 230); // written through the open descriptors, before the check

    expect(s.checkDirectory()).toMatch(/the directory is gone/);
    // Re-created at once, with its meta and lock; the segments follow in the background.
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).producerId).toBe(producer);
    appendIds(s, 230, 260); // appends during the copy
    ackIds(s, 210, 215); // and acknowledgements
    await until(() => !s.holdsUnwritten, 'the copy back');

    const acked = (id: number) => id < 50 || (id >= 120 && id < 130) || (id >= 210 && id < 215);
    const expected = range(0, 260, acked);
    // The running spool still delivers all of them...
    expect(allPending(s).map(([, id]) => id)).toEqual(expected);
    // ...and so does the next process after a crash: each once, in order, none acknowledged.
    const crash = afterCrash(dir);
    expect(crash.ids).toEqual(expected);
    expect(crash.producer).toBe(producer);
    // The directory is locked again: a second spool of this process is refused.
    const second = open(dir);
    expect(second.kind).toBe('memory');
    expect((second.lastError as SpoolOpenError).code).toBe('locked');
  });

  it('closed right after the loss: close() re-creates it and finishes the copy before it returns', () => {
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { lanes: 1, segmentBytes: SEGMENT_BYTES });
    appendIds(s, 0, 120);
    ackIds(s, 0, 15);
    rmSync(dir, { recursive: true, force: true });
    appendIds(s, 120, 130);
    s.close(); // no check ran yet: close() notices it too
    expect(afterCrash(dir).ids).toEqual(range(15, 130));
  });

  it('each occurrence is reported once and repaired, also a second removal after the first repair', async () => {
    const dir = join(tempDir(), 'spool');
    const found: string[] = [];
    const s = open(dir, { lanes: 1, onDirectoryLost: (what) => found.push(what) });
    appendIds(s, 0, 20);
    expect(s.checkDirectory()).toBeUndefined(); // all is well: nothing reported
    rmSync(dir, { recursive: true, force: true });
    expect(s.checkDirectory()).toMatch(/gone/);
    await until(() => !s.holdsUnwritten, 'the first copy back');
    expect(s.checkDirectory()).toBeUndefined();
    appendIds(s, 20, 40);
    rmSync(dir, { recursive: true, force: true });
    appendIds(s, 40, 50);
    expect(s.checkDirectory()).toMatch(/gone/);
    await until(() => !s.holdsUnwritten, 'the second copy back');
    expect(found).toHaveLength(2);
    expect(afterCrash(dir).ids).toEqual(range(0, 50));
  });

  it('a crash in the middle of the copy back loses nothing already in the new directory and duplicates nothing', async () => {
    const fs = faultyFs();
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { fs, lanes: 1, segmentBytes: SEGMENT_BYTES });
    appendIds(s, 0, 200);
    const names = segmentFiles(dir).map((p) => p.slice(dir.length + 1));
    expect(names.length).toBeGreaterThan(2);
    ackIds(s, 0, 5);
    rmSync(dir, { recursive: true, force: true });
    // The second segment cannot be renamed into place (an I/O error): the copy stops there.
    fs.fail({ ops: ['renameSync'], code: 'EIO', path: new RegExp(`${names[1]}$`) });

    expect(s.checkDirectory()).toMatch(/gone/);
    // A crash before anything was copied: the orphaned records are not there yet, no
    // acknowledged one is, and nothing is there twice.
    expect(afterCrash(dir).ids).toEqual([]);
    appendIds(s, 200, 210); // into a new segment of the re-created directory
    await until(() => (fs.failures.get('renameSync') ?? 0) > 0, 'the failed rename');
    await until(() => !existsSync(join(dir, `${names[1]}.tmp`)), 'the torn copy removed');
    const first = afterCrash(dir, (copy) => {
      // A torn copy (a temp file cut short) left by a crash is ignored.
      writeFileSync(join(copy, `${names[2]}.tmp`), Buffer.from('KAF2 torn'));
    });
    expect(first.ids.length).toBeGreaterThan(0);
    expect(new Set(first.ids).size).toBe(first.ids.length);
    expect(first.ids.every((id) => id >= 5)).toBe(true);
    expect(first.ids.filter((id) => id >= 200)).toEqual(range(200, 210));
    expect(s.holdsUnwritten).toBe(true); // still copying: not durable yet

    fs.heal();
    s.retryNow();
    await until(() => !s.holdsUnwritten, 'the copy back');
    expect(afterCrash(dir).ids).toEqual(range(5, 210));
  });

  it('replaced by a plain file: a clear error, records held in memory, never a throw; the retry re-creates it', async () => {
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { lanes: 1 });
    appendIds(s, 0, 50);
    ackIds(s, 0, 10);
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'not a spool');

    expect(s.checkDirectory()).toMatch(/a file, not a directory/);
    expect(s.lastError).toBeInstanceOf(SpoolOpenError);
    expect((s.lastError as SpoolOpenError).code).toBe('unwritable');
    expect(s.lastError?.message).toContain(dir);
    expect(s.holdsUnwritten).toBe(true);
    const later = s.append(events(50, 60, 1, EVENT_BYTES));
    expect(later.dropped).toEqual([]); // held in memory
    expect(later.frames.length).toBe(1);
    expect(readFileSync(dir, 'utf8')).toBe('not a spool'); // never written into
    expect(allPending(s).map(([, id]) => id)).toEqual(range(10, 60)); // still deliverable

    rmSync(dir);
    s.retryNow();
    await until(() => !s.holdsUnwritten, 'the copy back');
    expect(afterCrash(dir).ids).toEqual(range(10, 60));
  });

  it('re-created read-only: held in memory and retried until it can be written', async () => {
    const fs = faultyFs();
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { fs, lanes: 1 });
    appendIds(s, 0, 40);
    rmSync(dir, { recursive: true, force: true });
    fs.fail({ ops: WRITES, code: 'EROFS' }); // remounted read-only

    expect(s.checkDirectory()).toMatch(/gone/);
    expect((s.lastError as SpoolOpenError).code).toBe('unwritable');
    expect(s.append(events(40, 50, 1, EVENT_BYTES)).dropped).toEqual([]);
    s.retryNow(); // still read-only: stays in memory, no throw
    expect(s.holdsUnwritten).toBe(true);
    expect(hasSegments(dir)).toBe(false);

    fs.heal();
    s.retryNow();
    await until(() => !s.holdsUnwritten, 'the copy back');
    expect(afterCrash(dir).ids).toEqual(range(0, 50));
  });

  it('taken by another process meanwhile: nothing written into its spool; re-homed once it is gone', async () => {
    const dir = join(tempDir(), 'spool');
    // No periodic check: it must not notice the loss before the other process took the path.
    const s = open(dir, { lanes: 1, checkIntervalMillis: 0 });
    const producer = s.meta.producerId;
    appendIds(s, 0, 40);
    ackIds(s, 0, 10);
    rmSync(dir, { recursive: true, force: true });
    const other = await holdLock(dir); // a new process takes the path before the check
    try {
      expect(other.line).toMatch(/^OPEN /);
      expect(s.checkDirectory()).toMatch(/another directory is in its place/);
      expect((s.lastError as SpoolOpenError).code).toBe('locked');
      expect(s.lastError?.message).toMatch(/another live process/);
      expect(s.append(events(40, 50, 1, EVENT_BYTES)).dropped).toEqual([]);
      s.retryNow();
      // The other process's spool is left alone; this one still delivers everything.
      expect(hasSegments(dir)).toBe(false);
      expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).producerId).not.toBe(
        producer,
      );
      expect(allPending(s).map(([, id]) => id)).toEqual(range(10, 50));
      expect(s.holdsUnwritten).toBe(true);
    } finally {
      await other.stop();
    }
    s.retryNow(); // its spool held no record: this one moves in
    await until(() => !s.holdsUnwritten, 'the copy back');
    const crash = afterCrash(dir);
    expect(crash.ids).toEqual(range(10, 50));
    expect(crash.producer).toBe(producer);
  }, 30_000);

  it('taken by another spool of this process meanwhile: refused by the lock, re-homed once it is closed', async () => {
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { lanes: 1 });
    appendIds(s, 0, 30);
    rmSync(dir, { recursive: true, force: true });
    loseWithAFileInTheWay(dir, s);
    const second = open(dir, { lanes: 1 });
    expect(second.kind).toBe('file'); // the path is free: the first spool lost it
    s.retryNow();
    expect((s.lastError as SpoolOpenError).code).toBe('locked');
    expect(hasSegments(dir)).toBe(false); // nothing of the first spool written into it
    second.close();
    s.retryNow();
    await until(() => !s.holdsUnwritten, 'the copy back');
    expect(afterCrash(dir).ids).toEqual(range(0, 30));
  });

  it('its lock file and meta.json removed by a tmp cleaner: the lock is taken again, another process is refused', async () => {
    const dir = join(tempDir(), 'spool');
    const s = open(dir, { lanes: 1 });
    const producer = s.meta.producerId;
    appendIds(s, 0, 30);
    for (const n of ['lock.db', 'lock.owner', 'meta.json']) unlinkSync(join(dir, n));

    expect(s.checkDirectory()).toMatch(/lock file lock\.db was removed/);
    expect(s.holdsUnwritten).toBe(false); // the segments are still there: nothing to copy
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).producerId).toBe(producer);
    const other = await holdLock(dir);
    await other.stop();
    expect(other.line).toMatch(/^LOCKED /);
    appendIds(s, 30, 40);
    expect(afterCrash(dir).ids).toEqual(range(0, 40));
  }, 30_000);

  it('without any call: the periodic check notices it, and a process that then exits without closing leaves every record', async () => {
    const dir = join(tempDir(), 'spool');
    const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', REMOVE_CHILD, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    // It exits by itself (no timer of the spool keeps it alive) after the check re-created the
    // directory and copied its records back.
    expect(out).toContain('RE-CREATED');
    expect(code).toBe(0);
    expect(afterCrash(dir).ids).toEqual(range(0, 60));
  }, 30_000);
});

/** The loss noticed while a file is in the way (so the spool is lost), then the path cleared. */
function loseWithAFileInTheWay(dir: string, s: Spool): void {
  writeFileSync(dir, 'x');
  expect(s.checkDirectory()).toMatch(/file/);
  rmSync(dir);
}

// SPDX-License-Identifier: Apache-2.0
/* FileSpool across restarts: recovery, persisted acks, segment deletion, damaged data. */
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileSpool, type SpoolOptions } from '../../src/spool/index.ts';
import { payload, payloadIndex, segmentFiles } from './helpers.ts';

const opened: FileSpool[] = [];
function open(options: SpoolOptions): FileSpool {
  const s = FileSpool.open(options);
  opened.push(s);
  return s;
}
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  cleanupTempDirs();
});

const seqsOf = (s: FileSpool) => s.readUnacked(1e9).map((e) => e.seq);
const indexesOf = (s: FileSpool) => s.readUnacked(1e9).map((e) => payloadIndex(e.payload));
/** Appends payload(from) .. payload(to - 1) in calls of `batch` (one call's frames share a segment). */
function appendRange(s: FileSpool, from: number, to: number, batch = 50): void {
  for (let i = from; i < to; i += batch) {
    const r = s.append(Array.from({ length: Math.min(batch, to - i) }, (_, k) => payload(i + k)));
    expect(r.dropped).toBe(0);
  }
}

/** Flips one byte of a file at `offset`. */
function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  const buf = readFileSync(path);
  b[0] = buf[offset]! ^ 0xff;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

describe('FileSpool restart recovery', () => {
  it('recovers records, payloads and seqs after close + reopen; seqs keep increasing', () => {
    const directory = tempDir();
    const a = open({ directory, segmentBytes: 1 });
    appendRange(a, 0, 1000);
    a.append([payload(1000)]);
    const producerId = a.producerId;
    a.close();
    expect(segmentFiles(directory).length).toBeGreaterThan(2); // rotated at 64 KiB

    const b = open({ directory, segmentBytes: 1 });
    expect(b.producerId).toBe(producerId);
    expect(seqsOf(b)).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
    expect(indexesOf(b)).toEqual(Array.from({ length: 1001 }, (_, i) => i));
    expect(b.readUnacked(1)[0]!.payload).toBe(payload(0));
    expect(b.stats()).toMatchObject({ records: 1001, corruptedSkipped: 0 });
    expect(b.append([payload(2000)]).firstSeq).toBe(1002);
  });

  it('persists acks: a restart re-sends only what was not acknowledged; acked segments are deleted', () => {
    const directory = tempDir();
    const a = open({ directory, segmentBytes: 1 });
    appendRange(a, 0, 2000);
    const before = segmentFiles(directory);
    // Ack everything in the first half (whole segments) plus scattered ones, out of order.
    const acked = new Set<number>();
    for (let s = 1000; s >= 1; s--) acked.add(s);
    for (let s = 1001; s <= 2000; s += 7) acked.add(s);
    a.ack([...acked].slice(0, 500));
    a.ack([...acked].slice(500));
    const after = segmentFiles(directory);
    expect(after.length).toBeLessThan(before.length);
    expect(after[0]).not.toBe(before[0]);
    a.close();

    const b = open({ directory, segmentBytes: 1 });
    const expected = Array.from({ length: 2000 }, (_, i) => i + 1).filter((s) => !acked.has(s));
    expect(seqsOf(b)).toEqual(expected);
    expect(b.stats().records).toBe(expected.length);
    expect(segmentFiles(directory)).toEqual(after);

    b.ack(expected);
    expect(b.stats()).toMatchObject({ records: 0, bytes: 0, segments: 1, diskBytes: 0 });
    expect(segmentFiles(directory)).toHaveLength(1);
    expect(statSync(join(directory, 'acks.log')).size).toBe(0);
    b.close();

    // Fully drained: nothing comes back, and seqs still do not restart.
    const c = open({ directory });
    expect(seqsOf(c)).toEqual([]);
    expect(c.append([payload(1)]).firstSeq).toBe(2001);
  });

  it('keeps acks across several restarts and compacts the ack log on open', () => {
    const directory = tempDir();
    let s = open({ directory });
    s.append(Array.from({ length: 300 }, (_, i) => payload(i)));
    for (let round = 0; round < 3; round++) {
      const live = seqsOf(s);
      s.ack(live.filter((_, k) => k % 3 === round % 3));
      s.close();
      s = open({ directory });
    }
    const live = seqsOf(s);
    expect(live.length).toBeGreaterThan(0);
    expect(live.length).toBeLessThan(300);
    // Acks are stored as ranges: the compacted log is far smaller than one entry per ack.
    expect(statSync(join(directory, 'acks.log')).size).toBeLessThan((300 - live.length) * 16 + 64);
    s.ack(live);
    expect(s.stats().records).toBe(0);
  });

  it('with fsyncIntervalMillis 0 (fsync on every append and ack) appends and acks persist', () => {
    const directory = tempDir();
    const s = open({ directory, fsyncIntervalMillis: 0, durability: 'sync' });
    s.append([payload(1)]);
    s.ack([1]);
    s.append([payload(2)]);
    expect(s.stats()).toMatchObject({ records: 1, durability: 'sync' });
    s.close();
    expect(seqsOf(open({ directory }))).toEqual([2]);
  });
});

describe('FileSpool fsync cadence', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the timer-driven background fsync (also across rotation and a close while it runs) loses nothing', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const directory = tempDir();
    const a = FileSpool.open({ directory, segmentBytes: 1, fsyncIntervalMillis: 500 });
    appendRange(a, 0, 600); // several segments, all dirty
    vi.advanceTimersByTime(500); // background fdatasync of every dirty segment starts
    a.ack([1, 2, 3]);
    appendRange(a, 600, 700);
    a.close(); // fds with an fsync in flight are closed once it completes
    vi.useRealTimers();
    await new Promise((r) => setImmediate(r));
    expect(a.ioErrorCount).toBe(0);
    const b = open({ directory });
    expect(indexesOf(b)).toEqual(Array.from({ length: 697 }, (_, i) => i + 3));
    expect(b.stats().corruptedSkipped).toBe(0);
  });
});

describe('FileSpool damaged data', () => {
  it('torn tail (truncated mid-frame): earlier records recovered, tail skipped, counted, cut off', () => {
    const directory = tempDir();
    const a = open({ directory });
    a.append(Array.from({ length: 10 }, (_, i) => payload(i)));
    a.close();
    const [seg] = segmentFiles(directory);
    const full = statSync(seg!).size;
    truncateSync(seg!, full - 50); // the last frame loses its end

    const b = open({ directory });
    expect(indexesOf(b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(b.stats()).toMatchObject({ records: 9, corruptedSkipped: 1 });
    expect(statSync(seg!).size).toBe((full / 10) * 9); // truncated to the last good frame
    // New appends go after the last good frame and survive the next restart.
    expect(b.append([payload(100)]).firstSeq).toBe(10);
    b.close();
    const c = open({ directory });
    expect(indexesOf(c)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 100]);
    expect(c.stats().corruptedSkipped).toBe(0);
  });

  it('a frame cut right after its header, and a zero-filled tail, are skipped too', () => {
    const directory = tempDir();
    const a = open({ directory });
    a.append([payload(0), payload(1)]);
    a.close();
    const [seg] = segmentFiles(directory);
    const size = statSync(seg!).size;
    truncateSync(seg!, size / 2 + 20);
    appendFileSync(seg!, Buffer.alloc(4096));
    const b = open({ directory });
    expect(indexesOf(b)).toEqual([0]);
    expect(b.stats().corruptedSkipped).toBe(1);
    expect(b.stats().corruptedBytes).toBe(20 + 4096);
  });

  it('flipped bytes in the middle: that record is skipped and counted, the following ones recovered', () => {
    const directory = tempDir();
    const a = open({ directory });
    a.append(Array.from({ length: 20 }, (_, i) => payload(i, 100)));
    a.close();
    const [seg] = segmentFiles(directory);
    const frame = statSync(seg!).size / 20;
    flipByte(seg!, 5 * frame + 40); // payload byte of record 5
    flipByte(seg!, 12 * frame + 1); // magic of record 12
    flipByte(seg!, 13 * frame + 9); // length of record 13

    const b = open({ directory });
    const expected = Array.from({ length: 20 }, (_, i) => i).filter(
      (i) => ![5, 12, 13].includes(i),
    );
    expect(indexesOf(b)).toEqual(expected);
    expect(b.stats().corruptedSkipped).toBe(2); // record 5; records 12-13 form one region
    expect(b.stats().records).toBe(17);
    expect(b.append([payload(50)]).firstSeq).toBe(21);
  });

  it('garbage appended after the last frame, and garbage-only files, never stop start-up', () => {
    const directory = tempDir();
    const a = open({ directory, segmentBytes: 1 });
    appendRange(a, 0, 600);
    a.close();
    const segs = segmentFiles(directory);
    appendFileSync(segs[segs.length - 1]!, 'KAUR garbage that looks like a frame start KAURKAUR');
    writeFileSync(join(directory, '00000000000009999999.seg'), Buffer.from('KAUR\x00\x01\x02'));
    writeFileSync(join(directory, 'acks.log'), Buffer.from('not an ack log at all'));
    writeFileSync(join(directory, 'meta.json.tmp'), 'leftover');
    writeFileSync(join(directory, 'dead-letter.jsonl'), '{}\n');
    writeFileSync(join(directory, 'someone-elses.tmp'), 'x');

    const b = open({ directory, segmentBytes: 1 });
    expect(indexesOf(b)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect(b.stats().corruptedSkipped).toBe(3);
    expect(existsSync(join(directory, 'meta.json.tmp'))).toBe(false);
    expect(existsSync(join(directory, 'dead-letter.jsonl'))).toBe(true); // not ours: untouched
    expect(existsSync(join(directory, 'someone-elses.tmp'))).toBe(true);
    // Seqs never go backwards, even past a damaged segment's name.
    expect(b.append([payload(1)]).firstSeq).toBeGreaterThanOrEqual(9999999);
  });

  it('a record damaged after open is skipped and counted when read, never thrown', () => {
    const directory = tempDir();
    const s = open({ directory });
    s.append(Array.from({ length: 5 }, (_, i) => payload(i, 100)));
    const [seg] = segmentFiles(directory);
    const frame = statSync(seg!).size / 5;
    flipByte(seg!, 2 * frame + 50);
    expect(indexesOf(s)).toEqual([0, 1, 3, 4]);
    expect(s.stats()).toMatchObject({ records: 4, corruptedSkipped: 1 });
    expect(indexesOf(s)).toEqual([0, 1, 3, 4]);
  });

  it('a segment file removed behind its back: its records count as lost, reading goes on', () => {
    const directory = tempDir();
    const a = open({ directory, segmentBytes: 1 });
    appendRange(a, 0, 1000);
    a.close();
    const s = open({ directory, segmentBytes: 1 }); // old segments are opened on first read
    const segs = segmentFiles(directory);
    expect(segs.length).toBeGreaterThan(3);
    unlinkSync(segs[1]!); // not yet opened for reading
    const got = indexesOf(s);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(1000);
    expect(got).toContain(0);
    expect(got).toContain(999);
    expect(s.stats()).toMatchObject({ records: got.length, corruptedSkipped: 1 });
    expect(indexesOf(s)).toEqual(got);
  });

  it('a damaged ack log only re-sends (never loses) records', () => {
    const directory = tempDir();
    const a = open({ directory });
    a.append(Array.from({ length: 10 }, (_, i) => payload(i)));
    a.ack([1, 2]);
    a.ack([3]);
    a.close();
    // Tear the last ack frame: ack 3 is lost, acks 1-2 stay.
    const ackLog = join(directory, 'acks.log');
    truncateSync(ackLog, statSync(ackLog).size - 3);
    const b = open({ directory });
    expect(seqsOf(b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(b.stats().corruptedSkipped).toBe(1);
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * The read side of spool format 2 on hand-built bytes: its limits are DataStorage's, a frame is
 * accepted only whole, a damaged region is reported with its offset and reason, and a directory
 * that is not a spool is an error, not an empty spool.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkFrame,
  decodeFrame,
  isTornFrame,
  LEGACY_RECORD_MAGIC,
  MAX_BODY_BYTES,
  MAX_FRAME_EVENTS,
  SpoolReadError,
  scanLog,
  scanSpool,
  segmentName,
  walkLegacyFrames,
} from '../src/index.ts';

/** One event frame as FORMAT.md describes it. */
function frame(firstSeq: number, events: string[], lane = 0, appendedAt = 1_000): Buffer {
  const body = Buffer.from(`[${events.join(',')}]`);
  const head = 32 + 24 * events.length;
  const buf = Buffer.alloc(head + body.length);
  buf.write('KAF2', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 8);
  buf.writeUInt16LE(lane, 12);
  buf.writeUInt16LE(events.length, 14);
  buf.writeDoubleLE(firstSeq, 16);
  buf.writeDoubleLE(appendedAt, 24);
  let off = 1;
  events.forEach((e, i) => {
    const ix = 32 + i * 24;
    buf.writeDoubleLE(appendedAt, ix);
    buf.writeDoubleLE(0, ix + 8);
    buf.writeUInt32LE(off, ix + 16);
    buf.writeUInt32LE(Buffer.byteLength(e), ix + 20);
    off += Buffer.byteLength(e) + 1;
  });
  body.copy(buf, head);
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4);
  return buf;
}

function logFrame(kind: 'KAK2' | 'KAS2', ranges: Array<[number, number]>): Buffer {
  const buf = Buffer.alloc(12 + ranges.length * 16);
  buf.write(kind, 0, 'latin1');
  buf.writeUInt32LE(ranges.length * 16, 8);
  ranges.forEach(([from, to], i) => {
    buf.writeDoubleLE(from, 12 + i * 16);
    buf.writeDoubleLE(to, 20 + i * 16);
  });
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4);
  return buf;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function spoolDir(files: Record<string, Buffer | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'spool-format-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}
const META = JSON.stringify({
  format: 2,
  producerId: '0b3f7c1e-9d2a-4c44-8a11-2f6f1d1e0a01',
  createdAt: '2026-11-30T00:00:00.000Z',
  destination: 'http://datastorage:8080',
  service: 'gateway',
  lanes: 2,
});

describe('spool format 2, read side', () => {
  it("takes its limits from DataStorage's contract", () => {
    expect(MAX_FRAME_EVENTS).toBe(MAX_BATCH_EVENTS);
    expect(MAX_BODY_BYTES).toBe(MAX_BATCH_BYTES);
  });

  it('accepts a whole frame, and nothing with one bit flipped or cut short', () => {
    const f = frame(7, ['{"a":1}', '{"b":2}'], 1);
    const head = checkFrame(f, 0);
    expect(head).toMatchObject({ firstSeq: 7, count: 2, lane: 1, frameBytes: f.length });
    const decoded = decodeFrame(f, 0, head!);
    expect(JSON.parse(decoded!.body.toString())).toEqual([{ a: 1 }, { b: 2 }]);
    const flipped = Buffer.from(f);
    flipped[f.length - 3]! ^= 0x01;
    expect(checkFrame(flipped, 0)).toBeUndefined();
    const cut = f.subarray(0, f.length - 5);
    expect(checkFrame(cut, 0)).toBeUndefined();
    expect(isTornFrame(cut, 0)).toBe(true);
    expect(isTornFrame(flipped, 0)).toBe(false);
  });

  it('walks the sent/ack log past a damaged frame, reporting where it is', () => {
    const a = logFrame('KAS2', [[1, 3]]);
    const b = logFrame('KAK2', [[1, 2]]);
    const damaged = Buffer.from(b);
    damaged[14]! ^= 0xff;
    const buf = Buffer.concat([a, damaged, b]);
    const seen: string[] = [];
    scanLog(buf, {
      ranges: (kind) => seen.push(kind),
      damaged: (at, length) => seen.push(`damaged@${at}+${length}`),
    });
    expect(seen).toEqual(['sent', `damaged@${a.length}+${b.length}`, 'ack']);
  });

  it('scans a directory: unacknowledged records, SENT-not-acked, lanes, damage with offsets', () => {
    const f1 = frame(1, ['{"e":1}', '{"e":2}'], 0, 1_000);
    const f2 = frame(3, ['{"e":3}'], 1, 2_000);
    const garbage = Buffer.from('not a frame at all');
    const f3 = frame(4, ['{"e":4}'], 0, 3_000);
    const dir = spoolDir({
      'meta.json': META,
      [segmentName(1)]: Buffer.concat([f1, f2, garbage, f3]),
      'sent-ack.log': Buffer.concat([logFrame('KAS2', [[1, 3]]), logFrame('KAK2', [[1, 2]])]),
      'dead-letter.jsonl': '{"reason":"invalid"}\n{"reason":"poison"}\n',
      'meta.json.tmp': '',
    });
    const scan = scanSpool(dir, { now: 12_000 });
    expect(scan.format).toBe(2);
    expect(scan.meta).toMatchObject({
      service: 'gateway',
      destination: 'http://datastorage:8080',
      lanes: 2,
    });
    expect(scan.records).toBe(2); // seqs 3 and 4
    expect(scan.bytes).toBe(f2.length + f3.length);
    expect(scan.sentNotAcked).toBe(1); // seq 3
    expect(scan.oldestAppendedAt).toBe(2_000);
    expect(scan.oldestAgeSeconds).toBe(10);
    expect(scan.lanes).toEqual([
      { lane: 0, records: 1, bytes: f3.length },
      { lane: 1, records: 1, bytes: f2.length },
    ]);
    expect(scan.damaged).toEqual([
      {
        file: segmentName(1),
        offset: f1.length + f2.length,
        length: garbage.length,
        reason: 'magic',
      },
    ]);
    expect(scan.deadLetters).toEqual([{ file: 'dead-letter.jsonl', bytes: 41, entries: 2 }]);
    expect(scan.tmpFiles).toEqual(['meta.json.tmp']);
    expect(scan.lock).toEqual({ state: 'absent' });
  });

  it('reports a frame whose seqs go backwards, as recovery skips it', () => {
    const dir = spoolDir({
      'meta.json': META,
      [segmentName(1)]: Buffer.concat([frame(5, ['{}']), frame(2, ['{}'])]),
    });
    const scan = scanSpool(dir);
    expect(scan.records).toBe(1);
    // …and seqs 1–4, below the first frame of a segment whose name says it starts at 1, are
    // events gone from its start.
    expect(scan.damaged.map((d) => [d.reason, d.offset, d.events])).toEqual([
      ['missing', 0, 4],
      ['sequence', frame(5, ['{}']).length, undefined],
    ]);
    expect(scan.missing).toBe(4);
  });

  it('reports events gone without a damaged byte: a segment emptied, one cut at a frame boundary', () => {
    const a = frame(1, ['{}', '{}']);
    const b = frame(3, ['{}']);
    const dir = spoolDir({
      'meta.json': META,
      [segmentName(1)]: a, // frame b (seq 3) was cut off at the frame boundary
      [segmentName(4)]: Buffer.alloc(0), // emptied: seqs 4–5 were in it
      [segmentName(6)]: frame(6, ['{}']),
    });
    const scan = scanSpool(dir);
    expect(b.length).toBeGreaterThan(0);
    expect(scan.records).toBe(3);
    expect(scan.missing).toBe(3);
    expect(scan.damaged.map((d) => [d.file, d.offset, d.reason, d.events])).toEqual([
      [segmentName(1), a.length, 'missing', 1],
      [segmentName(4), 0, 'missing', 2],
    ]);
  });

  it('walks format 1 frames: damaged regions with offsets, a short fragment at the end too', () => {
    const legacy = (magic: string, body: Buffer) => {
      const f = Buffer.alloc(12 + body.length);
      f.write(magic, 0, 'latin1');
      f.writeUInt32LE(body.length, 8);
      body.copy(f, 12);
      f.writeUInt32LE(crc32(f.subarray(8)), 4);
      return f;
    };
    const a = legacy('KAUR', Buffer.alloc(20, 1));
    const b = legacy('KAUR', Buffer.alloc(20, 2));
    const bad = Buffer.from(b);
    bad[15]! ^= 0x01;
    const buf = Buffer.concat([a, bad, b, Buffer.from('KAU')]);
    const seen: string[] = [];
    const regions = walkLegacyFrames(
      buf,
      LEGACY_RECORD_MAGIC,
      (bodyAt) => {
        seen.push(`frame@${bodyAt - 12}`);
        return true;
      },
      (at, length) => seen.push(`damaged@${at}+${length}`),
    );
    expect(regions).toBe(2);
    expect(seen).toEqual([
      'frame@0',
      // A region is reported once the next frame is accepted (the visitor may refuse it).
      `frame@${a.length + bad.length}`,
      `damaged@${a.length}+${bad.length}`,
      `damaged@${a.length + bad.length + b.length}+3`,
    ]);
  });

  it("a damaged meta.json (parsable but not a spool's, or not JSON) is judged by the files beside it, as recovery does", () => {
    const f = frame(1, ['{"e":1}', '{"e":2}']);
    for (const meta of ['{}', '[1]', 'not json', '{"format":"2"}']) {
      const dir = spoolDir({ 'meta.json': meta, [segmentName(1)]: f });
      const scan = scanSpool(dir);
      expect(scan.format).toBe(2);
      expect(scan.records).toBe(2); // the segment's records, not 0
      expect(scan.damaged.map((d) => d.reason)).toEqual(['meta']);
    }
    // Format 1 files beside a damaged meta.json: format 1.
    const legacy = spoolDir({ 'meta.json': '{}', '00000000000000000001.seg': 'KAUR....' });
    expect(scanSpool(legacy).format).toBe(1);
  });

  it('recognises format 1, and refuses what is not a spool or is newer', () => {
    const legacy = spoolDir({ '00000000000000000001.seg': 'KAUR....', 'acks.log': '' });
    expect(scanSpool(legacy)).toMatchObject({
      format: 1,
      legacy: { segments: 1, bytes: 8, ackLog: true, lockFile: false },
    });
    const other = spoolDir({ 'notes.txt': 'hello' });
    expect(() => scanSpool(other)).toThrow(SpoolReadError);
    expect(() => scanSpool(join(other, 'missing'))).toThrow(/does not exist/);
    const newer = spoolDir({ 'meta.json': JSON.stringify({ format: 3 }) });
    try {
      scanSpool(newer);
      expect.unreachable();
    } catch (err) {
      expect((err as SpoolReadError).code).toBe('newer_format');
    }
    const nested = spoolDir({});
    mkdirSync(join(nested, 'sub'));
    expect(() => scanSpool(nested)).toThrow(/not an audit spool/);
  });
});

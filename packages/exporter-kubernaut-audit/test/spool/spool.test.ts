// SPDX-License-Identifier: Apache-2.0
/*
 * The spool's contract (format 2): one write per append, frames that are request bodies,
 * in-order lanes, acknowledgements and sent marks that survive a restart, the byte bound and
 * reservations, damage skipped and counted (at recovery and while running), the destination a
 * spool belongs to, memory-only spools, and the migration of a format 1 spool.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MAX_BATCH_BYTES } from '@kubernaut/datastorage-contract';
import { tempDir } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';
import { ReadArena } from '../../src/send/read-arena.ts';
import { allPending, event, events, pendingIds, segmentFiles, spoolOpener } from './helpers.ts';

const spool = spoolOpener();

describe('spool format 2', () => {
  it('appends with one write into per-lane frames whose bodies are JSON arrays of the events', () => {
    const s = spool(tempDir(), { lanes: 2 });
    expect(s.kind).toBe('file');
    const out = s.append(events(0, 10, 2));
    expect(out.dropped).toEqual([]);
    expect(out.frames.map((f) => [f.lane, f.firstSeq, f.count])).toEqual([
      [0, 1, 5],
      [1, 6, 5],
    ]);
    for (const f of out.frames) {
      const body = JSON.parse(f.body.toString('utf8')) as Array<{ id: number }>;
      expect(body.map((e) => e.id % 2)).toEqual(Array(5).fill(f.lane));
      for (let i = 0; i < f.count; i++) {
        const text = f.body.toString(
          'utf8',
          f.offset[i],
          (f.offset[i] as number) + (f.length[i] as number),
        );
        expect(JSON.parse(text)).toEqual(body[i]);
        expect(f.provSeq[i]).toBe(body[i]?.id);
      }
    }
    expect(s.lastSeq()).toBe(10);
    expect(s.oldestUnackedSeq()).toBe(1);
    expect(s.stats()).toMatchObject({ records: 10, segments: 1 });
    // Lanes read back in order; acknowledgements advance the watermark.
    expect(pendingIds(s, s.readLane(1, 0, 1 << 20)).map(([, id]) => id)).toEqual([1, 3, 5, 7, 9]);
    s.ack([{ from: 6, to: 10 }]);
    expect(s.oldestUnackedSeq()).toBe(1);
    s.ack([{ from: 1, to: 4 }]);
    expect(s.oldestUnackedSeq()).toBe(5);
    s.ack([{ from: 5, to: 5 }]);
    expect(s.oldestUnackedSeq()).toBe(Number.POSITIVE_INFINITY);
    expect(s.stats()).toMatchObject({ records: 0, bytes: 0 });
  });

  it("frames read back through a reader's allocator (a lane's read arena) hold their index arrays in the same region as their bytes: nothing is allocated per frame", () => {
    const dir = tempDir();
    const a = spool(dir, { lanes: 2 });
    for (let i = 0; i < 6; i++) a.append(events(i * 10, i * 10 + 10, 2));
    a.close();
    const b = spool(dir); // frames now come from disk
    const arena = new ReadArena(64 * 1024);
    const frames = b.readLane(1, 0, 1 << 20, (n) => arena.alloc(n));
    expect(frames.length).toBe(6);
    const ring = frames[0]?.body.buffer;
    for (const f of frames) {
      expect(f.body.buffer).toBe(ring); // the arena's
      for (const ix of [f.emittedAt, f.provSeq, f.offset, f.length]) expect(ix.buffer).toBe(ring);
      // The index sits in front of the frame's bytes, outside them.
      expect(f.length.byteOffset + f.length.byteLength).toBeLessThanOrEqual(f.body.byteOffset);
    }
    // …and decodes as without the arena.
    const own = b.readLane(1, 0, 1 << 20);
    expect(own[0]?.offset.buffer).not.toBe(own[0]?.body.buffer);
    expect(pendingIds(b, frames)).toEqual(pendingIds(b, own));
    expect(frames.map((f) => [...f.provSeq, ...f.emittedAt])).toEqual(
      own.map((f) => [...f.provSeq, ...f.emittedAt]),
    );
    expect(pendingIds(b, frames).map(([, id]) => id)).toEqual(
      Array.from({ length: 30 }, (_, k) => 2 * k + 1),
    );
  });

  it('cuts frames at 500 events and below 5 MiB of body', () => {
    const s = spool(tempDir());
    const many = s.append(events(0, 1200));
    expect(many.frames.map((f) => f.count)).toEqual([500, 500, 200]);
    const big = s.append(events(0, 30, 1, 200_000)); // 30 × 200 KB = 6 MB
    expect(big.frames.length).toBe(2);
    for (const f of big.frames) expect(f.body.length).toBeLessThan(MAX_BATCH_BYTES);
  });

  it('comes back after a restart: unacknowledged events with their seqs, sent marks as possibly delivered', () => {
    const dir = tempDir();
    const a = spool(dir, { lanes: 2 });
    a.append(events(0, 20, 2));
    a.markSent([{ from: 1, to: 4 }]);
    a.ack([{ from: 1, to: 2 }]);
    a.append(events(20, 24, 2));
    a.close();
    const b = spool(dir);
    expect(b.meta).toMatchObject({ producerId: a.meta.producerId, lanes: 2, format: 2 });
    const lane0 = b.readLane(0, 0, 1 << 20);
    expect(pendingIds(b, lane0)).toEqual(
      [3, 4, 5, 6, 7, 8, 9, 10, 21, 22].map((seq, k) => [
        seq,
        [4, 6, 8, 10, 12, 14, 16, 18, 20, 22][k],
      ]),
    );
    const first = lane0[0];
    expect(first?.sentBefore).toBeDefined();
    expect([...(first?.sentBefore ?? [])].slice(2, 5)).toEqual([1, 1, 0]); // seqs 3, 4 marked, 5 not
    expect(b.oldestUnackedSeq()).toBe(3);
    expect(b.append([event(99)]).frames[0]?.firstSeq).toBe(25); // seqs keep increasing
  });

  it('says whether a lane has frames with unacknowledged events after a seq (the sender asks it before handing events back)', () => {
    const s = spool(tempDir(), { lanes: 2 });
    s.append(events(0, 4, 2)); // lane 0: seqs 1-2 (ids 0, 2); lane 1: seqs 3-4 (ids 1, 3)
    s.append(events(4, 6, 2)); // lane 0: seq 5; lane 1: seq 6
    expect(s.hasFramesAfter(0, 0)).toBe(true);
    expect(s.hasFramesAfter(0, 2)).toBe(true);
    expect(s.hasFramesAfter(0, 5)).toBe(false);
    expect(s.hasFramesAfter(1, 4)).toBe(true);
    s.ack([{ from: 5, to: 6 }]);
    expect(s.hasFramesAfter(0, 2)).toBe(false);
    expect(s.hasFramesAfter(1, 4)).toBe(false);
    expect(s.hasFramesAfter(1, 0)).toBe(true);
    s.close();
    expect(s.hasFramesAfter(1, 0)).toBe(false);
  });

  it('drops what does not fit maxBytes, counted; a reservation keeps its room', () => {
    const s = spool(tempDir(), { maxBytes: 10_000 });
    const r = s.reserve(5_000);
    expect(r).toBeDefined();
    const out = s.append(events(0, 40)); // ≈ 9 KB of frames
    const dropped = out.dropped.flatMap((d) => d.events);
    expect(out.dropped.every((d) => d.reason === 'full')).toBe(true);
    expect(dropped.length).toBeGreaterThan(10);
    expect(s.stats().droppedFull).toBe(dropped.length);
    expect(s.stats().bytes + s.stats().reservedBytes).toBeLessThanOrEqual(10_000);
    // Under the reservation the same room is there.
    const under = s.append(events(100, 110), r);
    expect(under.dropped).toEqual([]);
    r?.release();
    expect(s.reserve(1_000_000)).toBeUndefined();
  });

  it('appends all or nothing under a reservation (a refused request leaves nothing to duplicate)', () => {
    const s = spool(tempDir(), { maxBytes: 10_000 });
    const r = s.reserve(2_000);
    expect(r).toBeDefined();
    const out = s.append(events(0, 60), r); // ≈ 13 KB of frames: more than the whole bound
    expect(out.frames).toEqual([]);
    expect(out.dropped).toHaveLength(1);
    expect(out.dropped[0]?.reason).toBe('full');
    expect(out.dropped[0]?.events).toHaveLength(60);
    expect(s.stats().records).toBe(0);
    expect(s.lastSeq()).toBe(0);
    // The reservation still holds its room, and a smaller append under it succeeds whole.
    expect(s.stats().reservedBytes).toBe(2_000);
    const fits = s.append(events(60, 66), r);
    expect(fits.dropped).toEqual([]);
    expect(fits.frames.reduce((n, f) => n + f.count, 0)).toBe(6);
    r?.release();
    // Without a reservation the same overflow keeps what fits.
    const partial = s.append(events(100, 160));
    expect(partial.frames.length).toBeGreaterThan(0);
    expect(partial.dropped.flatMap((d) => d.events).length).toBeLessThan(60);
  });

  it('skips and counts a torn tail and flipped bits at recovery; the rest comes back', () => {
    const dir = tempDir();
    const a = spool(dir);
    a.append(events(0, 3));
    a.append(events(3, 6));
    a.append(events(6, 9));
    a.close();
    const [seg] = segmentFiles(dir);
    const buf = readFileSync(seg as string);
    // Flip a byte in the middle frame's body, and add a torn half frame at the end.
    const second = buf.indexOf(Buffer.from('KAF2'), 4);
    buf[second + 200] = (buf[second + 200] as number) ^ 0xff;
    writeFileSync(seg as string, Buffer.concat([buf, buf.subarray(0, 40)]));
    const b = spool(dir);
    expect(b.stats().corrupted).toBe(2);
    expect(allPending(b).map(([, id]) => id)).toEqual([0, 1, 2, 6, 7, 8]);
    // The torn tail was cut: new frames follow the last intact one and survive a restart.
    b.append(events(9, 10));
    b.close();
    expect(allPending(spool(dir)).map(([, id]) => id)).toEqual([0, 1, 2, 6, 7, 8, 9]);
  });

  it('counts damage found while running (onCorrupted) and never returns the damaged frame', () => {
    const dir = tempDir();
    const s = spool(dir);
    s.append(events(0, 3));
    s.append(events(3, 6));
    const [seg] = segmentFiles(dir);
    const buf = readFileSync(seg as string);
    buf[100] = (buf[100] as number) ^ 0xff; // inside the first frame
    writeFileSync(seg as string, buf);
    let reported = 0;
    s.onCorrupted((n) => {
      reported += n;
    });
    expect(allPending(s).map(([, id]) => id)).toEqual([3, 4, 5]);
    expect(reported).toBe(1);
    expect(s.stats().corrupted).toBe(1);
    expect(s.oldestUnackedSeq()).toBe(4); // the lost events no longer hold back settlement
  });

  it('belongs to one destination: recorded when created, kept across restarts', () => {
    const dir = tempDir();
    const a = spool(dir, { destination: 'http://ds-a:8080' });
    expect(a.meta.destination).toBe('http://ds-a:8080');
    a.close();
    const b = spool(dir, { destination: 'http://ds-b:8080' });
    expect(b.meta.destination).toBe('http://ds-a:8080');
    b.close();
    expect(spool(dir).meta.destination).toBe('http://ds-a:8080');
    // A spool created without one adopts the first it is given, and keeps it.
    const other = tempDir();
    const c = spool(other);
    expect(c.meta.destination).toBeUndefined();
    c.adoptDestination('http://ds-c');
    c.adoptDestination('http://ds-d');
    expect(c.meta.destination).toBe('http://ds-c');
    c.close();
    expect(spool(other).meta.destination).toBe('http://ds-c');
  });

  it('memory only: the same contract, nothing on disk, bounded by maxBytes', () => {
    const s = spool(undefined, { maxBytes: 20_000, lanes: 2 });
    expect(s.kind).toBe('memory');
    s.append(events(0, 10, 2));
    expect(allPending(s).map(([, id]) => id)).toEqual([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]);
    s.ack([{ from: 1, to: 5 }]);
    expect(s.oldestUnackedSeq()).toBe(6);
    const out = s.append(events(10, 200, 2));
    expect(out.dropped.every((d) => d.reason === 'full')).toBe(true);
    expect(s.stats().bytes).toBeLessThanOrEqual(20_000);
  });

  it('migrates a format 1 spool: its undelivered records are delivered from format 2', () => {
    const dir = tempDir();
    const producerId = '6f0c0b3e-1111-4222-8333-444455556666';
    writeFileSync(
      join(dir, 'meta.json'),
      JSON.stringify({ format: 1, producerId, createdAt: 'x' }),
    );
    const legacyEvent = (id: number) => ({
      version: '1.0',
      correlation_id: `c-${id % 3}`,
      event_data: { id, audit_provenance: { seq: id } },
    });
    const frames: Buffer[] = [];
    for (let seq = 1; seq <= 5; seq++) {
      const payload = Buffer.from(JSON.stringify({ t: 1000 + seq, e: legacyEvent(seq) }));
      const body = Buffer.alloc(16 + payload.length);
      body.writeDoubleLE(seq, 0);
      body.writeDoubleLE(2000, 8);
      payload.copy(body, 16);
      frames.push(legacyFrame('KAUR', body));
    }
    writeFileSync(join(dir, `${'1'.padStart(20, '0')}.seg`), Buffer.concat(frames));
    const ack = Buffer.alloc(16);
    ack.writeDoubleLE(2, 0);
    ack.writeDoubleLE(3, 8);
    writeFileSync(join(dir, 'acks.log'), legacyFrame('KAUA', ack));
    // The format 1 lock of a process that is gone (this host, a pid that does not exist).
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 999_999_999, hostname: hostname() }));

    const s = spool(dir, { lanes: 2 });
    expect(s.lastError).toBeUndefined();
    expect(s.kind).toBe('file');
    expect(s.meta.producerId).toBe(producerId);
    const pending = [0, 1].flatMap((lane) =>
      s.readLane(lane, 0, 1 << 20).flatMap((f) =>
        (JSON.parse(f.body.toString()) as Array<{ event_data: { id: number } }>).map((e, i) => ({
          id: e.event_data.id,
          emittedAt: f.emittedAt[i],
          provSeq: f.provSeq[i],
        })),
      ),
    );
    expect(pending.map((p) => p.id).sort()).toEqual([1, 4, 5]);
    expect(pending.find((p) => p.id === 4)).toMatchObject({ emittedAt: 1004, provSeq: 4 });
    const names = readdirSync(dir);
    expect(names.filter((n) => n.endsWith('.seg') || n === 'acks.log' || n === 'lock')).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'))).toMatchObject({
      format: 2,
      producerId,
    });
    s.close();
    const again = spool(dir);
    expect(allPending(again).length).toBe(3);
  });
});

/** A format 1 frame: magic | crc32(bodyLength, body) | bodyLength | body. */
function legacyFrame(magic: string, body: Buffer): Buffer {
  const f = Buffer.alloc(12 + body.length);
  f.write(magic, 0, 'latin1');
  f.writeUInt32LE(body.length, 8);
  body.copy(f, 12);
  f.writeUInt32LE(crc32(f.subarray(8)), 4);
  return f;
}

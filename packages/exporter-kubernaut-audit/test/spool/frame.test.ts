// SPDX-License-Identifier: Apache-2.0
/* Format 2 framing: frames are request bodies, checked by CRC; log frames resync past damage. */
import { describe, expect, it } from 'vitest';
import {
  ACK_MAGIC,
  checkFrame,
  decodeFrame,
  encodeLogFrame,
  frameBytesOf,
  planFrames,
  SENT_MAGIC,
  scanLog,
  writeFrame,
} from '../../src/spool/frame.ts';
import { event, events } from './helpers.ts';

describe('frames', () => {
  it('write, check and decode: the body is the JSON array of the events', () => {
    const evs = events(0, 4);
    const bytes = frameBytesOf(
      4,
      evs.reduce((s, e) => s + e.bytes, 0),
    );
    const buf = Buffer.alloc(bytes + 10);
    const f = writeFrame(buf, 0, 2, 41, 1234, evs, bytes);
    expect(JSON.parse(f.body.toString()).map((e: { id: number }) => e.id)).toEqual([0, 1, 2, 3]);
    const head = checkFrame(buf, 0);
    expect(head).toEqual({ frameBytes: bytes, lane: 2, count: 4, firstSeq: 41, appendedAt: 1234 });
    const back = decodeFrame(buf, 0, head as NonNullable<typeof head>);
    expect(back?.body.equals(f.body)).toBe(true);
    expect([...(back?.provSeq ?? [])]).toEqual([0, 1, 2, 3]);
    buf[bytes - 3] = 0x00; // any flipped byte fails the checksum
    expect(checkFrame(buf, 0)).toBeUndefined();
  });

  it('plans frames per lane run, ≤ 500 events, dropping what does not fit', () => {
    const evs = [...events(0, 600), event(600, 1), event(601, 1)];
    const all = planFrames(evs, () => true);
    expect(all.frames.map((f) => [f.lane, f.to - f.from])).toEqual([
      [0, 500],
      [0, 100],
      [1, 2],
    ]);
    expect(all.dropped).toEqual([]);
    let room = 100_000;
    const some = planFrames(evs, (add) => {
      if (add > room) return false;
      room -= add;
      return true;
    });
    expect(some.dropped.length).toBeGreaterThan(0);
    const kept = some.frames.reduce((n, f) => n + f.to - f.from, 0);
    expect(kept + some.dropped.length).toBe(evs.length);
    expect(some.frames.reduce((n, f) => n + f.frameBytes, 0)).toBeLessThanOrEqual(100_000);
  });

  it('log frames: ack and sent ranges, damage skipped and counted', () => {
    const a = encodeLogFrame(ACK_MAGIC, [{ from: 1, to: 5 }]);
    const s = encodeLogFrame(SENT_MAGIC, [
      { from: 6, to: 9 },
      { from: 12, to: 12 },
    ]);
    const damaged = Buffer.from(a);
    damaged[14] = 0xff;
    const seen: string[] = [];
    let regions = 0;
    scanLog(Buffer.concat([a, damaged, Buffer.from('garbage'), s]), {
      ranges: (kind, buf, at, len) => {
        for (let p = at; p < at + len; p += 16)
          seen.push(`${kind}:${buf.readDoubleLE(p)}-${buf.readDoubleLE(p + 8)}`);
      },
      damaged: () => {
        regions++;
      },
    });
    expect(seen).toEqual(['ack:1-5', 'sent:6-9', 'sent:12-12']);
    expect(regions).toBe(1);
  });
});

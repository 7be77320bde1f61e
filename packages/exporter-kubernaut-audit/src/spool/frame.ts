// SPDX-License-Identifier: Apache-2.0
/*
 * Format 2 framing (see FORMAT.md). Pure functions over Buffers: no I/O here.
 *
 *   event frame (segments) = "KAF2" | crc32 u32 | frameLength u32 | lane u16 | count u16 |
 *       firstSeq f64 | appendedAt f64 | count × { emittedAt f64, provSeq f64, offset u32,
 *       length u32 } | body `[e0,e1,…]`
 *   crc32 covers bytes 8 .. frameLength (everything after the crc field); offsets are into body.
 *
 *   log frame (sent/ack log) = "KAK2" (ack) or "KAS2" (sent) | crc32 u32 | bodyLength u32 |
 *       n × { from f64, to f64 } (inclusive seq ranges); crc32 covers bytes 8 .. 12 + bodyLength.
 *
 * All integers little-endian.
 */
import { crc32 } from 'node:zlib';
import {
  FRAME_HEAD_BYTES,
  INDEX_ENTRY_BYTES,
  indexArrays,
  LOG_HEAD_BYTES,
} from '@kubernaut/audit-spool-format';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import type { EncodedEvent, Frame, SeqRange } from './types.ts';

// Decoding (frames, the sent/ack log) and the format's constants are shared with
// `kubernaut-audit spool inspect|check` through @kubernaut/audit-spool-format; encoding is here.
export {
  ACK_MAGIC,
  checkFrame,
  decodeFrame,
  FRAME_HEAD_BYTES,
  FRAME_MAGIC,
  type FrameHead,
  INDEX_ENTRY_BYTES,
  type IndexMemory,
  LOG_HEAD_BYTES,
  type LogVisitor,
  MAX_FRAME_BYTES,
  maxProvSeq,
  nextMagic,
  SENT_MAGIC,
  scanLog,
} from '@kubernaut/audit-spool-format';

/** An encoded event's JSON text (decoded from its staged bytes when it has them). */
export function eventText(e: EncodedEvent): string {
  const at = e.utf8At ?? 0;
  return e.utf8 === undefined ? e.json : e.utf8.toString('utf8', at, at + e.bytes);
}

/** Frame bytes of a frame holding events of these total JSON bytes. */
export function frameBytesOf(count: number, jsonBytes: number): number {
  return FRAME_HEAD_BYTES + count * INDEX_ENTRY_BYTES + 2 + jsonBytes + Math.max(0, count - 1);
}

/** A frame being planned: events[from, to) of the append call. */
export interface PlannedFrame {
  lane: number;
  from: number;
  to: number;
  jsonBytes: number;
  frameBytes: number;
}

/**
 * Cuts consecutive events (grouped per lane) into frames of ≤ 500 events whose body stays
 * below 5 MiB; `fits(frameBytesIfAdded, opening)` decides whether the next event has room
 * (false: it is dropped). Returns the frames and the indexes of the dropped events.
 */
export function planFrames(
  events: readonly EncodedEvent[],
  fits: (addBytes: number) => boolean,
): { frames: PlannedFrame[]; dropped: number[] } {
  const frames: PlannedFrame[] = [];
  const dropped: number[] = [];
  let cur: PlannedFrame | undefined;
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as EncodedEvent;
    const count = cur === undefined ? 0 : cur.to - cur.from;
    const sameFrame =
      cur !== undefined &&
      cur.lane === e.lane &&
      cur.to === i &&
      count < MAX_BATCH_EVENTS &&
      2 + cur.jsonBytes + count + 1 + e.bytes < MAX_BATCH_BYTES;
    const add = sameFrame
      ? INDEX_ENTRY_BYTES + 1 + e.bytes
      : FRAME_HEAD_BYTES + INDEX_ENTRY_BYTES + 2 + e.bytes;
    if (!fits(add)) {
      dropped.push(i);
      continue;
    }
    if (sameFrame && cur !== undefined) {
      cur.to = i + 1;
      cur.jsonBytes += e.bytes;
      cur.frameBytes += add;
    } else {
      cur = { lane: e.lane, from: i, to: i + 1, jsonBytes: e.bytes, frameBytes: add };
      frames.push(cur);
    }
  }
  return { frames, dropped };
}

/**
 * Writes the planned frame into `buf` at `at` (firstSeq given) and returns it as a Frame whose
 * body is a view into `buf`. The events of a planned frame are consecutive in `events` unless
 * some were dropped in between: `pick` lists the event indexes to write.
 */
export function writeFrame(
  buf: Buffer,
  at: number,
  lane: number,
  firstSeq: number,
  appendedAt: number,
  picked: readonly EncodedEvent[],
  frameBytes: number,
): Frame {
  const count = picked.length;
  const { emittedAt, provSeq, offset, length } = indexArrays(count);
  buf.write('KAF2', at, 'latin1');
  buf.writeUInt32LE(frameBytes, at + 8);
  buf.writeUInt16LE(lane, at + 12);
  buf.writeUInt16LE(count, at + 14);
  buf.writeDoubleLE(firstSeq, at + 16);
  buf.writeDoubleLE(appendedAt, at + 24);
  const bodyAt = at + FRAME_HEAD_BYTES + count * INDEX_ENTRY_BYTES;
  let p = bodyAt;
  buf[p++] = 0x5b; // [
  for (let i = 0; i < count; i++) {
    const e = picked[i] as EncodedEvent;
    if (i > 0) buf[p++] = 0x2c; // ,
    const utf8 = e.utf8;
    const written =
      utf8 === undefined
        ? buf.write(e.json, p, e.bytes, 'utf8')
        : utf8.copy(buf, p, e.utf8At as number, (e.utf8At as number) + e.bytes);
    const ix = at + FRAME_HEAD_BYTES + i * INDEX_ENTRY_BYTES;
    buf.writeDoubleLE(e.emittedAt, ix);
    buf.writeDoubleLE(e.provSeq, ix + 8);
    buf.writeUInt32LE(p - bodyAt, ix + 16);
    buf.writeUInt32LE(written, ix + 20);
    emittedAt[i] = e.emittedAt;
    provSeq[i] = e.provSeq;
    offset[i] = p - bodyAt;
    length[i] = written;
    p += written;
  }
  buf[p++] = 0x5d; // ]
  if (p - at !== frameBytes) throw new Error(`frame size mismatch: ${p - at} != ${frameBytes}`);
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + frameBytes)), at + 4);
  return {
    lane,
    firstSeq,
    count,
    appendedAt,
    emittedAt,
    provSeq,
    offset,
    length,
    body: buf.subarray(bodyAt, at + frameBytes),
    frameBytes,
  };
}

/** Encodes one log frame (ack or sent) holding inclusive seq ranges. */
export function encodeLogFrame(magic: Buffer, ranges: readonly SeqRange[]): Buffer {
  const body = ranges.length * 16;
  const buf = Buffer.allocUnsafe(LOG_HEAD_BYTES + body);
  magic.copy(buf, 0);
  buf.writeUInt32LE(body, 8);
  let at = LOG_HEAD_BYTES;
  for (const r of ranges) {
    buf.writeDoubleLE(r.from, at);
    buf.writeDoubleLE(r.to, at + 8);
    at += 16;
  }
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4);
  return buf;
}

/** Rewrites the firstSeq of the frame at `at` (and its checksum) when it differs. */
export function patchFirstSeq(buf: Buffer, at: number, firstSeq: number, frameBytes: number): void {
  if (buf.readDoubleLE(at + 16) === firstSeq) return;
  buf.writeDoubleLE(firstSeq, at + 16);
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + frameBytes)), at + 4);
}

/** Copies a frame held in memory (head, index, body) into `buf` at `at`. */
export function copyFrame(buf: Buffer, at: number, f: Frame): void {
  const bodyAt = f.frameBytes - f.body.length;
  buf.write('KAF2', at, 'latin1');
  buf.writeUInt32LE(f.frameBytes, at + 8);
  buf.writeUInt16LE(f.lane, at + 12);
  buf.writeUInt16LE(f.count, at + 14);
  buf.writeDoubleLE(f.firstSeq, at + 16);
  buf.writeDoubleLE(f.appendedAt, at + 24);
  for (let i = 0; i < f.count; i++) {
    const ix = at + 32 + i * 24;
    buf.writeDoubleLE(f.emittedAt[i] as number, ix);
    buf.writeDoubleLE(f.provSeq[i] as number, ix + 8);
    buf.writeUInt32LE(f.offset[i] as number, ix + 16);
    buf.writeUInt32LE(f.length[i] as number, ix + 20);
  }
  f.body.copy(buf, at + bodyAt);
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + f.frameBytes)), at + 4);
}

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
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '@kubernaut/datastorage-contract';
import type { EncodedEvent, Frame, SeqRange } from './types.ts';

export const FRAME_MAGIC = Buffer.from('KAF2', 'latin1');
export const ACK_MAGIC = Buffer.from('KAK2', 'latin1');
export const SENT_MAGIC = Buffer.from('KAS2', 'latin1');
/** Bytes before a frame's index. */
export const FRAME_HEAD_BYTES = 32;
/** Bytes of one index entry. */
export const INDEX_ENTRY_BYTES = 24;
/** Bytes before a log frame's ranges. */
export const LOG_HEAD_BYTES = 12;
/** Largest frame a reader accepts (a body < 5 MiB, 500 events of index, the head). */
export const MAX_FRAME_BYTES =
  FRAME_HEAD_BYTES + MAX_BATCH_EVENTS * INDEX_ENTRY_BYTES + MAX_BATCH_BYTES;

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
  const emittedAt = new Float64Array(count);
  const provSeq = new Float64Array(count);
  const offset = new Uint32Array(count);
  const length = new Uint32Array(count);
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
    const written = buf.write(e.json, p, e.bytes, 'utf8');
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

/** The head of a frame, when `buf` holds an intact one at `at` (magic, length, crc). */
export interface FrameHead {
  frameBytes: number;
  lane: number;
  count: number;
  firstSeq: number;
  appendedAt: number;
}

/** Checks the frame at `at` of `buf`; undefined when there is no intact frame there. */
export function checkFrame(buf: Buffer, at: number): FrameHead | undefined {
  if (at + FRAME_HEAD_BYTES > buf.length) return undefined;
  if (buf.compare(FRAME_MAGIC, 0, 4, at, at + 4) !== 0) return undefined;
  const frameBytes = buf.readUInt32LE(at + 8);
  const count = buf.readUInt16LE(at + 14);
  if (
    frameBytes < FRAME_HEAD_BYTES + 2 ||
    frameBytes > MAX_FRAME_BYTES ||
    at + frameBytes > buf.length ||
    count < 1 ||
    FRAME_HEAD_BYTES + count * (INDEX_ENTRY_BYTES + 1) + 1 > frameBytes
  ) {
    return undefined;
  }
  if (crc32(buf.subarray(at + 8, at + frameBytes)) !== buf.readUInt32LE(at + 4)) return undefined;
  const firstSeq = buf.readDoubleLE(at + 16);
  const appendedAt = buf.readDoubleLE(at + 24);
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1 || !Number.isFinite(appendedAt)) {
    return undefined;
  }
  return { frameBytes, lane: buf.readUInt16LE(at + 12), count, firstSeq, appendedAt };
}

/** Decodes an intact frame (checked with checkFrame) into a Frame; its body is a view. */
export function decodeFrame(buf: Buffer, at: number, head: FrameHead): Frame | undefined {
  const { count, frameBytes } = head;
  const emittedAt = new Float64Array(count);
  const provSeq = new Float64Array(count);
  const offset = new Uint32Array(count);
  const length = new Uint32Array(count);
  const bodyAt = at + FRAME_HEAD_BYTES + count * INDEX_ENTRY_BYTES;
  const bodyBytes = at + frameBytes - bodyAt;
  for (let i = 0; i < count; i++) {
    const ix = at + FRAME_HEAD_BYTES + i * INDEX_ENTRY_BYTES;
    emittedAt[i] = buf.readDoubleLE(ix);
    provSeq[i] = buf.readDoubleLE(ix + 8);
    offset[i] = buf.readUInt32LE(ix + 16);
    length[i] = buf.readUInt32LE(ix + 20);
    if ((offset[i] as number) + (length[i] as number) > bodyBytes) return undefined;
  }
  return {
    lane: head.lane,
    firstSeq: head.firstSeq,
    count,
    appendedAt: head.appendedAt,
    emittedAt,
    provSeq,
    offset,
    length,
    body: buf.subarray(bodyAt, at + frameBytes),
    frameBytes,
  };
}

/** The highest provenance seq in a frame's index, with its event index (-1 when none). */
export function maxProvSeq(frame: Frame): { provSeq: number; index: number } {
  let best = 0;
  let index = -1;
  for (let i = 0; i < frame.count; i++) {
    const p = frame.provSeq[i] as number;
    if (p > best) {
      best = p;
      index = i;
    }
  }
  return { provSeq: best, index };
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

/** Visitor of {@link scanLog}. */
export interface LogVisitor {
  ranges(kind: 'ack' | 'sent', buf: Buffer, bodyAt: number, bodyLength: number): void;
  damaged(at: number, length: number): void;
}

/** Walks the log frames of `buf`, resyncing past damage (counted per damaged region). */
export function scanLog(buf: Buffer, visitor: LogVisitor): void {
  let at = 0;
  let damageStart = -1;
  while (at < buf.length) {
    const kind = logFrameAt(buf, at);
    if (kind !== undefined) {
      if (damageStart >= 0) {
        visitor.damaged(damageStart, at - damageStart);
        damageStart = -1;
      }
      const len = buf.readUInt32LE(at + 8);
      visitor.ranges(kind, buf, at + LOG_HEAD_BYTES, len);
      at += LOG_HEAD_BYTES + len;
      continue;
    }
    if (damageStart < 0) damageStart = at;
    at = nextMagic(buf, at + 1, [ACK_MAGIC, SENT_MAGIC]);
  }
  if (damageStart >= 0) visitor.damaged(damageStart, buf.length - damageStart);
}

function logFrameAt(buf: Buffer, at: number): 'ack' | 'sent' | undefined {
  if (at + LOG_HEAD_BYTES > buf.length) return undefined;
  let kind: 'ack' | 'sent';
  if (buf.compare(ACK_MAGIC, 0, 4, at, at + 4) === 0) kind = 'ack';
  else if (buf.compare(SENT_MAGIC, 0, 4, at, at + 4) === 0) kind = 'sent';
  else return undefined;
  const len = buf.readUInt32LE(at + 8);
  if (len % 16 !== 0 || at + LOG_HEAD_BYTES + len > buf.length) return undefined;
  const crc = crc32(buf.subarray(at + 8, at + LOG_HEAD_BYTES + len));
  return crc === buf.readUInt32LE(at + 4) ? kind : undefined;
}

/** The next offset ≥ `from` where one of `magics` starts (buf.length when none). */
export function nextMagic(buf: Buffer, from: number, magics: readonly Buffer[]): number {
  let best = buf.length;
  for (const m of magics) {
    const i = buf.indexOf(m, from);
    if (i >= 0 && i < best) best = i;
  }
  return best;
}

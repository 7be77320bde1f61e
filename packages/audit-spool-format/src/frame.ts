// SPDX-License-Identifier: Apache-2.0
/*
 * Decoding format 2 frames (FORMAT.md). Pure functions over Buffers: no I/O here, nothing written.
 *
 *   event frame (segments) = "KAF2" | crc32 u32 | frameLength u32 | lane u16 | count u16 |
 *       firstSeq f64 | appendedAt f64 | count × { emittedAt f64, provSeq f64, offset u32,
 *       length u32 } | body `[e0,e1,…]`
 *   crc32 covers bytes 8 .. frameLength (everything after the crc field); offsets are into body.
 *
 *   log frame (sent/ack log) = "KAK2" (ack) or "KAS2" (sent) | crc32 u32 | bodyLength u32 |
 *       n × { from f64, to f64 } (inclusive seq ranges); crc32 covers bytes 8 .. 12 + bodyLength.
 *
 * All integers little-endian. Invariant: a frame is accepted only when its magic, length, count,
 * crc and seq are all what the format says; anything else is damage, never a guess.
 */
import { crc32 } from 'node:zlib';
import {
  ACK_MAGIC,
  FRAME_HEAD_BYTES,
  FRAME_MAGIC,
  INDEX_ENTRY_BYTES,
  LOG_HEAD_BYTES,
  MAX_FRAME_BYTES,
  SENT_MAGIC,
} from './constants.ts';

/** The head of a frame, when a buffer holds an intact one at an offset (magic, length, crc). */
export interface FrameHead {
  frameBytes: number;
  lane: number;
  count: number;
  firstSeq: number;
  appendedAt: number;
}

/** A decoded event frame; its body is a view into the buffer it was read from. */
export interface DecodedFrame {
  lane: number;
  /** Spool seq of event 0; event i has seq firstSeq + i. */
  firstSeq: number;
  count: number;
  /** Epoch ms the frame was appended. */
  appendedAt: number;
  /** Per event: emit() time, epoch ms. */
  emittedAt: Float64Array;
  /** Per event: provenance seq (0 without provenance). */
  provSeq: Float64Array;
  /** Per event: byte offset of its JSON in body. */
  offset: Uint32Array;
  /** Per event: byte length of its JSON. */
  length: Uint32Array;
  /** `[e0,e1,…]`. */
  body: Buffer;
  /** Bytes of the whole frame. */
  frameBytes: number;
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

/**
 * True when `buf` holds, at `at`, the start of a frame cut short by the end of the buffer (a
 * torn tail): its magic, and a declared length that runs past the end.
 */
export function isTornFrame(buf: Buffer, at: number): boolean {
  if (buf.length - at < 4 || buf.compare(FRAME_MAGIC, 0, 4, at, at + 4) !== 0) return false;
  if (at + 12 > buf.length) return true;
  const frameBytes = buf.readUInt32LE(at + 8);
  return frameBytes <= MAX_FRAME_BYTES && at + frameBytes > buf.length;
}

/** Memory for a frame's index arrays: `INDEX_ENTRY_BYTES × count` bytes at an 8-aligned offset. */
export interface IndexMemory {
  buffer: ArrayBufferLike;
  byteOffset: number;
}

/**
 * The four per-event arrays of a frame's index as views of ONE allocation (a frame of 500 events
 * would otherwise allocate four buffers of 2–4 KB each): of `into` when given (memory the
 * caller already holds, e.g. a reader's arena; its offset must be a multiple of 8), else of a
 * new ArrayBuffer.
 */
export function indexArrays(
  count: number,
  into?: IndexMemory,
): {
  emittedAt: Float64Array;
  provSeq: Float64Array;
  offset: Uint32Array;
  length: Uint32Array;
} {
  const ab = into?.buffer ?? new ArrayBuffer(count * INDEX_ENTRY_BYTES);
  const o = into?.byteOffset ?? 0;
  return {
    emittedAt: new Float64Array(ab, o, count),
    provSeq: new Float64Array(ab, o + count * 8, count),
    offset: new Uint32Array(ab, o + count * 16, count),
    length: new Uint32Array(ab, o + count * 20, count),
  };
}

/**
 * Decodes an intact frame (checked with checkFrame); undefined when its index is inconsistent.
 * Its index arrays are views of `index` when given (see indexArrays), else of their own buffer.
 */
export function decodeFrame(
  buf: Buffer,
  at: number,
  head: FrameHead,
  index?: IndexMemory,
): DecodedFrame | undefined {
  const { count, frameBytes } = head;
  const { emittedAt, provSeq, offset, length } = indexArrays(count, index);
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
export function maxProvSeq(frame: { count: number; provSeq: Float64Array }): {
  provSeq: number;
  index: number;
} {
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

/** Visitor of {@link scanLog}. */
export interface LogVisitor {
  ranges(kind: 'ack' | 'sent', buf: Buffer, bodyAt: number, bodyLength: number): void;
  damaged(at: number, length: number): void;
}

/** Walks the log frames of `buf`, resyncing past damage (one call per damaged region). */
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

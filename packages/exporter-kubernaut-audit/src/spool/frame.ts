// SPDX-License-Identifier: Apache-2.0
/*
 * On-disk framing shared by segment files and the ack log (see FORMAT.md). Pure functions over
 * Buffers: no I/O here.
 *
 *   frame  = magic (4) | crc32 (u32 LE) | bodyLength (u32 LE) | body (bodyLength bytes)
 *   crc32  covers bodyLength and body (bytes 8 .. 12 + bodyLength)
 *   record body = seq (f64 LE, safe integer) | appendedAt (f64 LE, epoch ms) | payload (UTF-8)
 *   ack body    = n × (fromSeq f64 LE | toSeq f64 LE), inclusive ranges
 */
import { crc32 } from 'node:zlib';

/** Bytes before a frame's body. */
export const FRAME_HEAD_BYTES = 12;
/** Bytes of a record frame before its payload. */
export const RECORD_HEAD_BYTES = FRAME_HEAD_BYTES + 16;
/** Largest body a frame may declare; anything larger is treated as damage. */
export const MAX_BODY_BYTES = 0x7fff_ffff;

/** Magic of a record frame in a segment file ("KAUR"). */
export const RECORD_MAGIC = Buffer.from('KAUR', 'latin1');
/** Magic of an ack frame in the ack log ("KAUA"). */
export const ACK_MAGIC = Buffer.from('KAUA', 'latin1');

/** A record to encode. */
export interface RecordInput {
  seq: number;
  appendedAt: number;
  payload: string;
  /** `Buffer.byteLength(payload)`, when the caller already knows it. */
  payloadBytes?: number;
}

/** Size on disk of a record frame with a payload of `payloadBytes` bytes. */
export function recordFrameBytes(payloadBytes: number): number {
  return RECORD_HEAD_BYTES + payloadBytes;
}

function sealFrame(buf: Buffer, at: number, magic: Buffer, bodyLength: number): void {
  magic.copy(buf, at);
  buf.writeUInt32LE(bodyLength, at + 8);
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + FRAME_HEAD_BYTES + bodyLength)), at + 4);
}

/** Encodes record frames back to back into one Buffer. */
export function encodeRecords(records: readonly RecordInput[]): Buffer {
  let total = 0;
  for (const r of records) {
    r.payloadBytes ??= Buffer.byteLength(r.payload, 'utf8');
    total += RECORD_HEAD_BYTES + r.payloadBytes;
  }
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (const r of records) {
    const n = r.payloadBytes as number;
    buf.writeDoubleLE(r.seq, at + 12);
    buf.writeDoubleLE(r.appendedAt, at + 20);
    buf.write(r.payload, at + RECORD_HEAD_BYTES, n, 'utf8');
    sealFrame(buf, at, RECORD_MAGIC, 16 + n);
    at += RECORD_HEAD_BYTES + n;
  }
  return buf;
}

/** Encodes one ack frame holding inclusive seq ranges. */
export function encodeAckRanges(ranges: ReadonlyArray<readonly [number, number]>): Buffer {
  const body = ranges.length * 16;
  const buf = Buffer.allocUnsafe(FRAME_HEAD_BYTES + body);
  let at = FRAME_HEAD_BYTES;
  for (const [from, to] of ranges) {
    buf.writeDoubleLE(from, at);
    buf.writeDoubleLE(to, at + 8);
    at += 16;
  }
  sealFrame(buf, 0, ACK_MAGIC, body);
  return buf;
}

/**
 * Checks the frame at `at`: magic, declared length within the buffer, checksum. Returns the
 * body length, or -1 when there is no intact frame there.
 */
export function checkFrame(buf: Buffer, at: number, magic: Buffer): number {
  if (at + FRAME_HEAD_BYTES > buf.length) return -1;
  if (buf.compare(magic, 0, 4, at, at + 4) !== 0) return -1;
  const bodyLength = buf.readUInt32LE(at + 8);
  if (bodyLength > MAX_BODY_BYTES || at + FRAME_HEAD_BYTES + bodyLength > buf.length) return -1;
  const crc = crc32(buf.subarray(at + 8, at + FRAME_HEAD_BYTES + bodyLength));
  return crc === buf.readUInt32LE(at + 4) ? bodyLength : -1;
}

/** Visitor of `scanFrames`. */
export interface FrameVisitor {
  /**
   * An intact frame (checksum verified) whose body starts at `bodyAt`. Return false when its
   * body is semantically invalid: it is then treated as damage and scanning resyncs past it.
   */
  frame(at: number, bodyAt: number, bodyLength: number): boolean;
  /** A damaged region [at, at + length) that was skipped. */
  damaged(at: number, length: number): void;
}

/**
 * Walks the frames of `buf`. A damaged frame (bad magic, checksum, length or body) is skipped
 * by resyncing at the next offset that holds an intact frame; the skipped bytes are reported as
 * one damaged region. Returns the end offset of the last intact frame (0 when none).
 */
export function scanFrames(buf: Buffer, magic: Buffer, visitor: FrameVisitor): number {
  let at = 0;
  let lastGoodEnd = 0;
  let damageStart = -1;
  while (at < buf.length) {
    const bodyLength = checkFrame(buf, at, magic);
    if (bodyLength >= 0 && visitor.frame(at, at + FRAME_HEAD_BYTES, bodyLength)) {
      if (damageStart >= 0) {
        visitor.damaged(damageStart, at - damageStart);
        damageStart = -1;
      }
      at += FRAME_HEAD_BYTES + bodyLength;
      lastGoodEnd = at;
      continue;
    }
    if (damageStart < 0) damageStart = at;
    const next = buf.indexOf(magic, at + 1);
    at = next < 0 ? buf.length : next;
  }
  if (damageStart >= 0) visitor.damaged(damageStart, buf.length - damageStart);
  return lastGoodEnd;
}

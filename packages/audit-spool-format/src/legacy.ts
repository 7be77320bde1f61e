// SPDX-License-Identifier: Apache-2.0
/*
 * Decoding format 1 (spools of earlier versions, migrated by the next process that opens them):
 *
 *   record frame (`<20-digit seq>.seg`) = "KAUR" | crc32 | bodyLength u32 |
 *       seq f64 | appendedAt f64 | payload `{"t":<emittedAt ms>,"e":<AuditEventRequest>}`
 *   ack frame (`acks.log`)              = "KAUA" | crc32 | bodyLength u32 | n × (from f64, to f64)
 *   crc32 covers bodyLength and body.
 *
 * Pure functions over Buffers. Invariant: a frame whose magic, length or crc does not match, or
 * that its visitor refuses, starts a damaged region, which ends at the next intact frame; a
 * fragment too short for a head at the end is a region too.
 */
import { crc32 } from 'node:zlib';

export const LEGACY_RECORD_MAGIC = Buffer.from('KAUR', 'latin1');
export const LEGACY_ACK_MAGIC = Buffer.from('KAUA', 'latin1');
const HEAD = 12;

/**
 * Walks the format 1 frames of `buf` with `magic`: `visit(bodyAt, bodyLength)` returns false to
 * refuse a frame (damage); `damaged(at, length)` is called once per damaged region, when it ends
 * (after the visit of the frame that ends it, or at the end of the buffer). Returns the number
 * of damaged regions.
 */
export function walkLegacyFrames(
  buf: Buffer,
  magic: Buffer,
  visit: (bodyAt: number, bodyLength: number) => boolean,
  damaged: (at: number, length: number) => void = () => undefined,
): number {
  let regions = 0;
  let at = 0;
  let start = -1;
  const close = (end: number) => {
    if (start >= 0) damaged(start, end - start);
    start = -1;
  };
  while (at + HEAD <= buf.length) {
    if (buf.compare(magic, 0, 4, at, at + 4) === 0) {
      const len = buf.readUInt32LE(at + 8);
      if (
        at + HEAD + len <= buf.length &&
        crc32(buf.subarray(at + 8, at + HEAD + len)) === buf.readUInt32LE(at + 4) &&
        visit(at + HEAD, len)
      ) {
        close(at);
        at += HEAD + len;
        continue;
      }
    }
    if (start < 0) {
      start = at;
      regions++;
    }
    const next = buf.indexOf(magic, at + 1);
    at = next < 0 ? buf.length : next;
  }
  if (at < buf.length && start < 0) {
    start = at;
    regions++;
  }
  close(buf.length);
  return regions;
}

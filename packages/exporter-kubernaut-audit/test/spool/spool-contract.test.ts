// SPDX-License-Identifier: Apache-2.0
/* The AuditSpool contract, shared by FileSpool and MemorySpool. */

import { cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditSpool, FileSpool, MemorySpool } from '../../src/spool/index.ts';
import { payload, payloadIndex } from './helpers.ts';

const RECORD_OVERHEAD = 28;

const kinds: Array<[string, (maxBytes?: number) => AuditSpool]> = [
  ['FileSpool', (maxBytes) => FileSpool.open({ directory: tempDir(), maxBytes, segmentBytes: 1 })],
  ['MemorySpool', (maxBytes) => new MemorySpool({ maxBytes })],
];

const opened: AuditSpool[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  cleanupTempDirs();
});

describe.each(kinds)('%s', (kind, make) => {
  const open = (maxBytes?: number) => {
    const s = make(maxBytes);
    opened.push(s);
    return s;
  };

  it('reports its kind and a uuid producer id', () => {
    const s = open();
    expect(s.kind).toBe(kind === 'FileSpool' ? 'file' : 'memory');
    expect(s.producerId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('appends with consecutive seqs and reads back in order', () => {
    const s = open();
    const r1 = s.append([payload(0), payload(1), payload(2)]);
    expect(r1).toEqual({ appended: 3, dropped: 0, firstSeq: 1 });
    const r2 = s.append([payload(3)]);
    expect(r2.firstSeq).toBe(4);
    expect(s.append([])).toEqual({ appended: 0, dropped: 0 });
    const all = s.readUnacked(100);
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(all.map((e) => payloadIndex(e.payload))).toEqual([0, 1, 2, 3]);
    expect(all[0]!.payload).toBe(payload(0));
    expect(all.every((e) => e.appendedAt > 0 && e.appendedAt <= Date.now())).toBe(true);
    expect(s.readUnacked(2).map((e) => e.seq)).toEqual([1, 2]);
    expect(s.readUnacked(2, 2).map((e) => e.seq)).toEqual([3, 4]);
    expect(s.readUnacked(10, 4)).toEqual([]);
    expect(s.readUnacked(0)).toEqual([]);
  });

  it('returns only unacknowledged entries after out-of-order acks', () => {
    const s = open();
    s.append(Array.from({ length: 10 }, (_, i) => payload(i)));
    s.ack([7, 2, 9]);
    s.ack([2, 2, 12345, -1, 1.5]); // repeated and unknown seqs are ignored
    expect(s.readUnacked(100).map((e) => e.seq)).toEqual([1, 3, 4, 5, 6, 8, 10]);
    expect(s.readUnacked(3, 2).map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(s.readUnacked(2, 6).map((e) => e.seq)).toEqual([8, 10]);
    expect(s.stats().records).toBe(7);
    s.ack([1, 3, 4, 5, 6, 8, 10]);
    expect(s.readUnacked(100)).toEqual([]);
    expect(s.stats()).toMatchObject({ records: 0, bytes: 0 });
    expect(s.stats().oldestAppendedAt).toBeUndefined();
    expect(s.append([payload(99)]).firstSeq).toBe(11);
  });

  it('counts live bytes and the oldest record', () => {
    const s = open();
    const p = ['a', 'é€'];
    s.append(p);
    const st = s.stats();
    expect(st.records).toBe(2);
    expect(st.bytes).toBe(2 * RECORD_OVERHEAD + 1 + 5);
    expect(st.oldestAppendedAt).toBe(s.readUnacked(1)[0]!.appendedAt);
    expect(st.corruptedSkipped).toBe(0);
    expect(st.droppedFull).toBe(0);
  });

  it('drops what does not fit maxBytes, reports which, counts it; acks free space', () => {
    const frame = RECORD_OVERHEAD + 100;
    const s = open(3 * frame + 10);
    const p = (i: number, n = 100) => `${i}`.padEnd(n, '.');
    const r = s.append([p(0), p(1), p(2, 500), p(3), p(4)]);
    expect(r.appended).toBe(3);
    expect(r.dropped).toBe(2);
    expect(r.droppedIndexes).toEqual([2, 4]);
    expect(r.firstSeq).toBe(1);
    expect(s.readUnacked(10).map((e) => e.payload[0])).toEqual(['0', '1', '3']);
    expect(s.stats().droppedFull).toBe(2);
    expect(s.append([p(5)])).toMatchObject({ appended: 0, dropped: 1, droppedIndexes: [0] });
    expect(s.stats().droppedFull).toBe(3);
    s.ack([1]);
    expect(s.append([p(6)])).toMatchObject({ appended: 1, dropped: 0, firstSeq: 4 });
    expect(s.stats()).toMatchObject({ records: 3, bytes: 3 * frame, droppedFull: 3 });
  });

  it('rejects non-string payloads with an error result, never a throw', () => {
    const s = open();
    const r = s.append(['ok', 42 as unknown as string, 'ok2']);
    expect(r).toMatchObject({ appended: 2, dropped: 1, droppedIndexes: [1], firstSeq: 1 });
    expect(r.error).toBeInstanceOf(TypeError);
    expect(s.stats().droppedInvalid).toBe(1);
  });

  it('after close: append drops with an error, reads are empty, nothing throws', () => {
    const s = open();
    s.append(['x']);
    s.close();
    s.close();
    const r = s.append(['y']);
    expect(r).toMatchObject({ appended: 0, dropped: 1 });
    expect(r.error?.message).toMatch(/closed/);
    expect(() => s.ack([1])).not.toThrow();
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * The dead-letter file: bounded by the file's real size (also with two writers on one file,
 * behaviour 9c of issue 11), sanitised and size-capped entries that always keep the seq, in
 * bounded time for hostile values (behaviour 8: a DAG of shared references, BigInt).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, readJsonLines, tempDir } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { DeadLetterFile, MAX_ENTRY_CHARS } from '../../src/spool/dead-letter.ts';

afterEach(cleanupTempDirs);

const prov = (seq: number) => ({ producer_id: 'p', session_id: 's', seq });

describe('dead-letter file', () => {
  it('never grows past maxBytes, measured on the real file, with two writers', () => {
    const path = join(tempDir(), 'dl', 'dead-letter.jsonl');
    const dropped: Array<[number, string]> = [];
    const a = new DeadLetterFile({
      path,
      maxBytes: 64 * 1024,
      onDropped: (n, r) => dropped.push([n, r]),
    });
    const b = new DeadLetterFile({ path, maxBytes: 64 * 1024 });
    const entry = (i: number) => ({
      reason: 'invalid_type',
      detail: 'x'.repeat(400),
      event: { i },
      provenance: prov(i),
    });
    for (let i = 0; i < 200; i++) (i % 2 === 0 ? a : b).write([entry(i)]);
    expect(statSync(path).size).toBeLessThanOrEqual(64 * 1024);
    expect(a.written + b.written).toBeGreaterThan(50);
    expect(a.dropped + b.dropped).toBe(200 - a.written - b.written);
    expect(dropped.every(([, r]) => r === 'max_bytes')).toBe(true);
    a.close();
    b.close();
  });

  it('sanitises hostile values in bounded time and size, and always keeps the seq', () => {
    const path = join(tempDir(), 'dead-letter.jsonl');
    const f = new DeadLetterFile({ path });
    // A 23-level DAG of shared references: 2^23 paths, one object per level.
    let dag: Record<string, unknown> = { leaf: 'x'.repeat(100) };
    for (let i = 0; i < 23; i++) dag = { a: dag, b: dag };
    f.write([
      { reason: 'event_data_too_deep', detail: 'd', event: { body: dag }, provenance: prov(7) },
      {
        reason: 'invalid_type',
        detail: 'd',
        event: { body: 12345678901234567890n },
        provenance: prov(8),
      },
      {
        reason: 'too_large',
        detail: 'd',
        event: { body: { s: 'y'.repeat(5_000_000) } },
        provenance: prov(9),
      },
    ]);
    const lines = readJsonLines(path);
    expect(
      lines.map((l) => (l.event as { audit_provenance: { seq: number } }).audit_provenance.seq),
    ).toEqual([7, 8, 9]);
    expect((lines[1]?.event as { body: string }).body).toBe('12345678901234567890n');
    for (const line of readFileSync(path, 'utf8').trim().split('\n')) {
      expect(line.length).toBeLessThan(MAX_ENTRY_CHARS + 4096);
    }
    // The DAG was written once per object (2^23 expansions would not fit the cap at all).
    expect(JSON.stringify(lines[0])).toContain('[shared reference]');
    f.close();
  });

  it('writes a valid line, with the rest of the record, when reading a value throws (a Proxy, a getter)', () => {
    const path = join(tempDir(), 'dead-letter.jsonl');
    const f = new DeadLetterFile({ path });
    const boom = (what: string) => () => {
      throw new Error(what);
    };
    const hostile = {
      // every trap that a walk may reach throws
      proxy: new Proxy({}, { ownKeys: boom('ownKeys'), get: boom('get') }),
      getter: Object.defineProperty({ ok: 1 }, 'bad', { get: boom('getter'), enumerable: true }),
      prototype: new Proxy({}, { getPrototypeOf: boom('getPrototypeOf') }),
      revoked: (() => {
        const r = Proxy.revocable({}, {});
        r.revoke();
        return r.proxy;
      })(),
      array: new Proxy([1, 2], { get: boom('array get') }),
      // what is thrown is hostile too: an Error whose message cannot be made a string
      error: new Proxy(
        {},
        {
          ownKeys: () => {
            const e = new Error();
            Object.defineProperty(e, 'message', {
              get: () => ({
                toString: () => {
                  throw new Error('no string');
                },
              }),
            });
            throw e;
          },
        },
      ),
    };
    const entries = Object.entries(hostile).map(([kind, body], i) => ({
      reason: 'invalid_type',
      detail: kind,
      event: { event_name: `e-${kind}`, body },
      provenance: prov(20 + i),
    }));
    // The whole event a Proxy too (a snapshot that cannot be read at all).
    entries.push({
      reason: 'invalid_type',
      detail: 'whole',
      event: new Proxy({}, { ownKeys: boom('whole') }) as never,
      provenance: prov(30),
    });
    expect(f.write(entries)).toBe(entries.length);
    const text = readFileSync(path, 'utf8').trim().split('\n');
    expect(text).toHaveLength(entries.length);
    const lines = text.map(
      (l) => JSON.parse(l) as { detail: string; event: Record<string, unknown> },
    );
    expect(lines.map((l) => (l.event.audit_provenance as { seq: number }).seq)).toEqual([
      20, 21, 22, 23, 24, 25, 30,
    ]);
    for (const l of lines.slice(0, 6)) expect(l.event.event_name).toBe(`e-${l.detail}`);
    expect(lines[0]?.event.body).toBe('[unreadable: ownKeys]');
    expect(lines[1]?.event.body).toEqual({ ok: 1, bad: '[unreadable: getter]' });
    expect(lines[5]?.event.body).toBe('[unreadable: unknown error]');
    expect(JSON.stringify(lines[6]?.event)).toContain('[unreadable: whole]');
    f.close();
  });
});

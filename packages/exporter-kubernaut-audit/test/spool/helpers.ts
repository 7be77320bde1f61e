// SPDX-License-Identifier: Apache-2.0
/* Helpers of the spool tests: encoded events with an id, and what a spool hands back. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs } from '@kubernaut/test-kit';
import { afterEach } from 'vitest';
import { openSpool, type Spool } from '../../src/spool/index.ts';
import type { AuditSpool, EncodedEvent, Frame } from '../../src/spool/types.ts';

/**
 * The spool opener of a test file: spools (fsync once a minute: tests read what they wrote)
 * closed after each test, with the temp directories.
 */
export function spoolOpener(): (
  directory: string | undefined,
  extra?: Parameters<typeof openSpool>[0],
) => Spool {
  const open: Spool[] = [];
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    cleanupTempDirs();
  });
  return (directory, extra = {}) => {
    const s = openSpool({ directory, fsyncIntervalMillis: 60_000, ...extra });
    open.push(s);
    return s;
  };
}

/** An encoded event carrying `id` (multi-byte characters included), `size` characters long. */
export function event(id: number, lane = 0, size = 200): EncodedEvent {
  const head = `{"id":${id},"s":"é€😀`;
  const json = `${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`;
  return {
    json,
    bytes: Buffer.byteLength(json),
    emittedAt: 1_700_000_000_000 + id,
    provSeq: id,
    lane,
  };
}

/** Events with ids from..to-1, lane = id % lanes, grouped per lane (the append contract). */
export function events(from: number, to: number, lanes = 1, size = 200): EncodedEvent[] {
  const out: EncodedEvent[] = [];
  for (let l = 0; l < lanes; l++) {
    for (let id = from; id < to; id++) if (id % lanes === l) out.push(event(id, l, size));
  }
  return out;
}

/** The ids of the events of `frames` that are not acknowledged, with their seqs. */
export function pendingIds(spool: AuditSpool, frames: readonly Frame[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const f of frames) {
    const body = JSON.parse(f.body.toString('utf8')) as Array<{ id: number }>;
    for (let i = 0; i < f.count; i++) {
      if (!spool.isAcked(f.firstSeq + i))
        out.push([f.firstSeq + i, (body[i] as { id: number }).id]);
    }
  }
  return out;
}

/** Every pending (seq, id) of the spool, all lanes, in seq order. */
export function allPending(spool: AuditSpool): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let lane = 0; lane < spool.meta.lanes; lane++) {
    out.push(...pendingIds(spool, spool.readLane(lane, 0, Number.MAX_SAFE_INTEGER)));
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Segment files of a spool directory, oldest first. */
export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.kaf'))
    .sort()
    .map((n) => join(dir, n));
}

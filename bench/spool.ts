// SPDX-License-Identifier: Apache-2.0
/*
 * Micro-benchmark of the audit spool: the segment log (format 2 frames) against node:sqlite
 * (DatabaseSync, WAL, synchronous=NORMAL) doing the same work, side by side in one run.
 *
 *   node_modules/.bin/node --conditions=@kubernaut/source bench/spool.ts [--quick]
 *
 * Measures per-record append cost for batches of 512 records of ~1 KiB (durability 'batch',
 * one BLRP batch per call) and for single-record appends (durability 'sync'), with the default
 * fsync cadence and with an fsync on every append, and read+ack throughput (read 500, ack 500).
 * Each case runs on both candidates alternately, three times (once with --quick); medians shown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { type EncodedEvent, openSpool } from '@kubernaut/exporter-kubernaut-audit/experimental';

const quick = process.argv.includes('--quick');
const BATCHES = quick ? 20 : 100;
const BATCH = 512;
const SINGLES = quick ? 2000 : 10_000;
const SINGLES_FSYNC = quick ? 200 : 1000;

interface Candidate {
  append(payloads: string[]): void;
  read(limit: number): Array<{ seq: number }>;
  ack(seqs: number[]): void;
  close(): void;
}

function fileCandidate(dir: string, fsyncEvery: boolean): Candidate {
  const s = openSpool({ directory: dir, lanes: 1, fsyncIntervalMillis: fsyncEvery ? 0 : 1000 });
  let cursor = 0;
  return {
    append: (p) => {
      const events: EncodedEvent[] = p.map((json, i) => ({
        json,
        bytes: Buffer.byteLength(json),
        emittedAt: 0,
        provSeq: i,
        lane: 0,
      }));
      if (s.append(events).dropped.length > 0) throw new Error('append dropped');
    },
    read: (n) => {
      const out: Array<{ seq: number }> = [];
      for (const f of s.readLane(0, cursor, n * 1024)) {
        for (let i = 0; i < f.count && out.length < n; i++) {
          if (f.firstSeq + i > cursor) out.push({ seq: f.firstSeq + i });
        }
      }
      const last = out[out.length - 1];
      if (last !== undefined) cursor = last.seq;
      return out;
    },
    ack: (seqs) => {
      if (seqs.length > 0)
        s.ack([{ from: seqs[0] as number, to: seqs[seqs.length - 1] as number }]);
    },
    close: () => s.close(),
  };
}

function sqliteCandidate(dir: string, fsyncEvery: boolean): Candidate {
  const db = new DatabaseSync(join(dir, 'spool.db'));
  db.exec('PRAGMA journal_mode=WAL');
  db.exec(`PRAGMA synchronous=${fsyncEvery ? 'FULL' : 'NORMAL'}`);
  db.exec(
    'CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, appended_at INTEGER, payload TEXT)',
  );
  const ins = db.prepare('INSERT INTO records (appended_at, payload) VALUES (?, ?)');
  const sel = db.prepare('SELECT seq, appended_at, payload FROM records ORDER BY seq LIMIT ?');
  // One statement per ack call (acks may be out of order, so no range delete).
  const del = db.prepare('DELETE FROM records WHERE seq IN (SELECT value FROM json_each(?))');
  return {
    append: (p) => {
      const now = Date.now();
      db.exec('BEGIN');
      for (const x of p) ins.run(now, x);
      db.exec('COMMIT');
    },
    read: (n) => sel.all(n) as Array<{ seq: number }>,
    ack: (seqs) => {
      del.run(JSON.stringify(seqs));
    },
    close: () => db.close(),
  };
}

function payload(i: number): string {
  const base = JSON.stringify({
    event_type: 'aiagent.response.complete',
    correlation_id: `corr-${i % 97}`,
    event_data: { event_type: 'aiagent.response.complete', i },
  });
  return base + ' '.repeat(Math.max(0, 1024 - base.length));
}

function timeIt(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

interface Row {
  case: string;
  file: number;
  sqlite: number;
  unit: string;
}

function run(kind: 'file' | 'sqlite', fsyncEvery: boolean, body: (c: Candidate) => number): number {
  const dir = mkdtempSync(join(tmpdir(), `spool-bench-${kind}-`));
  const c = kind === 'file' ? fileCandidate(dir, fsyncEvery) : sqliteCandidate(dir, fsyncEvery);
  try {
    return body(c);
  } finally {
    c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const payloads = Array.from({ length: BATCH }, (_, i) => payload(i));

const batchAppend = (c: Candidate) => {
  c.append(payloads); // warm-up
  const ms = timeIt(() => {
    for (let b = 0; b < BATCHES; b++) c.append(payloads);
  });
  return (ms * 1000) / (BATCHES * BATCH); // µs per record
};
const singleAppend = (n: number) => (c: Candidate) => {
  const one = [payloads[0]!];
  c.append(one);
  const ms = timeIt(() => {
    for (let i = 0; i < n; i++) c.append(one);
  });
  return (ms * 1000) / n;
};
const readAck = (c: Candidate) => {
  for (let b = 0; b < BATCHES; b++) c.append(payloads);
  let total = 0;
  const ms = timeIt(() => {
    for (;;) {
      const got = c.read(500);
      if (got.length === 0) break;
      total += got.length;
      c.ack(got.map((e) => e.seq));
    }
  });
  if (total !== BATCHES * BATCH) throw new Error(`read ${total} of ${BATCHES * BATCH}`);
  return total / (ms / 1000); // records per second
};

const rows: Row[] = [];
const REPEATS = quick ? 1 : 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Runs a case on both candidates, alternating, REPEATS times; reports medians. */
const both = (name: string, unit: string, fsyncEvery: boolean, body: (c: Candidate) => number) => {
  const file: number[] = [];
  const sqlite: number[] = [];
  for (let k = 0; k < REPEATS; k++) {
    file.push(run('file', fsyncEvery, body));
    sqlite.push(run('sqlite', fsyncEvery, body));
  }
  rows.push({ case: name, file: median(file), sqlite: median(sqlite), unit });
};
both(
  `append, batches of ${BATCH} × 1 KiB, fsync cadence 1 s / NORMAL`,
  'µs/record',
  false,
  batchAppend,
);
both(
  `append, single records ('sync'), fsync cadence 1 s / NORMAL`,
  'µs/record',
  false,
  singleAppend(SINGLES),
);
both(
  `append, single records, fsync every append / FULL`,
  'µs/record',
  true,
  singleAppend(SINGLES_FSYNC),
);
both(`read 500 + ack 500 until empty`, 'records/s', false, readAck);

console.log(
  `spool micro-benchmark (node ${process.version}, ${BATCHES}×${BATCH} records of ~1 KiB, median of ${REPEATS})`,
);
console.log('| case | segment log | node:sqlite | segment log advantage |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  const fmt = (x: number) =>
    r.unit === 'records/s' ? Math.round(x).toLocaleString('en') : x.toFixed(2);
  // > 1 means the segment log is better (less time per record, or more records per second).
  const ratio = r.unit === 'records/s' ? r.file / r.sqlite : r.sqlite / r.file;
  console.log(
    `| ${r.case} (${r.unit}) | ${fmt(r.file)} | ${fmt(r.sqlite)} | ${ratio.toFixed(2)}× |`,
  );
}

// SPDX-License-Identifier: Apache-2.0
/*
 * SIGKILL mid-appends: a real child process appends batches as fast as it can and reports each
 * append (and ack) after it returned; it is killed with SIGKILL at an arbitrary moment. Every
 * reported append must be recovered with its payload, and no reported ack may come back.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import { afterEach, expect, it } from 'vitest';
import { FileSpool } from '../../src/spool/index.ts';
import { payload } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/append-child.ts', import.meta.url));
const EXIT_CHILD = fileURLToPath(new URL('./fixtures/exit-without-close.ts', import.meta.url));
const WRITE_ERROR_CHILD = fileURLToPath(
  new URL('./fixtures/write-error-child.ts', import.meta.url),
);

afterEach(cleanupTempDirs);

interface Report {
  appended: Map<number, number>; // seq -> payload index
  acked: Set<number>;
}

/** Runs the child until it has reported `killAfter` appends, then SIGKILLs it. */
function runAndKill(directory: string, killAfter: number): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@kubernaut/source', CHILD, directory], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const report: Report = { appended: new Map(), acked: new Set() };
    let buffered = '';
    let appends = 0;
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [tag, ...nums] = line.split(' ');
        if (tag === 'A') {
          const [firstSeq, n, firstIndex] = nums.map(Number) as [number, number, number];
          for (let k = 0; k < n; k++) report.appended.set(firstSeq + k, firstIndex + k);
          appends++;
        } else if (tag === 'K') {
          for (const s of nums) report.acked.add(Number(s));
        }
      }
      if (appends >= killAfter && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`child ended with code ${code} signal ${signal}: ${stderr}`));
      } else {
        resolve(report);
      }
    });
  });
}

it('every append that returned before SIGKILL is recovered; every returned ack stays acked', async () => {
  const directory = tempDir();
  const reports: Report[] = [];
  // Two crashes in a row on the same spool: the second child recovers the first one's records.
  reports.push(await runAndKill(directory, 80));
  reports.push(await runAndKill(directory, 60));

  const spool = FileSpool.open({ directory });
  try {
    const entries = spool.readUnacked(1e9);
    const bySeq = new Map(entries.map((e) => [e.seq, e.payload]));
    let checked = 0;
    for (const r of reports) {
      expect(r.appended.size).toBeGreaterThan(500);
      for (const [seq, index] of r.appended) {
        if (r.acked.has(seq)) {
          expect(bySeq.has(seq)).toBe(false);
        } else {
          expect(bySeq.get(seq)).toBe(payload(index, 100 + (index % 900)));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    // Seqs of the second child continue after the first's: no seq was reused.
    const firstMax = Math.max(...reports[0]!.appended.keys());
    expect(Math.min(...reports[1]!.appended.keys())).toBeGreaterThan(firstMax);
    // Seqs ascend; at most a torn tail per crash was skipped.
    const seqs = entries.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(spool.stats().corruptedSkipped).toBeLessThanOrEqual(1);
  } finally {
    spool.close();
  }
});

it('an open spool does not keep the process alive; what it left is recovered by the next process', () => {
  const directory = tempDir();
  const r = spawnSync(process.execPath, ['--conditions=@kubernaut/source', EXIT_CHILD, directory], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.signal).toBeNull(); // not killed by the timeout: the fsync and heartbeat timers are unref'd
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe('1');
  const spool = FileSpool.open({ directory }); // takes over the dead child's lock
  try {
    expect(spool.readUnacked(10).map((e) => e.payload)).toEqual(['left behind']);
  } finally {
    spool.close();
  }
});

it('a failed write (EFBIG under ulimit -f) drops the call with an error, leaves no partial frame, never throws', () => {
  const directory = tempDir();
  // 200 blocks of 512 bytes: room for the first two 30 KB records, not for the next two.
  const r = spawnSync(
    '/bin/sh',
    [
      '-c',
      'ulimit -f 200 && exec "$0" --conditions=@kubernaut/source "$1" "$2"',
      process.execPath,
      WRITE_ERROR_CHILD,
      directory,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as {
    results: Array<{ appended: number; dropped: number; error: string | null }>;
    stats: { records: number; droppedWriteError: number };
  };
  expect(out.results[0]).toEqual({ appended: 2, dropped: 0, error: null });
  for (const res of out.results.slice(1, 4)) {
    expect(res).toMatchObject({ appended: 0, dropped: 2 });
    expect(res.error).toMatch(/EFBIG/);
  }
  expect(out.results[4]).toEqual({ appended: 1, dropped: 0, error: null });
  expect(out.stats).toMatchObject({ records: 3, droppedWriteError: 6 });
  const spool = FileSpool.open({ directory });
  try {
    expect(spool.readUnacked(10).map((e) => [e.seq, e.payload.length])).toEqual([
      [1, 30_000],
      [2, 30_000],
      [3, 5],
    ]);
    expect(spool.stats().corruptedSkipped).toBe(0);
  } finally {
    spool.close();
  }
});

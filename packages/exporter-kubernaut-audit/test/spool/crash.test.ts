// SPDX-License-Identifier: Apache-2.0
/*
 * SIGKILL mid-appends: a real child process appends batches as fast as it can and reports each
 * append (and ack) after it returned; it is killed with SIGKILL at an arbitrary moment. Every
 * reported append is recovered, and no reported ack comes back.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { afterEach, expect, it } from 'vitest';
import { openSpool } from '../../src/spool/index.ts';
import { allPending } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/append-child.ts', import.meta.url));
afterEach(cleanupTempDirs);

function runAndKill(
  dir: string,
  killAfter: number,
): Promise<{
  appended: Set<number>;
  ackedSeqs: Array<[number, number]>;
  ackBegun: number;
}> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const appended = new Set<number>();
    const ackedSeqs: Array<[number, number]> = [];
    let ackBegun = 0;
    let buf = '';
    let appends = 0;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        const [tag, a, b] = line.split(' ');
        if (tag === 'A') {
          for (let k = 0; k < Number(b); k++) appended.add(Number(a) + k);
          appends++;
        } else if (tag === 'K') ackedSeqs.push([Number(a), Number(b)]);
        else if (tag === 'k') ackBegun += Number(b) - Number(a) + 1;
      }
      if (appends >= killAfter && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('error', reject);
    // 'close', not 'exit': the lines still in the pipe when the child dies are read first.
    child.on('close', (_code, signal) => {
      if (signal === 'SIGKILL') resolve({ appended, ackedSeqs, ackBegun });
      else reject(new Error(`child exited without SIGKILL (${signal})`));
    });
  });
}

it('recovers every append that returned before SIGKILL, and no acknowledged record', async () => {
  const dir = tempDir();
  const { appended, ackedSeqs, ackBegun } = await runAndKill(dir, 200);
  const spool = openSpool({ directory: dir });
  const pending = allPending(spool);
  const pendingIds = new Set(pending.map(([, id]) => id));
  const pendingSeqs = new Set(pending.map(([seq]) => seq));
  let ackedCount = 0;
  for (const [from, to] of ackedSeqs) {
    for (let s = from; s <= to; s++) {
      expect(pendingSeqs.has(s)).toBe(false);
      ackedCount++;
    }
  }
  const missing = [...appended].filter((id) => !pendingIds.has(id));
  // Only acknowledged ones are gone: every ack that returned, and at most the one the kill
  // interrupted.
  expect(missing.length).toBeGreaterThanOrEqual(ackedCount);
  expect(missing.length).toBeLessThanOrEqual(ackBegun);
  expect(appended.size).toBeGreaterThan(1000);
  spool.close();
}, 60_000);

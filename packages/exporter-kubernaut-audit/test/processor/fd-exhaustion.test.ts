// SPDX-License-Identifier: Apache-2.0
/*
 * A host process out of file descriptors (a leak elsewhere in the application, or a low
 * `ulimit -n`): the spool cannot create its segment file and the exporter cannot open a socket.
 * emit() must not throw, forceFlush() must not report the records delivered, and once the
 * descriptors come back every record is delivered, once. A real child process under a real
 * kernel limit (`ulimit -n`), a real loopback DataStorage.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeBinary, tempDir } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';
import { deliveredIds, faultServerForFile } from './fixtures/harness.ts';

const CHILD = fileURLToPath(new URL('./fixtures/fd-exhaustion-child.ts', import.meta.url));
const COUNT = 600;
const ds = await faultServerForFile();

function runChild(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // `ulimit -n` in the shell that then becomes Node: the limit is the kernel's, not simulated.
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'ulimit -n 256 && exec "$0" "$@"',
      nodeBinary(),
      '--conditions=@kubernaut/source',
      CHILD,
    ],
    {
      env: { ...process.env, DS_URL: ds.url, SPOOL_DIR: tempDir(), COUNT: String(COUNT) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('a process out of file descriptors (EMFILE)', () => {
  it('keeps every record, says why, and delivers them all once descriptors return', async () => {
    const before = deliveredIds(ds).length;
    const r = await runChild();
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      held: number;
      refusal: string;
      threw: number;
      whileExhausted: string;
      afterRelease: string;
    };
    expect(seen.refusal).toBe('EMFILE');
    expect(seen.held).toBeGreaterThan(0);
    // Nothing thrown into the application; no flush that pretends delivery.
    expect(seen.threw).toBe(0);
    // The flush's error says where the records are: in memory, not on disk.
    expect(seen.whileExhausted).toMatch(
      /^rejected: .*timed out after 1500 ms with 600 record\(s\) not yet delivered \(600 of them held in memory only: the spool directory cannot be written now\)/,
    );
    expect(seen.afterRelease).toBe('resolved');
    // Said on stderr (no diag logger registered): the spool is held in memory, and why.
    expect(r.stderr).toMatch(/held in memory/);
    expect(r.stderr).toContain('EMFILE');
    // Every record arrived, none twice.
    const ids = deliveredIds(ds).slice(before);
    expect(new Set(ids).size).toBe(COUNT);
    expect(ids).toHaveLength(COUNT);
  }, 60_000);
});

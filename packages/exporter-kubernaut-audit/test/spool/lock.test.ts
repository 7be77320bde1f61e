// SPDX-License-Identifier: Apache-2.0
/*
 * One live process per spool directory, by a lock the kernel releases when its holder dies
 * (behaviour 9b of issue 11): a second process is refused while the first lives; after SIGKILL
 * of the holder the directory is free at once — also when its owner file names another host
 * (a new pod on a shared volume). In one process, a second spool on a held directory is
 * memory-only and takes the directory over once it is released.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { openSpool } from '../../src/spool/index.ts';
import { allPending, events } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/hold-lock-child.ts', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  cleanupTempDirs();
});

function holder(dir: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD, dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ child, line: buf.slice(0, nl) });
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before answering`)));
  });
}

describe('spool lock', () => {
  it('refuses a second live process; frees the directory at once when the holder is killed', async () => {
    const dir = tempDir();
    const first = await holder(dir);
    expect(first.line).toMatch(/^OPEN /);
    const second = await holder(dir);
    expect(second.line).toMatch(/^LOCKED .*pid/);
    // The holder dies without closing (SIGKILL); its owner file claims another host.
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    writeFileSync(join(dir, 'lock.owner'), JSON.stringify({ pid: 1, hostname: 'old-pod-7f9c' }));
    const started = Date.now();
    const third = await holder(dir);
    expect(third.line).toMatch(/^OPEN /);
    expect(Date.now() - started).toBeLessThan(10_000); // not a 60 s staleness wait
    third.child.stdin?.end();
  });

  it('in one process: a second spool on a held directory is memory-only, and takes it over once released', () => {
    const dir = tempDir();
    const a = openSpool({ directory: dir, lanes: 1 });
    a.append(events(0, 2));
    const b = openSpool({ directory: dir, lanes: 1 });
    expect(b.kind).toBe('memory');
    expect(b.lastError?.message).toMatch(/locked/);
    b.append(events(10, 12));
    a.close();
    b.retryNow();
    expect(b.kind).toBe('file');
    // The predecessor's records come after those appended meanwhile (seqs), all delivered.
    expect(allPending(b).map(([, id]) => id)).toEqual([10, 11, 0, 1]);
    b.close();
  });

  it('taking the lock creates no file but lock.db: a restart on a full volume can take it', () => {
    const dir = tempDir();
    openSpool({ directory: dir, lanes: 1 }).close(); // lock.db exists, as after any run
    const before = new Set(readdirSync(dir));
    const s = openSpool({ directory: dir, lanes: 1 });
    expect(s.kind).toBe('file');
    // No journal beside lock.db (SQLite's rollback journal needs room on the volume).
    expect(readdirSync(dir).filter((f) => f.startsWith('lock.db') && !before.has(f))).toEqual([]);
    expect(readdirSync(dir)).not.toContain('lock.db-journal');
    s.close();
  });
});

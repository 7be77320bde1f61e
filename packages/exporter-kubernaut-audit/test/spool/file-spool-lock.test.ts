// SPDX-License-Identifier: Apache-2.0
/* Exclusive ownership, stale-lock takeover, meta.json, and the memory fallback of openSpool. */
import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSpool, MemorySpool, openSpool, SpoolOpenError } from '../../src/spool/index.ts';
import { payload } from './helpers.ts';

const HOLDER = fileURLToPath(new URL('./fixtures/hold-lock-child.ts', import.meta.url));

const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  cleanupTempDirs();
});

function openErr(fn: () => unknown): SpoolOpenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SpoolOpenError);
    return err as SpoolOpenError;
  }
  throw new Error('expected a SpoolOpenError');
}

/** A pid that certainly belongs to no live process: a child that already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
  expect(r.status).toBe(0);
  return r.pid as number;
}

function startHolder(directory: string): Promise<ChildProcessByStdio<Writable, Readable, null>> {
  const child = spawn(process.execPath, ['--conditions=@kubernaut/source', HOLDER, directory], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) =>
      d.toString().startsWith('OPEN') ? resolve(child) : reject(new Error(d.toString())),
    );
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
}

describe('FileSpool lock', () => {
  it('a second open in the same process while the first is open → locked; after close → ok', () => {
    const directory = tempDir();
    const a = FileSpool.open({ directory });
    opened.push(a);
    const err = openErr(() => FileSpool.open({ directory }));
    expect(err.code).toBe('locked');
    a.close();
    expect(existsSync(join(directory, 'lock'))).toBe(false);
    opened.push(FileSpool.open({ directory }));
  });

  it('a live process on this host holds the lock → locked; once it exits, we open and recover', async () => {
    const directory = tempDir();
    const child = await startHolder(directory);
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const owner = JSON.parse(readFileSync(join(directory, 'lock'), 'utf8')) as {
        pid: number;
        hostname: string;
      };
      expect(owner).toMatchObject({ pid: child.pid, hostname: hostname() });
      const err = openErr(() => FileSpool.open({ directory }));
      expect(err.code).toBe('locked');
      expect(err.message).toContain(String(child.pid));
    } finally {
      child.stdin.end();
    }
    await exited;
    opened.push(FileSpool.open({ directory }));
  });

  it('a stale lock (owner pid dead on this host) is taken over and its records recovered', () => {
    const directory = tempDir();
    const a = FileSpool.open({ directory });
    a.append([payload(1), payload(2)]);
    a.close();
    const pid = deadPid();
    writeFileSync(
      join(directory, 'lock'),
      JSON.stringify({ pid, hostname: hostname(), lockedAt: Date.now() }),
    );
    const b = FileSpool.open({ directory });
    opened.push(b);
    expect(b.readUnacked(10).map((e) => e.payload)).toEqual([payload(1), payload(2)]);
    const owner = JSON.parse(readFileSync(join(directory, 'lock'), 'utf8')) as { pid: number };
    expect(owner.pid).toBe(process.pid);
  });

  it('several processes racing for a spool with a stale lock: exactly one gets it', async () => {
    const directory = tempDir();
    writeFileSync(
      join(directory, 'lock'),
      JSON.stringify({ pid: deadPid(), hostname: hostname(), lockedAt: Date.now() }),
    );
    const children = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--conditions=@kubernaut/source', HOLDER, directory], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const exits = children.map((c) => new Promise((r) => c.once('exit', r)));
    const answers = await Promise.all(
      children.map(
        (c) =>
          new Promise<string>((resolve, reject) => {
            c.stdout.once('data', (d: Buffer) => resolve(d.toString().split(' ')[0]!));
            c.once('error', reject);
            c.once('exit', (code) => resolve(`EXIT ${code}`));
          }),
      ),
    );
    for (const c of children) c.stdin.end();
    await Promise.all(exits);
    expect(answers.filter((a) => a === 'OPEN')).toHaveLength(1);
    expect(answers.filter((a) => a === 'LOCKED')).toHaveLength(3);
  });

  it('a lock naming our own pid but not held by this process (pid reuse) is stale', () => {
    const directory = tempDir();
    writeFileSync(
      join(directory, 'lock'),
      JSON.stringify({ pid: process.pid, hostname: hostname(), procStart: '1', lockedAt: 0 }),
    );
    opened.push(FileSpool.open({ directory }));
  });

  it('a live pid whose start time differs from the lock (pid reused) is stale; a matching one is live', async () => {
    const directory = tempDir();
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    try {
      const pid = other.pid as number;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const procStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      const lock = join(directory, 'lock');
      writeFileSync(lock, JSON.stringify({ pid, hostname: hostname(), procStart, lockedAt: 0 }));
      expect(openErr(() => FileSpool.open({ directory })).code).toBe('locked');
      writeFileSync(
        lock,
        JSON.stringify({ pid, hostname: hostname(), procStart: '1', lockedAt: 0 }),
      );
      opened.push(FileSpool.open({ directory }));
    } finally {
      const exited = new Promise((r) => other.once('exit', r));
      other.kill('SIGKILL');
      await exited;
    }
  });

  it('a lock from another host: live while its heartbeat is fresh, stale once it is old', () => {
    const directory = tempDir();
    const lock = join(directory, 'lock');
    writeFileSync(
      lock,
      JSON.stringify({ pid: 1, hostname: 'some-other-host', lockedAt: Date.now() }),
    );
    expect(openErr(() => FileSpool.open({ directory, foreignLockStaleMillis: 60_000 })).code).toBe(
      'locked',
    );
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    opened.push(FileSpool.open({ directory, foreignLockStaleMillis: 60_000 }));
  });

  it('a garbled lock file is taken over once old, not while fresh', () => {
    const directory = tempDir();
    const lock = join(directory, 'lock');
    writeFileSync(lock, '{"pid":');
    expect(openErr(() => FileSpool.open({ directory })).code).toBe('locked');
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    opened.push(FileSpool.open({ directory }));
  });
});

describe('meta.json', () => {
  it('holds a stable producer id, written once', () => {
    const directory = tempDir();
    const a = FileSpool.open({ directory });
    const id = a.producerId;
    a.close();
    const meta = JSON.parse(readFileSync(join(directory, 'meta.json'), 'utf8')) as {
      producerId: string;
      format: number;
    };
    expect(meta).toMatchObject({ producerId: id, format: 1 });
    const b = FileSpool.open({ directory });
    opened.push(b);
    expect(b.producerId).toBe(id);
  });

  it('a damaged meta.json is replaced (new producer id); a newer format refuses to open', () => {
    const directory = tempDir();
    writeFileSync(join(directory, 'meta.json'), '{ broken');
    const a = FileSpool.open({ directory });
    expect(a.producerId).toMatch(/^[0-9a-f-]{36}$/);
    a.close();
    writeFileSync(
      join(directory, 'meta.json'),
      JSON.stringify({ format: 99, producerId: a.producerId }),
    );
    const err = openErr(() => FileSpool.open({ directory }));
    expect(err.code).toBe('corrupt');
    expect(existsSync(join(directory, 'lock'))).toBe(false); // released on failure
  });
});

describe('openSpool', () => {
  it('returns a FileSpool when the directory can be used (created when missing)', () => {
    const directory = join(tempDir(), 'a', 'b');
    const fallbacks: Error[] = [];
    const s = openSpool({ directory }, (e) => fallbacks.push(e));
    opened.push(s);
    expect(s.kind).toBe('file');
    expect(fallbacks).toEqual([]);
    expect(existsSync(join(directory, 'meta.json'))).toBe(true);
  });

  const unusable: Array<[string, () => string]> = [
    [
      'a file where the directory should be',
      () => {
        const f = join(tempDir(), 'file');
        writeFileSync(f, 'x');
        return f;
      },
    ],
    [
      'a directory under a file',
      () => {
        const f = join(tempDir(), 'file');
        writeFileSync(f, 'x');
        return join(f, 'spool');
      },
    ],
    ['a path under /proc', () => '/proc/self/kubernaut-audit-spool'],
  ];
  it.each(
    unusable,
  )('falls back to a MemorySpool for %s, calling onFallback, never throwing', (_, dir) => {
    const fallbacks: Error[] = [];
    const s = openSpool({ directory: dir(), maxBytes: 100 }, (e) => fallbacks.push(e));
    opened.push(s);
    expect(s).toBeInstanceOf(MemorySpool);
    expect(s.kind).toBe('memory');
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]).toBeInstanceOf(SpoolOpenError);
    expect((fallbacks[0] as SpoolOpenError).code).toBe('unwritable');
    // It works, with the requested bound.
    expect(s.append(['x'.repeat(60)])).toMatchObject({ appended: 1 });
    expect(s.append(['x'.repeat(60)])).toMatchObject({ appended: 0, dropped: 1 });
  });

  it('falls back when the directory is locked by a live owner, and on invalid options', () => {
    const directory = tempDir();
    opened.push(FileSpool.open({ directory }));
    const errors: Error[] = [];
    const s = openSpool({ directory }, (e) => errors.push(e));
    expect(s.kind).toBe('memory');
    expect((errors[0] as SpoolOpenError).code).toBe('locked');
    const t = openSpool({ directory: tempDir(), maxBytes: -1 }, (e) => errors.push(e));
    expect(t.kind).toBe('memory');
    expect(errors[1]).toBeInstanceOf(TypeError);
    // A throwing callback does not escape either.
    const u = openSpool({ directory: '' }, () => {
      throw new Error('callback bug');
    });
    expect(u.kind).toBe('memory');
  });

  it('FileSpool.open rejects invalid options with a TypeError', () => {
    expect(() => FileSpool.open({ directory: tempDir(), segmentBytes: 0 })).toThrow(TypeError);
    expect(() => FileSpool.open({ directory: tempDir(), fsyncIntervalMillis: -1 })).toThrow(
      TypeError,
    );
    expect(() =>
      FileSpool.open({ directory: tempDir(), durability: 'always' as unknown as 'sync' }),
    ).toThrow(TypeError);
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * The cache of a fresh PGlite cluster (storage.cacheDir, --pglite-cache): later starts load
 * it instead of running initdb; it only ever holds a cluster nothing ran in; a damaged cache or
 * one that cannot be written is reported and never stops a start.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import {
  cleanupTempDirs,
  minimalEvent,
  postBatch,
  queryEvents,
  tempDir,
  testAuth,
} from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createCachedPglite,
  PGLITE_CACHE_FILE,
  type PgliteHandle,
  startDataStorageServer,
} from '../src/index.ts';
import { startCommand } from './command.ts';

afterAll(cleanupTempDirs);

/** Problems reported by a start, as text. */
function problems(): { seen: string[]; onCacheProblem: (m: string, e: unknown) => void } {
  const seen: string[] = [];
  return { seen, onCacheProblem: (m, e) => seen.push(`${m}: ${String(e)}`) };
}

const tablesOf = async (db: PgliteHandle) =>
  (
    await db.query<{ relname: string }>(
      "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname",
    )
  ).rows.map((r) => r.relname);

describe('a cache of the fresh PGlite cluster', () => {
  // One cache written by the first test, used by the later ones: each initdb costs seconds of
  // CPU, so the whole file runs two.
  const cacheDir = join(tempDir(), 'not', 'yet', 'there');
  const file = join(cacheDir, PGLITE_CACHE_FILE);

  it('is written by a start that finds none or a damaged one (said), and loaded by the next', async () => {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(file, 'not a dump of a PGlite cluster');
    const p = problems();
    const a = await createCachedPglite({ cacheDir, onCacheProblem: p.onCacheProblem });
    expect(a.start).toBe('initdb');
    expect(p.seen).toEqual([expect.stringContaining(`cannot start from ${file}; replacing it`)]);
    await a.db.exec('CREATE TABLE after_handing_out (x int)');
    await a.db.close();
    expect(readdirSync(cacheDir)).toEqual([PGLITE_CACHE_FILE]); // no temporary file left

    const [b, c] = await Promise.all([
      createCachedPglite({ cacheDir, onCacheProblem: p.onCacheProblem }),
      createCachedPglite({ cacheDir, onCacheProblem: p.onCacheProblem }),
    ]);
    try {
      expect([b.start, c.start]).toEqual(['cache', 'cache']);
      // A cluster nothing ran in: what the first instance did after it was handed out is not there.
      expect(await tablesOf(b.db)).toEqual([]);
      expect((await b.db.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await Promise.all([b.db.close(), c.db.close()]);
    }
    expect(p.seen).toHaveLength(1);
  });

  it('starts from what the file holds', async () => {
    // A dump with a marker in it, put in place of the cache: the next start has the marker.
    const dir = tempDir();
    const marked = (await createCachedPglite({ cacheDir })).db as PGlite;
    await marked.exec('CREATE TABLE marker (x int)');
    writeFileSync(
      join(dir, PGLITE_CACHE_FILE),
      new Uint8Array(await (await marked.dumpDataDir('none')).arrayBuffer()),
    );
    await marked.close();
    const started = await createCachedPglite({ cacheDir: dir });
    try {
      expect(started.start).toBe('cache');
      expect(await tablesOf(started.db)).toEqual(['marker']);
    } finally {
      await started.db.close();
    }
  });

  it('starts when its cache can be neither read nor written, saying both', async () => {
    // In place of the file, a directory with something in it: reading it fails, and so does
    // renaming a new dump onto it (as root, permissions would not stop either).
    const dir = tempDir();
    mkdirSync(join(dir, PGLITE_CACHE_FILE, 'in-the-way'), { recursive: true });
    const p = problems();
    const started = await createCachedPglite({ cacheDir: dir, onCacheProblem: p.onCacheProblem });
    try {
      expect(started.start).toBe('initdb');
      expect((await started.db.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    } finally {
      await started.db.close();
    }
    expect(p.seen).toEqual([
      expect.stringMatching(/^cannot read .*EISDIR/),
      expect.stringMatching(/^cannot write .*(EISDIR|ENOTEMPTY|EEXIST)/),
    ]);
    expect(readdirSync(dir)).toEqual([PGLITE_CACHE_FILE]); // its temporary file removed
    expect(statSync(join(dir, PGLITE_CACHE_FILE)).isDirectory()).toBe(true);
  });

  it('serves the reference server in memory, and the events never reach the cache', async () => {
    const server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'pglite', cacheDir },
    });
    const cid = `cache-${Date.now()}`;
    try {
      expect((await postBatch(server.url, [minimalEvent({ correlation_id: cid })])).status).toBe(
        201,
      );
      expect((await queryEvents(server.url, { correlation_id: cid })).data).toHaveLength(1);
    } finally {
      await server.close();
    }
    const next = await createCachedPglite({ cacheDir });
    try {
      expect(await tablesOf(next.db)).toEqual([]);
    } finally {
      await next.db.close();
    }
  });

  it('is the command’s --pglite-cache (PGLITE_CACHE_DIR), for PGlite in memory only', async () => {
    const running = await startCommand(['--port', '0', '--management-port', '0'], {
      PGLITE_CACHE_DIR: cacheDir,
    });
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    expect(running.lines[0]).toMatchObject({
      storage: 'pglite',
      data_dir: '(memory)',
      cache_dir: cacheDir,
    });
    await expect(
      startCommand(['--port', '0', '--pglite-cache', cacheDir, '--pglite-dir', tempDir()]),
    ).rejects.toThrow(/exited with 1.*--pglite-cache is for PGlite in memory/);
    await expect(startCommand(['--port', '0', '--pglite-cache', ''])).rejects.toThrow(
      /exited with 1.*--pglite-cache needs a directory/,
    );
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * A fresh in-memory PGlite, started from a cached copy of a freshly initialised cluster.
 *
 * A new in-memory PGlite runs initdb in WebAssembly first: about 4–5 s of CPU on a small
 * machine. Loading a dump of that freshly initialised data directory takes under 1 s. With a
 * cache directory, the first start writes such a dump there and later starts load it.
 *
 * Invariants:
 * - The cache only ever holds a dump of a cluster nothing has run in yet: the dump is taken
 *   before the instance is handed out, so no schema, event or setting of a server reaches it.
 * - The file is written whole under a temporary name, then renamed into place: a reader sees a
 *   complete dump or none, whatever writers run at the same time.
 * - The cache never stops a start: a dump that cannot be read or loaded (damaged, or written by
 *   a PGlite whose PostgreSQL does not accept it, as it would not accept such a data directory)
 *   is reported and replaced by a fresh one; a directory that cannot be written is reported and
 *   the start goes on without it.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { PgliteHandle } from './pglite-handle.ts';

/** The file of the fresh cluster in a cache directory. */
export const PGLITE_CACHE_FILE = 'pglite-fresh-cluster.tar';

export interface PgliteCacheOptions {
  /** Directory of the cached dump (created when missing). */
  cacheDir: string;
  /** Told when the cache could not be used or written; the start goes on. */
  onCacheProblem?: (message: string, err: unknown) => void;
}

/** How an instance was started. */
export type PgliteStart = 'cache' | 'initdb';

/** A fresh cluster's dump is ≈ 40 MB; a file far larger is not one, and is not read into memory. */
const MAX_DUMP_BYTES = 512 * 1024 * 1024;

const errorCode = (err: unknown) =>
  typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;

/** Loads the cached dump; undefined when there is none or it cannot be used. */
async function fromCache(
  file: string,
  options: PgliteCacheOptions,
): Promise<PgliteHandle | undefined> {
  let bytes: Buffer;
  try {
    const size = (await stat(file)).size;
    if (size > MAX_DUMP_BYTES) {
      options.onCacheProblem?.(
        `cannot read ${file}`,
        new Error(`${size} bytes: larger than a fresh cluster's dump can be (${MAX_DUMP_BYTES})`),
      );
      return undefined;
    }
    bytes = await readFile(file);
  } catch (err) {
    // No file there (a directory that is a file is said when writing).
    const code = errorCode(err);
    if (code !== 'ENOENT' && code !== 'ENOTDIR')
      options.onCacheProblem?.(`cannot read ${file}`, err);
    return undefined;
  }
  try {
    // (readFile's buffer owns its ArrayBuffer.)
    return await PGlite.create({ loadDataDir: new Blob([bytes as Uint8Array<ArrayBuffer>]) });
  } catch (err) {
    options.onCacheProblem?.(`cannot start from ${file}; replacing it`, err);
    return undefined;
  }
}

/** Writes the dump of a fresh instance into the cache, atomically. */
async function writeCache(db: PGlite, file: string, options: PgliteCacheOptions): Promise<void> {
  const tmp = `${file}.${randomUUID()}.tmp`;
  try {
    const dump = new Uint8Array(await (await db.dumpDataDir('none')).arrayBuffer());
    await mkdir(options.cacheDir, { recursive: true });
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(dump);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    options.onCacheProblem?.(`cannot write ${file}`, err);
  }
}

/**
 * @experimental Starts a fresh in-memory PGlite: from the cached dump when there is a usable
 * one, else by initdb (then caching its dump). The handle is a `PGlite` (for the server's
 * `storage.instance`); the caller closes it.
 */
export async function createCachedPglite(
  options: PgliteCacheOptions,
): Promise<{ db: PgliteHandle; start: PgliteStart }> {
  const file = join(options.cacheDir, PGLITE_CACHE_FILE);
  const cached = await fromCache(file, options);
  if (cached !== undefined) return { db: cached, start: 'cache' };
  const db = await PGlite.create();
  await writeCache(db, file, options);
  return { db, start: 'initdb' };
}

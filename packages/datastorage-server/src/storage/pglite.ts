// SPDX-License-Identifier: Apache-2.0
/* Embedded PGlite backend: in memory, or in a data directory. */
import { PGlite } from '@electric-sql/pglite';
import { createCachedPglite } from './pglite-cache.ts';
import type { PgliteHandle, PgliteQueryable } from './pglite-handle.ts';
import type { SqlDatabase, SqlQueryable, SqlTransaction } from './sql.ts';

function wrap(db: PgliteQueryable): SqlQueryable {
  return {
    async query<R>(text: string, params?: unknown[], _name?: string) {
      const r = await db.query<R>(text, params);
      return r.rows;
    },
    async exec(text: string) {
      await db.exec(text);
    },
  };
}

async function create(options: {
  dataDir?: string;
  cacheDir?: string;
  onCacheProblem?: (message: string, err: unknown) => void;
}): Promise<PgliteHandle> {
  if (options.dataDir) return PGlite.create({ dataDir: options.dataDir });
  if (options.cacheDir === undefined) return PGlite.create();
  const { db } = await createCachedPglite({
    cacheDir: options.cacheDir,
    ...(options.onCacheProblem ? { onCacheProblem: options.onCacheProblem } : {}),
  });
  return db;
}

/**
 * Opens PGlite. `instance` lets an embedding program (or a test) keep its own handle; the
 * server then leaves it open on close. In memory, `cacheDir` starts it from a cached fresh
 * cluster (see pglite-cache.ts).
 */
export async function openPglite(options: {
  dataDir?: string;
  instance?: PgliteHandle;
  cacheDir?: string;
  onCacheProblem?: (message: string, err: unknown) => void;
}): Promise<SqlDatabase> {
  const owned = options.instance === undefined;
  const db: PgliteHandle = options.instance ?? (await create(options));
  const base = wrap(db);
  return {
    kind: 'pglite',
    query: base.query,
    exec: base.exec,
    // (PGlite commits when the function returns: a script's `commit` has nothing to add.)
    transaction: (fn) =>
      db.transaction((tx) => {
        const t: SqlTransaction = {
          ...wrap(tx),
          async script<R>(text: string) {
            const results = await tx.exec(text);
            return (results[results.length - 1]?.rows ?? []) as R[];
          },
        };
        return fn(t);
      }),
    // An embedded database is never "unreachable": every error is a statement error.
    isUnavailable: () => db.closed,
    async close() {
      if (owned && !db.closed) await db.close();
    },
  };
}

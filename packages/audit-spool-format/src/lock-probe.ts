// SPDX-License-Identifier: Apache-2.0
/*
 * Whether a spool's kernel lock is held by a live process, found without taking it.
 *
 * The owner holds `node:sqlite` `DatabaseSync(lock.db)` with `PRAGMA locking_mode=EXCLUSIVE;
 * BEGIN EXCLUSIVE`. The probe opens lock.db READ ONLY (never created, never written: it works on
 * a read-only volume) with no busy timeout and reads its schema, which needs a shared lock: a
 * live owner's exclusive lock refuses it ("database is locked"); otherwise the shared lock is
 * taken and released at once by closing the connection. The only effect on others: a process
 * starting on the directory in that same instant may find the lock busy and retry (as it does
 * for any contention).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_DB } from './constants.ts';

/** What the probe found. */
export type KernelLockState =
  /** A live process holds the lock. */
  | { state: 'held' }
  /** lock.db exists and nobody holds it. */
  | { state: 'free' }
  /** No lock.db: no format 2 process has opened the directory. */
  | { state: 'absent' }
  /** Could not tell (node:sqlite unavailable, lock.db unreadable). */
  | { state: 'unknown'; reason: string };

interface ReadOnlyDatabase {
  prepare(sql: string): { get(): unknown };
  close(): void;
}
type DatabaseCtor = new (
  path: string,
  options: { readOnly: boolean; timeout: number },
) => ReadOnlyDatabase;

/**
 * `node:sqlite`'s DatabaseSync constructor, or why it cannot be loaded. Node 22 prints an
 * ExperimentalWarning when node:sqlite is loaded: exactly that one is suppressed. Shared with
 * the exporter's spool lock, which takes the lock this module only probes.
 */
export function loadDatabaseSync(): unknown {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string })?.type;
    const name = typeof warning === 'string' ? type : warning.name;
    if (name === 'ExperimentalWarning' && /sqlite/i.test(text)) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    // getBuiltinModule: the same in the ESM and the CommonJS build (no import.meta, no require).
    const mod = process.getBuiltinModule('node:sqlite') as { DatabaseSync?: unknown } | undefined;
    return mod?.DatabaseSync ?? 'node:sqlite is not available';
  } catch (err) {
    return `node:sqlite cannot be loaded: ${(err as Error).message}`;
  } finally {
    process.emitWarning = emit;
  }
}

/** Probes the kernel lock of the spool in `directory` without taking it. Never throws. */
export function probeKernelLock(directory: string): KernelLockState {
  const path = join(directory, LOCK_DB);
  if (!existsSync(path)) return { state: 'absent' };
  const Database = loadDatabaseSync() as DatabaseCtor | string;
  if (typeof Database === 'string') return { state: 'unknown', reason: Database };
  let db: ReadOnlyDatabase | undefined;
  try {
    db = new Database(path, { readOnly: true, timeout: 0 });
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return { state: 'free' };
  } catch (err) {
    const text = (err as Error).message ?? String(err);
    if (/locked|busy/i.test(text)) return { state: 'held' };
    return { state: 'unknown', reason: text };
  } finally {
    try {
      db?.close();
    } catch {
      // not open
    }
  }
}

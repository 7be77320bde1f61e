// SPDX-License-Identifier: Apache-2.0
/*
 * Exclusive ownership of a spool directory through a lock the kernel releases when its holder
 * dies: `node:sqlite` `DatabaseSync(<dir>/lock.db)` with `PRAGMA journal_mode=MEMORY;
 * PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE`, held for the spool's life (no journal file:
 * taking the lock needs no free space). A second process (or a second spool in this
 * process) gets "database is locked"; after SIGKILL of the holder the lock is free at once, also
 * for a new pod on another host name sharing the volume (and over NFS through its lock manager).
 * The holder (pid, hostname, session, startedAt) is written to `lock.owner` for `spool inspect`:
 * information only, never trusted.
 *
 * When `node:sqlite` cannot be loaded, the lock file of ./file-lock.ts (O_EXCL, judged by pid,
 * boot id and heartbeat) is used instead, with a diag warning.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LOCK_DB, LOCK_OWNER, loadDatabaseSync } from '@kubernaut/audit-spool-format';
import { errorText } from '@kubernaut/datastorage-contract/config';
import {
  acquireLock as acquireFileLock,
  releaseLock as releaseFileLock,
  touchLock,
} from './file-lock.ts';
import type { SpoolFs } from './fs.ts';
import { writeFully } from './fsutil.ts';

export { LOCK_DB, LOCK_OWNER };

/** A held lock. */
export interface SpoolLock {
  readonly kind: 'kernel' | 'file';
  /** The file the lock is on (`lock.db`, or `lock.fallback`): removed, the lock guards nothing. */
  readonly path: string;
  release(): void;
}

export type LockAttempt = { ok: true; lock: SpoolLock } | { ok: false; reason: string };

interface SqliteDatabase {
  exec(sql: string): void;
  close(): void;
}
type DatabaseCtor = new (path: string) => SqliteDatabase;

let sqlite: DatabaseCtor | null | undefined;
let sqliteError = '';

/** `node:sqlite`'s DatabaseSync, loaded once; null when unavailable. */
function loadSqlite(): DatabaseCtor | null {
  if (sqlite !== undefined) return sqlite;
  const ctor = loadDatabaseSync();
  if (typeof ctor === 'function') sqlite = ctor as DatabaseCtor;
  else {
    sqliteError = typeof ctor === 'string' ? ctor : 'node:sqlite cannot be loaded';
    sqlite = null;
  }
  return sqlite;
}

/** Why the kernel lock is not available ('' when it is). */
export function kernelLockUnavailable(): string {
  return loadSqlite() === null ? sqliteError || 'node:sqlite cannot be loaded' : '';
}

/**
 * Takes the lock of `directory`. `mode` 'file' forces the fallback lock (tests). Never throws
 * for contention (`ok: false`); throws on I/O errors (the caller reports the directory as
 * unusable).
 */
export function acquireSpoolLock(
  fs: SpoolFs,
  directory: string,
  session: string,
  options: {
    mode?: 'kernel' | 'file';
    foreignStaleMillis?: number;
    heldInThisProcess?: boolean;
  } = {},
): LockAttempt {
  const Database = options.mode === 'file' ? null : loadSqlite();
  if (Database === null) return fileLock(directory, options);
  let db: SqliteDatabase | undefined;
  const path = join(directory, LOCK_DB);
  try {
    db = new Database(path);
    // The journal in memory: taking the lock creates no file (a restart on a full volume can
    // take it and deliver the backlog; the database is never written).
    db.exec('PRAGMA journal_mode=MEMORY; PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE');
  } catch (err) {
    try {
      db?.close();
    } catch {
      // not open
    }
    const text = errorText(err);
    if (/locked|busy/i.test(text))
      return { ok: false, reason: `locked by ${ownerText(fs, directory)}` };
    throw err;
  }
  writeOwner(fs, directory, session);
  const held = db;
  let released = false;
  return {
    ok: true,
    lock: {
      kind: 'kernel',
      path,
      release() {
        if (released) return;
        released = true;
        try {
          held.close();
        } catch {
          // the kernel releases it with the process anyway
        }
      },
    },
  };
}

function fileLock(
  directory: string,
  options: { foreignStaleMillis?: number; heldInThisProcess?: boolean },
): LockAttempt {
  const r = acquireFileLock(
    directory,
    options.foreignStaleMillis ?? 60_000,
    options.heldInThisProcess === true,
  );
  if (!r.ok) return r;
  const every = Math.max(1000, Math.floor((options.foreignStaleMillis ?? 60_000) / 3));
  const heartbeat = setInterval(() => touchLock(r.path), every);
  heartbeat.unref();
  return {
    ok: true,
    lock: {
      kind: 'file',
      path: r.path,
      release() {
        clearInterval(heartbeat);
        releaseFileLock(r.path);
      },
    },
  };
}

/** Writes `lock.owner` (information for `spool inspect`). Best effort: no space is no problem. */
function writeOwner(fs: SpoolFs, directory: string, session: string): void {
  const text = `${JSON.stringify({ pid: process.pid, hostname: hostname(), session, startedAt: new Date().toISOString() })}\n`;
  let fd: number | undefined;
  try {
    fd = fs.openSync(join(directory, LOCK_OWNER), 'w', 0o644);
    writeFully(fs, fd, Buffer.from(text), 0);
  } catch {
    // information only
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // closed
      }
    }
  }
}

function ownerText(fs: SpoolFs, directory: string): string {
  try {
    const o = JSON.parse(fs.readFileSync(join(directory, LOCK_OWNER)).toString('utf8')) as {
      pid?: unknown;
      hostname?: unknown;
    };
    return `another live process (pid ${String(o.pid)} on ${String(o.hostname)}, per ${LOCK_OWNER})`;
  } catch {
    return 'another live process';
  }
}

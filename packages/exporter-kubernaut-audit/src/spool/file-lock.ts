// SPDX-License-Identifier: Apache-2.0
/*
 * The fallback lock (when node:sqlite cannot be loaded, see lock.ts), and the judge of format 1's
 * lock file: exclusive ownership of a spool directory through a lock file created with O_EXCL. The file
 * names its owner (pid, hostname, boot id, process start time). A lock is stale when its owner is
 * provably gone: on this host, the pid is dead or now belongs to another process (start time or
 * boot id differ); on another host, its heartbeat (mtime) is older than `foreignStaleMillis`.
 */
import {
  closeSync,
  linkSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LOCK_FALLBACK, readRegularFileSync } from '@kubernaut/audit-spool-format';

/** The fallback lock of format 2 (format 1's lock file was `lock`). */
export const LOCK_FILE = LOCK_FALLBACK;

/** Contents of the lock file. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** Linux boot id, when known: a different boot means a different process. */
  bootId?: string;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat), when known. */
  procStart?: string;
  /** Epoch ms when the lock was taken. */
  lockedAt: number;
}

function readTrim(path: string): string | undefined {
  try {
    return readRegularFileSync(path).toString('utf8').trim();
  } catch {
    return undefined;
  }
}

/** Start time of a process in clock ticks since boot, from /proc (Linux only). */
export function processStartTime(pid: number): string | undefined {
  const stat = readTrim(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the parenthesised command name; starttime is field 22 overall.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19];
}

function bootId(): string | undefined {
  return readTrim('/proc/sys/kernel/random/boot_id');
}

/** The owner record this process writes. */
export function currentOwner(): LockOwner {
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), lockedAt: Date.now() };
  const b = bootId();
  if (b !== undefined) owner.bootId = b;
  const s = processStartTime(process.pid);
  if (s !== undefined) owner.procStart = s;
  return owner;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && Number.isInteger(o.pid) && typeof o.hostname === 'string') {
      return o as LockOwner;
    }
  } catch {
    // unparseable: see below
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lock is held, or `undefined` when it is stale and may be taken over. */
export function liveOwnerReason(
  owner: LockOwner | undefined,
  lockMtimeMs: number,
  now: number,
  foreignStaleMillis: number,
  heldInThisProcess: boolean,
): string | undefined {
  if (owner === undefined) {
    // A half-written or garbled lock: the writer may be between create and write. Treat as
    // live while it is fresh, stale once older than the foreign staleness bound.
    return now - lockMtimeMs < Math.min(foreignStaleMillis, 10_000)
      ? 'lock file unreadable and recent'
      : undefined;
  }
  const me = currentOwner();
  if (owner.hostname !== me.hostname) {
    return now - lockMtimeMs < foreignStaleMillis
      ? `held by pid ${owner.pid} on host ${owner.hostname} (heartbeat ${Math.round((now - lockMtimeMs) / 1000)}s ago)`
      : undefined;
  }
  if (owner.bootId !== undefined && me.bootId !== undefined && owner.bootId !== me.bootId) {
    return undefined; // the host rebooted since
  }
  if (owner.pid === process.pid) {
    // Our pid but not open in this process: a predecessor that had our pid (pid 1 in a restarted
    // container), or a lock this process leaked. Either way nobody live holds it.
    return heldInThisProcess ? `held by this process (pid ${owner.pid})` : undefined;
  }
  if (!pidAlive(owner.pid)) return undefined;
  if (owner.procStart !== undefined) {
    const start = processStartTime(owner.pid);
    if (start !== undefined && start !== owner.procStart) return undefined; // pid reused
  }
  return `held by live pid ${owner.pid} on this host`;
}

/** Result of `acquireLock`. */
export type LockResult = { ok: true; path: string } | { ok: false; reason: string };

function createExclusive(path: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${JSON.stringify(owner)}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the lock of `directory`, taking over a stale one. Throws on I/O errors other than
 * contention (the caller maps them to `unwritable`).
 */
export function acquireLock(
  directory: string,
  foreignStaleMillis: number,
  heldInThisProcess: boolean,
): LockResult {
  const path = join(directory, LOCK_FILE);
  const owner = currentOwner();
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, owner)) return { ok: true, path };
    let text: string;
    let mtimeMs: number;
    try {
      text = readRegularFileSync(path).toString('utf8');
      mtimeMs = statSync(path).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw err;
    }
    const reason = liveOwnerReason(
      parseOwner(text),
      mtimeMs,
      Date.now(),
      foreignStaleMillis,
      heldInThisProcess,
    );
    if (reason !== undefined) return { ok: false, reason };
    // Stale. Move it aside atomically, and make sure what we moved is the lock we judged stale
    // (not a fresh lock another starter created meanwhile); if not, put it back.
    const aside = `${path}.stale-${process.pid}-${Date.now()}`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = readTrim(aside);
    if (moved !== text.trim()) {
      try {
        linkSync(aside, path);
      } catch {
        // someone holds the lock now; theirs wins
      }
      removeQuietly(aside);
      continue;
    }
    removeQuietly(aside);
  }
  return { ok: false, reason: 'lock contended' };
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Refreshes the lock's heartbeat (mtime). Best effort. */
export function touchLock(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // best effort: a missing heartbeat only matters to processes on other hosts
  }
}

/** Removes the lock file if it is still ours. Best effort. */
export function releaseLock(path: string): void {
  try {
    const owner = parseOwner(readRegularFileSync(path).toString('utf8'));
    if (owner?.pid === process.pid && owner.hostname === hostname()) unlinkSync(path);
  } catch {
    // already gone
  }
}

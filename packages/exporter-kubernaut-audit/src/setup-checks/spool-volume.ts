// SPDX-License-Identifier: Apache-2.0
/*
 * A spool on a memory filesystem (tmpfs, ramfs: `/tmp` on many distributions, `/dev/shm`, a
 * Kubernetes `emptyDir` with `medium: Memory`) survives a SIGKILL and a container restart, but
 * not a reboot of the machine or a move of the pod: the records waiting there for DataStorage
 * are then gone, and the fsync cadence bounds nothing. The default directory is under the OS
 * tmpdir, so this is easy to have without knowing it. Warn once per directory, when it opens,
 * with what to do. Linux only (statfs's type); elsewhere, and on any error, nothing is said.
 * Never throws.
 */
import { statfsSync } from 'node:fs';
import type { ComponentDiag } from '../measure/diag.ts';

/** statfs f_type of the memory filesystems (linux/magic.h). */
const MEMORY_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
]);

const warnedFor = new Set<string>();

/** The memory filesystem `directory` is on, or undefined (a disk, or unknown). Never throws. */
export function memoryFilesystemOf(directory: string): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return MEMORY_FILESYSTEMS.get(Number(statfsSync(directory).type));
  } catch {
    return undefined;
  }
}

/**
 * Warns once per directory when the spool directory just opened is on a memory filesystem.
 * Returns whether it warned now.
 */
export function checkSpoolVolume(directory: string | undefined, diag: ComponentDiag): boolean {
  if (directory === undefined || warnedFor.has(directory)) return false;
  const fs = memoryFilesystemOf(directory);
  if (fs === undefined) return false;
  warnedFor.add(directory);
  diag.warn(
    `the audit spool ${directory} is on ${fs} (memory): records waiting there for DataStorage ` +
      'survive a crash or a container restart, but not a reboot of the machine; set ' +
      'spool.directory (or KUBERNAUT_AUDIT_SPOOL_DIR) to a directory on a persistent volume',
  );
  return true;
}

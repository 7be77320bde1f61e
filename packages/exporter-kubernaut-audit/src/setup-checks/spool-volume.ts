// SPDX-License-Identifier: Apache-2.0
/*
 * Spool volumes that lose their records, said once per directory when it opens, with what to do
 * (the default directory is under the OS tmpdir, so either is easy to have without knowing it):
 * - a memory filesystem (tmpfs, ramfs: `/tmp` on many distributions, `/dev/shm`, a Kubernetes
 *   `emptyDir` with `medium: Memory`) survives a SIGKILL and a container restart, but not a
 *   reboot of the machine or a move of the pod; the fsync cadence bounds nothing there;
 * - overlayfs, a container's own filesystem (its image's layers and its writable layer) in the
 *   usual runtimes: it survives a crash of the process, but a restarted container (Kubernetes
 *   restarts a crashed, OOM-killed or unhealthy one) starts from a fresh writable layer, so the
 *   records waiting there, a whole outage's backlog included, are gone. A volume mounted into
 *   the container (an emptyDir, a PersistentVolumeClaim) is not overlayfs.
 * Linux only (statfs's type); elsewhere, and on any error, nothing is said. Never throws.
 */
import { statfsSync } from 'node:fs';
import type { ComponentDiag } from '../measure/diag.ts';

/** statfs f_type of the memory filesystems (linux/magic.h). */
const MEMORY_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
]);
/** statfs f_type of overlayfs (linux/magic.h OVERLAYFS_SUPER_MAGIC). */
const OVERLAYFS = 0x794c7630;

/** What a spool directory's filesystem type means for its records. */
export type VolumeKind = { kind: 'memory'; fs: string } | { kind: 'container'; fs: 'overlay' };

/** The kind of volume of statfs type `type`, or undefined (a disk, or unknown). */
export function volumeKindOf(type: number): VolumeKind | undefined {
  const memory = MEMORY_FILESYSTEMS.get(type);
  if (memory !== undefined) return { kind: 'memory', fs: memory };
  if (type === OVERLAYFS) return { kind: 'container', fs: 'overlay' };
  return undefined;
}

const warnedFor = new Set<string>();

/** The memory filesystem `directory` is on, or undefined (a disk, or unknown). Never throws. */
export function memoryFilesystemOf(directory: string): string | undefined {
  const type = typeOf(directory);
  const volume = type === undefined ? undefined : volumeKindOf(type);
  return volume?.kind === 'memory' ? volume.fs : undefined;
}

/**
 * Warns once per directory when the spool directory just opened is on a memory filesystem or
 * on a container's own filesystem. Returns whether it warned now. `statfsType`: the directory's
 * statfs type (tests).
 */
export function checkSpoolVolume(
  directory: string | undefined,
  diag: ComponentDiag,
  statfsType: (directory: string) => number | undefined = typeOf,
): boolean {
  if (directory === undefined || warnedFor.has(directory)) return false;
  const type = statfsType(directory);
  const volume = type === undefined ? undefined : volumeKindOf(type);
  if (volume === undefined) return false;
  warnedFor.add(directory);
  diag.warn(
    volume.kind === 'memory'
      ? `the audit spool ${directory} is on ${volume.fs} (memory): records waiting there for DataStorage ` +
          'survive a crash or a container restart, but not a reboot of the machine; set ' +
          'spool.directory (or KUBERNAUT_AUDIT_SPOOL_DIR) to a directory on a persistent volume'
      : `the audit spool ${directory} is on overlay, a container's own filesystem: records waiting there for DataStorage ` +
          'survive a crash of the process but not a restart of the container (Kubernetes restarts a crashed or ' +
          "OOM-killed container with a fresh filesystem, and an outage's backlog goes with it); mount a volume " +
          '(an emptyDir, or a PersistentVolumeClaim to survive the pod too) and set spool.directory (or ' +
          'KUBERNAUT_AUDIT_SPOOL_DIR) to it',
  );
  return true;
}

/** statfs's type of `directory` (Linux only), or undefined. */
function typeOf(directory: string): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return Number(statfsSync(directory).type);
  } catch {
    return undefined;
  }
}

// SPDX-License-Identifier: Apache-2.0
/*
 * A memory-limited cgroup for one benchmark child (a container's memory limit, as a pod has):
 * Node sizes V8's heap, young generation included, from the limit it finds. cgroup v2 or v1,
 * as root; where it cannot be made, says why and the caller reports the row as not run.
 */
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MemoryCgroup {
  /** The `cgroup.procs` file a process writes its pid into to join. */
  procs: string;
  remove(): void;
}

export function memoryCgroup(limitBytes: number): MemoryCgroup | { error: string } {
  const name = `kubernaut-bench-${process.pid}`;
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const dir = v2 ? join('/sys/fs/cgroup', name) : join('/sys/fs/cgroup/memory', name);
  try {
    mkdirSync(dir);
  } catch (err) {
    return { error: `cannot create the cgroup ${dir}: ${(err as Error).message}` };
  }
  const remove = () => {
    try {
      rmdirSync(dir);
    } catch {
      // still has a process (killed child not reaped yet): left for the system
    }
  };
  try {
    writeFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes));
  } catch (err) {
    remove();
    return { error: `cannot set the cgroup's memory limit: ${(err as Error).message}` };
  }
  return { procs: join(dir, 'cgroup.procs'), remove };
}

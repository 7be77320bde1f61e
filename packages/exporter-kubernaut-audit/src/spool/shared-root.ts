// SPDX-License-Identifier: Apache-2.0
/*
 * The shared root `<os tmpdir>/kubernaut-audit`: where the default spool directories, the
 * leftover spools of a service and the default dead-letter files live when none is configured.
 *
 * Invariant: nothing is kept in, read from or delivered out of the shared root unless it is a
 * real directory (not a symbolic link) that belongs to this process's user and that no other
 * user can write to. The OS tmpdir is writable by every user: another one could have made the
 * root first, and then read the audit records kept there, replace files with links to files of
 * this process's user, or plant a spool of forged records as a "leftover" that this process
 * would deliver with its own credentials. A root made by this package is created 0700, and the
 * tmpdir's sticky bit keeps other users from replacing it. A configured directory is the
 * operator's choice and is not checked.
 */
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

/** The shared root under the OS tmpdir (read at each call: TMPDIR may change). */
export function sharedRoot(): string {
  return join(tmpdir(), 'kubernaut-audit');
}

/** True when `path` is the shared root or lies under it. */
export function isUnderSharedRoot(path: string): boolean {
  const rel = relative(sharedRoot(), path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !rel.startsWith(sep));
}

/**
 * Why the shared root cannot be trusted (see the module comment), or undefined when it can, or
 * does not exist yet (it is then created 0700). Never throws.
 */
export function sharedRootProblem(): string | undefined {
  if (process.platform === 'win32') return undefined;
  const root = sharedRoot();
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? undefined : `${root} cannot be checked (${code ?? 'error'})`;
  }
  if (st.isSymbolicLink()) return `${root} is a symbolic link`;
  if (!st.isDirectory()) return `${root} is not a directory`;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    return `${root} belongs to another user (uid ${st.uid}, this process runs as uid ${uid})`;
  }
  if ((Number(st.mode) & 0o022) !== 0) {
    return `${root} is writable by other users (mode ${(Number(st.mode) & 0o777).toString(8)})`;
  }
  return undefined;
}

/** The error for a path under an untrusted shared root. */
export function untrustedRootError(path: string, problem: string): Error {
  return Object.assign(
    new Error(
      `refusing ${path}: ${problem}; another user could read or change what is kept there. Configure a spool directory (spool.directory, KUBERNAUT_AUDIT_SPOOL_DIR) or make ${sharedRoot()} a directory of this user, mode 0700`,
    ),
    { code: 'EUNTRUSTED' },
  );
}

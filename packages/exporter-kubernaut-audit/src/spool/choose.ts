// SPDX-License-Identifier: Apache-2.0
/*
 * Which directory a processor's spool takes (DESIGN §6): the configured one, else the default
 * `<os tmpdir>/kubernaut-audit/<service>-<hash of the destination>`. A default directory held by
 * another live process → the next free `…-<n>` (n = 2, 3 …), not memory-only. A configured
 * directory held by another live process (or unusable) → memory-only with a warning, retried in
 * the background.
 */
import { defaultSpoolDirectory } from '../config/processor-env.ts';
import { openSpool, type Spool, SpoolOpenError, type SpoolOptions } from './spool.ts';

/** Default directories a service has per destination: `…`, `…-2` … `…-16`. */
export const MAX_DEFAULT_DIRECTORIES = 16;

export function chooseSpool(
  directory: string | undefined,
  serviceName: string | undefined,
  options: Omit<SpoolOptions, 'directory'>,
): Spool {
  if (directory !== undefined) return openSpool({ ...options, directory });
  // While the default directories are tried, a locked one is not worth a warning.
  let choosing = true;
  const onUnavailable = (err: Error) => {
    if (!choosing) options.onUnavailable?.(err);
  };
  let spool: Spool | undefined;
  for (let n = 1; n <= MAX_DEFAULT_DIRECTORIES; n++) {
    spool?.close();
    const dir = defaultSpoolDirectory(serviceName, options.destination, n);
    spool = openSpool({ ...options, directory: dir, onUnavailable });
    const err = spool.lastError;
    if (spool.kind === 'file' || !(err instanceof SpoolOpenError && err.code === 'locked')) break;
  }
  choosing = false;
  const chosen = spool as Spool;
  if (chosen.kind === 'memory' && chosen.lastError !== undefined) onUnavailable(chosen.lastError);
  return chosen;
}

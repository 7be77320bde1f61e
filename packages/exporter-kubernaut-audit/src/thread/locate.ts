// SPDX-License-Identifier: Apache-2.0
/*
 * Where the delivery thread's entry module is: beside this module, with this module's own
 * extension (`.js` in the ESM and CommonJS builds, `.ts` when the sources are run, as the
 * repository's tests do; then with the `@kubernaut/source` export condition, so that the
 * workspace packages resolve to their sources as well). This module's path comes from the V8
 * call site of its own code, which is the same in ESM (a file: URL) and CommonJS (a path).
 */
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The entry of the delivery thread and the extra execArgv it needs. */
export function deliveryThreadFile(): { path: string; execArgv: string[] } {
  return siblingModule('delivery-thread');
}

/** The module `name` of this folder (with this module's extension) and the execArgv it needs. */
export function siblingModule(name: string): { path: string; execArgv: string[] } {
  const here = thisFile();
  if (here === undefined) throw new Error('cannot tell where the package is installed');
  const ext = extname(here);
  const path = join(dirname(here), `${name}${ext}`);
  const source = ext === '.ts' && !process.execArgv.some((a) => a.includes('@kubernaut/source'));
  return { path, execArgv: source ? ['--conditions=@kubernaut/source'] : [] };
}

function thisFile(): string | undefined {
  const saved = Error.prepareStackTrace;
  let frames: NodeJS.CallSite[] = [];
  try {
    Error.prepareStackTrace = (_err, callSites) => callSites;
    frames = new Error().stack as unknown as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = saved;
  }
  const name = Array.isArray(frames) ? frames[0]?.getFileName() : undefined;
  if (typeof name !== 'string') return undefined;
  return name.startsWith('file:') ? fileURLToPath(name) : name;
}

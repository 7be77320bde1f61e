// SPDX-License-Identifier: Apache-2.0
/* The CLI's main() in-process, its output captured: what the command tests run. */
import { main } from '../src/cli/index.ts';

/** Runs `kubernaut-audit <args>` in this process; its exit code and what it wrote. */
export async function runCli(
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

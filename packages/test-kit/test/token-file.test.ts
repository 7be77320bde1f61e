// SPDX-License-Identifier: Apache-2.0
/*
 * The suites' token file leaves nothing behind: Vitest's workers end without running `exit`
 * handlers, so a token directory of a process that is gone is removed by the next process that
 * writes one. A process that exits normally removes its own.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { childLines, nodeBinary, REPO_ROOT } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';

/** A process that writes its token file, prints the path, then stays (`hold`) or exits. */
function writer(hold: boolean) {
  const code = `const m = await import('@kubernaut/test-kit'); console.log('token ' + m.testTokenFile()); ${hold ? 'setInterval(() => {}, 1000);' : ''}`;
  const child = spawn(
    nodeBinary(),
    ['--conditions=@kubernaut/source', '--input-type=module', '-e', code],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, lines: childLines(child), exited };
}

describe('testTokenFile()', () => {
  it('removes the token directory of a process killed without exit handlers, and its own at exit', async () => {
    const killed = writer(true);
    const killedDir = dirname((await killed.lines.line(/^token /)).slice('token '.length));
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(existsSync(killedDir)).toBe(true); // nothing ran at the kill

    const next = writer(false);
    const nextDir = dirname((await next.lines.line(/^token /)).slice('token '.length));
    expect(await next.exited).toBe(0);
    expect(existsSync(killedDir)).toBe(false); // removed by the next writer
    expect(existsSync(nextDir)).toBe(false); // its own, at its exit
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * Duplicates are accounted for (issue 11, behaviour 11), with real processes: a sender is
 * killed with SIGKILL while each of its lanes has a request in flight that DataStorage has
 * already committed (slow answers). The next process on the same spool resends what was not
 * acked; its `kubernaut.audit.duplicates_possible` equals the events it resent that its
 * predecessor had marked SENT, which are exactly the duplicates DataStorage stored.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childLines, cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./fixtures/sender-child.ts', import.meta.url));

afterAll(() => cleanupTempDirs());

function child(
  mode: 'produce' | 'resume',
  env: Record<string, string>,
): {
  proc: ChildProcess;
  lines: string[];
  line(re: RegExp): Promise<string>;
  exited: Promise<number | null>;
} {
  const proc = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: { ...process.env, ...env, MODE: mode },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out = childLines(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return { proc, lines: out.lines, line: (re) => out.line(re), exited };
}

describe('SIGKILL with committed requests in flight', () => {
  it("the restarted process's duplicates_possible equals what it resent that its predecessor had sent", async () => {
    const ds = await FaultServer.start();
    try {
      const dir = join(tempDir(), 'spool');
      const env = { DS_URL: ds.url, SPOOL_DIR: dir, N: '2000', BATCH: '100' };
      // The first request of each lane is stored at once and answered only after a minute.
      ds.inject({ type: 'slow', delayMillis: 60_000 }, 4);
      const first = child('produce', env);
      await first.line(/^STARTED$/);
      // One request per lane in flight, each committed by DataStorage.
      await ds.waitForEvents(400);
      expect(ds.requests).toHaveLength(4);
      first.proc.kill('SIGKILL');
      await first.exited;
      const committed = ds.received().length;
      expect(committed).toBe(400);

      const second = child('resume', env);
      const result = JSON.parse((await second.line(/^RESULT /)).slice('RESULT '.length)) as {
        duplicatesPossible: number;
        sentBefore: number;
      };
      expect(await second.exited).toBe(0);

      // Everything delivered; the resent events are exactly the duplicates stored.
      const ids = new Set(ds.received().map((s) => s.event.resource_id));
      expect(ids.size).toBe(2000);
      expect(ds.duplicates()).toBe(committed);
      expect(result.sentBefore).toBe(committed);
      expect(result.duplicatesPossible).toBe(ds.duplicates());
    } finally {
      await ds.close();
    }
  });
});

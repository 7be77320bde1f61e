// SPDX-License-Identifier: Apache-2.0
/*
 * SIGKILL: a child process emits steadily while DataStorage answers 503 throughout, and is
 * killed with SIGKILL. A new processor on the same spool, with DataStorage healthy, delivers
 * every record emitted before the last scheduledDelayMillis window (`batch`), or every
 * record (`sync`). Duplicates are counted; per-correlation order is kept.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { deliveredIds, orderViolations, processorFor } from './fixtures/harness.ts';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
const DELAY = 200;
// setTimeout never fires early, but may fire late on a loaded machine (2 cores, parallel suites).
const TIMER_SLACK_MS = 250;

afterAll(() => cleanupTempDirs());

interface Emitted {
  id: string;
  at: number;
}

async function runAndKill(
  durability: 'batch' | 'sync',
  spoolDir: string,
  url: string,
  kind: string,
): Promise<{ emitted: Emitted[]; begun: Set<string>; killedAt: number }> {
  const child: ChildProcess = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: {
      ...process.env,
      DS_URL: url,
      SPOOL_DIR: spoolDir,
      DURABILITY: durability,
      DELAY: String(DELAY),
      PROCESSOR: kind,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const emitted: Emitted[] = [];
  const begun = new Set<string>();
  let buf = '';
  const take = (line: string) => {
    if (line.startsWith('B ')) begun.add(line.slice(2));
    else if (line.startsWith('E ')) {
      const [, id, at] = line.split(' ');
      emitted.push({ id: id as string, at: Number(at) });
    }
  };
  let killedAt = 0;
  // 'close', not 'exit': the lines still in the pipe when the child dies are read first.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        take(line);
      }
      // Kill after enough records, several scheduledDelay windows into the run.
      if (killedAt === 0 && emitted.length >= 4000) {
        killedAt = Date.now();
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await closed;
  // A last line cut by the kill has no newline: a cut `B` still announces its id.
  if (buf.startsWith('B ')) begun.add(buf.slice(2));
  return { emitted, begun, killedAt };
}

async function recover(spoolDir: string, port: number) {
  // The same DataStorage (a spool's records go only to the destination it was written for).
  const healthy = await FaultServer.start({ port });
  const processor = processorFor(healthy, { spool: { directory: spoolDir } });
  const provider = new LoggerProvider({ processors: [processor] });
  await processor.forceFlush({ timeoutMillis: 30_000 });
  const ids = deliveredIds(healthy);
  expect(healthy.specViolations).toEqual([]);
  expect(orderViolations(healthy)).toEqual([]);
  const duplicates = ids.length - new Set(ids).size;
  await provider.shutdown();
  await healthy.close();
  return { ids: new Set(ids), duplicates };
}

describe('crash recovery (SIGKILL)', () => {
  it.each([
    ['AuditLogRecordProcessor', 'batch', ''],
    ['AuditLogRecordProcessor', 'sync', ''],
    ['ThreadedAuditLogRecordProcessor', 'batch', 'threaded'],
    ['ThreadedAuditLogRecordProcessor', 'sync', 'threaded'],
  ] as const)(
    '%s, %s durability: a restarted process delivers what was spooled',
    async (_name, durability, kind) => {
      const down = await FaultServer.start();
      down.inject({ type: 'unavailable' }, 1_000_000);
      const spoolDir = tempDir();
      const { emitted, begun, killedAt } = await runAndKill(durability, spoolDir, down.url, kind);
      expect(down.received()).toEqual([]); // nothing was accepted while 503 answered
      expect(down.requests.length).toBeGreaterThan(0); // ...and the child did try
      const port = Number(new URL(down.url).port);
      await down.close();

      const { ids, duplicates } = await recover(spoolDir, port);
      const mustHave =
        durability === 'sync'
          ? emitted
          : emitted.filter((e) => e.at < killedAt - DELAY - TIMER_SLACK_MS);
      const missing = mustHave.filter((e) => !ids.has(e.id)).map((e) => e.id);
      expect(mustHave.length).toBeGreaterThan(1000);
      expect(missing).toEqual([]);
      // Every delivered id was really emitted (or being emitted when the kill landed: at most
      // the one whose emit() had begun), and nothing was delivered twice.
      const emittedIds = new Set(emitted.map((e) => e.id));
      expect([...ids].filter((id) => !begun.has(id))).toEqual([]);
      expect([...ids].filter((id) => !emittedIds.has(id)).length).toBeLessThanOrEqual(1);
      expect(duplicates).toBe(0);
      console.log(
        `${_name} ${durability}: emitted ${emitted.length} (before the window: ${mustHave.length}), delivered ${ids.size}, duplicates ${duplicates}`,
      );
    },
    60_000,
  );
});

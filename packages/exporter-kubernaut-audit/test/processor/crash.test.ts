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
): Promise<{ emitted: Emitted[]; killedAt: number }> {
  const child: ChildProcess = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: {
      ...process.env,
      DS_URL: url,
      SPOOL_DIR: spoolDir,
      DURABILITY: durability,
      DELAY: String(DELAY),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const emitted: Emitted[] = [];
  let buf = '';
  let killedAt = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (line.startsWith('E ')) {
          const [, id, at] = line.split(' ');
          emitted.push({ id: id as string, at: Number(at) });
        }
      }
      // Kill after enough records, several scheduledDelay windows into the run.
      if (killedAt === 0 && emitted.length >= 4000) {
        killedAt = Date.now();
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await exited;
  // Lines already written before the kill may still be in the pipe.
  for (const line of buf.split('\n')) {
    if (line.startsWith('E ')) {
      const [, id, at] = line.split(' ');
      emitted.push({ id: id as string, at: Number(at) });
    }
  }
  return { emitted, killedAt };
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

describe('AuditLogRecordProcessor crash recovery (SIGKILL)', () => {
  it.each([
    'batch',
    'sync',
  ] as const)('%s durability: a restarted process delivers what was spooled', async (durability) => {
    const down = await FaultServer.start();
    down.inject({ type: 'unavailable' }, 1_000_000);
    const spoolDir = tempDir();
    const { emitted, killedAt } = await runAndKill(durability, spoolDir, down.url);
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
    // Every delivered id was really emitted, and nothing was delivered twice.
    const emittedIds = new Set(emitted.map((e) => e.id));
    expect([...ids].filter((id) => !emittedIds.has(id))).toEqual([]);
    expect(duplicates).toBe(0);
    console.log(
      `${durability}: emitted ${emitted.length} (before the window: ${mustHave.length}), delivered ${ids.size}, duplicates ${duplicates}`,
    );
  }, 60_000);
});

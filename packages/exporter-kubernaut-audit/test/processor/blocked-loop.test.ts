// SPDX-License-Identifier: Apache-2.0
/*
 * A blocked event loop (behaviour 2 of issue 11): synchronous work emits for 2.5 s without
 * yielding and the process is then killed with SIGKILL. In batch mode the loss window is bounded
 * by emit time: every record emitted more than scheduledDelayMillis before the last emit was
 * written to the spool by emit() itself (ThreadedAuditLogRecordProcessor: handed to its delivery
 * thread, which writes it while the application thread stays blocked), and the next process
 * delivers it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, expect, it } from 'vitest';
import { deliveredIds, processorFor } from './fixtures/harness.ts';

const CHILD = fileURLToPath(new URL('./fixtures/blocked-child.ts', import.meta.url));
const DELAY = 1000; // the default scheduledDelayMillis

afterAll(() => cleanupTempDirs());

it.each([
  ['AuditLogRecordProcessor', ''],
  ['ThreadedAuditLogRecordProcessor', 'threaded'],
])(
  '%s: SIGKILL after 2.5 s of blocked emits loses at most the last scheduledDelayMillis of records',
  async (_name, kind) => {
    const ds = await FaultServer.start();
    const port = Number(new URL(ds.url).port);
    await ds.close(); // down: nothing is delivered by the child
    const dir = tempDir();
    const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
      env: { ...process.env, DS_URL: ds.url, SPOOL_DIR: dir, PROCESSOR: kind },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const emitted: Array<{ id: string; at: number }> = [];
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      child.once('exit', () => reject(new Error('the child ended before it was killed')));
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) {
          const [tag, id, at] = line.split(' ');
          if (tag === 'E') emitted.push({ id: id as string, at: Number(at) });
          if (tag === 'DONE') {
            child.kill('SIGKILL');
            resolve();
          }
        }
      });
    });
    await new Promise((r) => child.once('close', r));
    expect(emitted).toHaveLength(250);

    const healthy = await FaultServer.start({ port });
    const processor = processorFor(healthy, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    await processor.forceFlush({ timeoutMillis: 30_000 });
    const delivered = new Set(deliveredIds(healthy));
    const lastEmit = emitted[emitted.length - 1]?.at as number;
    const mustHave = emitted.filter((e) => e.at < lastEmit - DELAY);
    expect(mustHave.length).toBeGreaterThan(100);
    expect(mustHave.filter((e) => !delivered.has(e.id)).map((e) => e.id)).toEqual([]);
    await provider.shutdown();
    await healthy.close();
  },
  60_000,
);

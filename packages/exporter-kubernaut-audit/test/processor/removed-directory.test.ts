// SPDX-License-Identifier: Apache-2.0
/*
 * The spool directory removed while a real process uses it (`rm -rf` of the default tmp
 * directory's kind), with DataStorage down: the process notices it by itself, re-creates the
 * directory and writes its records back; killed with SIGKILL afterwards, it leaves a spool from
 * which the next process delivers every record, once, and continues its provenance producer.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, expect, it } from 'vitest';
import { deliveredIds, orderViolations, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const CHILD = fileURLToPath(new URL('./fixtures/removed-dir-child.ts', import.meta.url));
afterAll(() => cleanupTempDirs());

/** The child's stdout lines, and a wait for one (or a deadline: resolves false). */
function lines(child: ChildProcess) {
  const got: string[] = [];
  const waiters: Array<{ line: string; resolve: (ok: boolean) => void }> = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
      got.push(line);
      for (const w of waiters.splice(0)) {
        if (w.line === line) w.resolve(true);
        else waiters.push(w);
      }
    }
  });
  const waitFor = (line: string, millis: number): Promise<boolean> => {
    if (got.includes(line)) return Promise.resolve(true);
    return new Promise((resolve) => {
      waiters.push({ line, resolve });
      setTimeout(() => resolve(false), millis).unref();
    });
  };
  return { got, waitFor };
}

it('rm -rf of the spool directory, then SIGKILL: the next process delivers every record once', async () => {
  const down = await FaultServer.start();
  down.inject({ type: 'unavailable' }, 1_000_000);
  const dir = join(tempDir(), 'spool');
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: { ...process.env, DS_URL: down.url, SPOOL_DIR: dir },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const out = lines(child);
  expect(await out.waitFor('FIRST', 20_000)).toBe(true);
  rmSync(dir, { recursive: true, force: true }); // a tmp cleaner, an operator
  child.stdin?.write('more\n');
  expect(await out.waitFor('SECOND', 20_000)).toBe(true);
  // Noticed by the spool's own check (once a second): nothing here pokes it.
  const back = await out.waitFor('R', 10_000);
  child.kill('SIGKILL');
  await closed;
  expect(down.received()).toEqual([]); // nothing was accepted while 503 answered
  const port = Number(new URL(down.url).port);
  await down.close();

  const emitted = out.got.filter((l) => l.startsWith('E ')).map((l) => l.slice(2));
  expect(emitted.length).toBe(40);
  // The same DataStorage (a spool's records go only to the destination it was written for).
  const healthy = await FaultServer.start({ port });
  try {
    const processor = processorFor(healthy, { spool: { directory: dir } });
    const provider = new LoggerProvider({ processors: [processor] });
    await processor.forceFlush({ timeoutMillis: 30_000 });
    const ids = deliveredIds(healthy);
    // The provenance state was re-created with the directory: the next process continues the
    // same producer (a lost state would move it to a new one).
    provider.getLogger('t').emit(auditRecord('after:0', 'after'));
    await processor.forceFlush({ timeoutMillis: 30_000 });
    await provider.shutdown();
    const producers = new Set(
      healthy
        .received()
        .map(
          (r) =>
            (r.event.event_data as { audit_provenance?: { producer_id?: string } }).audit_provenance
              ?.producer_id,
        ),
    );
    expect(emitted.filter((id) => !ids.includes(id))).toEqual([]);
    expect(back).toBe(true);
    expect(producers.size).toBe(1);
    expect(ids.length).toBe(new Set(ids).size); // once each
    expect(orderViolations(healthy)).toEqual([]);
    expect(healthy.specViolations).toEqual([]);
  } finally {
    await healthy.close();
  }
}, 60_000);

// SPDX-License-Identifier: Apache-2.0
/*
 * The spool directory removed while a real process uses it (`rm -rf` of the default tmp
 * directory's kind), with DataStorage down: the process notices it by itself, re-creates the
 * directory and writes its records back; killed with SIGKILL afterwards, it leaves a spool from
 * which the next process delivers every record, once, and continues its provenance producer.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childLines, cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, expect, it } from 'vitest';
import { deliveredIds, orderViolations, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const CHILD = fileURLToPath(new URL('./fixtures/removed-dir-child.ts', import.meta.url));
afterAll(() => cleanupTempDirs());

it('rm -rf of the spool directory, then SIGKILL: the next process delivers every record once', async () => {
  const down = await FaultServer.start();
  down.inject({ type: 'unavailable' }, 1_000_000);
  const dir = join(tempDir(), 'spool');
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: { ...process.env, DS_URL: down.url, SPOOL_DIR: dir },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const out = childLines(child);
  await out.line(/^FIRST$/, 20_000);
  rmSync(dir, { recursive: true, force: true }); // a tmp cleaner, an operator
  child.stdin?.write('more\n');
  await out.line(/^SECOND$/, 20_000);
  // Noticed by the spool's own check (once a second): nothing here pokes it.
  const back = await out.line(/^R$/, 10_000).then(
    () => true,
    () => false,
  );
  child.kill('SIGKILL');
  await closed;
  expect(down.received()).toEqual([]); // nothing was accepted while 503 answered
  const port = Number(new URL(down.url).port);
  await down.close();

  const emitted = out.lines.filter((l) => l.startsWith('E ')).map((l) => l.slice(2));
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

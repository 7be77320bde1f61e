// SPDX-License-Identifier: Apache-2.0
/*
 * A program that ends (behaviour 1 of issue 11). Real child processes, a real DataStorage stand-in
 * that refuses connections (down), then a new process on the same spool with DataStorage back:
 * - batch mode, process.exit() right after emitting, the program simply returning, or an
 *   uncaught exception: every record pending for the batch timer reaches the spool on the way
 *   out (`exit`);
 * - batch mode, a running program stopped by SIGTERM, SIGINT or SIGHUP (no `exit` then): with no handler
 *   of its own it still ends by the signal, with a library that re-raises the signal when it is
 *   the last listener too, and with a handler that keeps it running it is not ended; in each
 *   case every pending record reaches the spool;
 * - a worker thread that runs its own processor and is terminated (Node runs no `exit` listener
 *   there): with durability 'sync', as the exporter README advises for such a worker, nothing
 *   is lost ('batch' loses its window there, as the README says);
 * - while DataStorage is down, a program whose records are all on the spool exits on its own:
 *   in `sync` mode, and with nothing but an inherited backlog.
 * Each for AuditLogRecordProcessor and for ThreadedAuditLogRecordProcessor (its delivery thread
 * writes the last records while the application thread waits in its `exit` handler). And the
 * batch drains' spool writes, made on the thread pool, still queued there at process.exit()
 * (its only thread busy for minutes, so Node's own teardown waits for it) and the process
 * killed right after its `exit` listeners ran: the processor's `exit` handler wrote them.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { deliveredIds, processorFor } from './fixtures/harness.ts';

const CHILD = fileURLToPath(new URL('./fixtures/exit-child.ts', import.meta.url));
/** A bound that only a child that never exits reaches (exits take well under a second). */
const NEVER_EXITS_MILLIS = 20_000;

afterAll(() => cleanupTempDirs());

/** The processor of the child: AuditLogRecordProcessor, or its variant with a delivery thread. */
let processorKind = '';

/**
 * Runs the child to its end; rejects when it does not exit on its own. `killOn`: SIGKILL it when
 * its output shows that text; `signalOn`: send it that signal when its output shows that text.
 */
function run(
  mode: string,
  env: Record<string, string>,
  killOn?: string,
  signalOn?: { text: string; signal: NodeJS.Signals },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: { ...process.env, MODE: mode, PROCESSOR: processorKind, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (killOn !== undefined && stdout.includes(killOn)) child.kill('SIGKILL');
    if (signalOn !== undefined && stdout.includes(signalOn.text)) {
      child.kill(signalOn.signal);
      signalOn = undefined; // once
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the ${mode} program did not exit on its own (DataStorage down)`));
    }, NEVER_EXITS_MILLIS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout });
    });
  });
}

/** Delivers what the spool holds with DataStorage back on the same address. */
async function recover(dir: string, port: number): Promise<string[]> {
  const ds = await FaultServer.start({ port });
  const processor = processorFor(ds, { spool: { directory: dir } });
  const provider = new LoggerProvider({ processors: [processor] });
  await processor.forceFlush({ timeoutMillis: 30_000 });
  const ids = deliveredIds(ds);
  expect(ds.specViolations).toEqual([]);
  await provider.shutdown();
  await ds.close();
  return ids;
}

async function downServer(): Promise<{ url: string; port: number }> {
  const ds = await FaultServer.start();
  const url = ds.url;
  const port = Number(new URL(url).port);
  await ds.close(); // connections refused from now on
  return { url, port };
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => `exit-${i % 3}:${i}`).sort();

describe.each([
  ['AuditLogRecordProcessor', ''],
  ['ThreadedAuditLogRecordProcessor', 'threaded'],
])('a program that ends (%s)', (_name, kind) => {
  beforeEach(() => {
    processorKind = kind;
  });

  it.each([
    'exit',
    'return',
  ])('batch mode, %s right after emitting: every record reaches the spool and the next process', async (mode) => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { code, stdout } = await run(mode, { DS_URL: url, SPOOL_DIR: dir, COUNT: '300' });
    expect(code).toBe(0);
    expect(stdout).toContain('EMITTED 300');
    expect((await recover(dir, port)).sort()).toEqual(expected(300));
  }, 60_000);

  it("batch mode, records the program emits in its own `exit` listener (after the processor's): they reach the spool too", async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { code, stdout } = await run('exit-handler', {
      DS_URL: url,
      SPOOL_DIR: dir,
      COUNT: '300',
    });
    expect(code).toBe(0);
    expect(stdout).toContain('EMITTED 300');
    const late = Array.from({ length: 20 }, (_, i) => `exit-late:${i}`);
    expect((await recover(dir, port)).sort()).toEqual([...expected(300), ...late].sort());
  }, 60_000);

  it('batch mode, an uncaught exception right after emitting: every record reaches the next process', async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { code, stdout } = await run('throw', { DS_URL: url, SPOOL_DIR: dir, COUNT: '300' });
    expect(code).toBe(1);
    expect(stdout).toContain('EMITTED 300');
    expect((await recover(dir, port)).sort()).toEqual(expected(300));
  }, 60_000);

  it.each([
    'SIGTERM',
    'SIGINT',
    'SIGHUP',
  ] as const)('batch mode, a running program stopped by %s with no handler of its own: every record reaches the next process, and the signal still ends it', async (sig) => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { code, signal, stdout } = await run(
      'serve',
      { DS_URL: url, SPOOL_DIR: dir, COUNT: '300' },
      undefined,
      { text: 'SERVING', signal: sig },
    );
    // Ended by the signal, as without the processor (not by an exit code of its choosing).
    expect({ code, signal }).toEqual({ code: null, signal: sig });
    expect(stdout).toContain('EMITTED 300');
    expect((await recover(dir, port)).sort()).toEqual(expected(300));
  }, 60_000);

  it('batch mode, a library that raises SIGTERM again when it is the last listener: it still ends the program, every record reaches the next process', async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { code, signal } = await run(
      'serve',
      { DS_URL: url, SPOOL_DIR: dir, COUNT: '300', HANDLER: 'last' },
      undefined,
      { text: 'SERVING', signal: 'SIGTERM' },
    );
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect((await recover(dir, port)).sort()).toEqual(expected(300));
  }, 60_000);

  it('batch mode, a program with its own SIGTERM handler that keeps running: the records reach the spool, the program is not ended by the processor', async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { signal, stdout } = await run(
      'serve',
      { DS_URL: url, SPOOL_DIR: dir, COUNT: '300', HANDLER: 'keep' },
      'HANDLED SIGTERM', // its handler ran and the program is still there: the test ends it
      { text: 'SERVING', signal: 'SIGTERM' },
    );
    expect(signal).toBe('SIGKILL');
    expect(stdout).toContain('HANDLED SIGTERM');
    expect((await recover(dir, port)).sort()).toEqual(expected(300));
  }, 60_000);

  it('sync mode: exits on its own while DataStorage is down; the records wait in the spool', async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const { code } = await run('sync', { DS_URL: url, SPOOL_DIR: dir, COUNT: '20' });
    expect(code).toBe(0);
    expect((await recover(dir, port)).sort()).toEqual(expected(20));
  }, 60_000);

  it('an inherited backlog: exits on its own while DataStorage is down, the backlog still there', async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    await run('sync', { DS_URL: url, SPOOL_DIR: dir, COUNT: '10' }); // leaves a backlog
    const { code } = await run('backlog', { DS_URL: url, SPOOL_DIR: dir });
    expect(code).toBe(0);
    expect((await recover(dir, port)).sort()).toEqual(expected(10));
  }, 60_000);
});

describe('a program that ends with its spool writes still queued on the thread pool', () => {
  it('process.exit() while the only thread-pool thread is busy, SIGKILL after the exit listeners: every record reaches the next process', async () => {
    processorKind = '';
    const dir = tempDir();
    const { url, port } = await downServer();
    const { signal, stdout } = await run(
      'busy-pool',
      {
        DS_URL: url,
        SPOOL_DIR: dir,
        COUNT: '1100', // two full batches of 512 drained by the batcher (deferred writes) + 76
        UV_THREADPOOL_SIZE: '1',
      },
      'EXITED',
    );
    expect(signal).toBe('SIGKILL');
    expect(stdout).toContain('EMITTED 1100');
    expect((await recover(dir, port)).sort()).toEqual(expected(1100));
  }, 60_000);
});

describe('a worker thread that runs its own processor, ended by worker.terminate()', () => {
  it("durability 'sync' (the exporter README's advice for such a worker): every record reaches the next process", async () => {
    const dir = tempDir();
    const { url, port } = await downServer();
    const worker = new Worker(
      fileURLToPath(new URL('./fixtures/worker-emitter.ts', import.meta.url)),
      {
        workerData: { url, directory: dir, durability: 'sync', count: 200 },
        execArgv: ['--conditions=@kubernaut/source'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    await worker.terminate(); // no `exit` listener runs in the worker
    expect((await recover(dir, port)).sort()).toEqual(
      Array.from({ length: 200 }, (_, i) => `worker-0:${i}`).sort(),
    );
  }, 60_000);
});

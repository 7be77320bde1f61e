// SPDX-License-Identifier: Apache-2.0
/*
 * Leftover default spools (processor/leftovers.ts): processes of one service on the default
 * spool directories take `…`, `…-2` … while they run together; when fewer run later, a process
 * on a default directory delivers what the dead ones left in the others — only once its own
 * spool is empty, never from a directory a live process holds, and it lets a leftover go again
 * when it is empty or makes no progress (DataStorage down), so that its lock is free for a
 * process that starts. Records a default directory holds for another DataStorage (the service's
 * DataStorage URL changed) are never sent elsewhere, but they are reported.
 */

import { randomUUID } from 'node:crypto';
import { chmodSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { probeKernelLock } from '@kubernaut/audit-spool-format';
import { captureDiag, cleanupTempDirs, FaultServer, tempDir } from '@kubernaut/test-kit';
import { DiagLogLevel } from '@opentelemetry/api';
import { LoggerProvider, type LogRecordProcessor } from '@opentelemetry/sdk-logs';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultSpoolDirectory } from '../../src/config/processor-env.ts';
import { createProcessor } from '../../src/processor/create.ts';
import { BACKLOG_MILLIS, hasBacklog } from '../../src/processor/leftovers.ts';
import { createThreadedProcessor } from '../../src/thread/create.ts';
import { deliveredIds, fastExporter } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

// The default spool directories are under the OS tmpdir: this file's is a temporary directory
// of its own (os.tmpdir() reads TMPDIR at each call).
const savedTmpdir = process.env.TMPDIR;
process.env.TMPDIR = tempDir();
const savedService = process.env.OTEL_SERVICE_NAME;
afterAll(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  if (savedService === undefined) delete process.env.OTEL_SERVICE_NAME;
  else process.env.OTEL_SERVICE_NAME = savedService;
  cleanupTempDirs();
});

/** A service of its own per test: its default directories are its own. */
let service = '';
beforeEach(() => {
  service = `leftover-test-${randomUUID().slice(0, 8)}`;
  process.env.OTEL_SERVICE_NAME = service;
});

let log = captureDiag(DiagLogLevel.INFO);
beforeEach(() => {
  log = captureDiag(DiagLogLevel.INFO);
});
afterEach(() => log.restore());

function emit(p: LogRecordProcessor, prefix: string, n: number): LoggerProvider {
  const provider = new LoggerProvider({ processors: [p] });
  for (let i = 0; i < n; i++) {
    provider.getLogger('t').emit(auditRecord(`${prefix}-0:${i}`, `${prefix}-0`));
  }
  return provider;
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-0:${i}`);

/** A DataStorage address that refuses connections, and its port (to come back on). */
async function downServer(): Promise<{ ds: FaultServer; port: number }> {
  const ds = await FaultServer.start();
  const port = Number(new URL(ds.url).port);
  await ds.close();
  return { ds, port };
}

/**
 * Two processes that ran together while DataStorage was down: `a` in the default directory
 * with `na` records, `b` in `…-2` with `nb`, each left there.
 */
async function twoDeadProcesses(down: FaultServer, na: number, nb: number): Promise<void> {
  const a = createProcessor({ exporter: fastExporter(down), shutdownTimeoutMillis: 10 }, {});
  const pa = emit(a, 'a', na);
  const b = createProcessor({ exporter: fastExporter(down), shutdownTimeoutMillis: 10 }, {});
  const pb = emit(b, 'b', nb);
  await pb.shutdown();
  await pa.shutdown();
}

/** The service's `n`th default spool directory for DataStorage `ds`. */
const defaultDir = (ds: FaultServer, n: number) =>
  defaultSpoolDirectory(service, ds.url.replace(/\/$/, ''), n);

describe('leftover default spools', () => {
  it.each([
    ['AuditLogRecordProcessor', false],
    ['ThreadedAuditLogRecordProcessor', true],
  ] as const)(
    'one process comes back (%s): it delivers its own backlog, then what the dead process left in `…-2`, then lets that directory go',
    async (_name, threaded) => {
      const { ds: down, port } = await downServer();
      await twoDeadProcesses(down, 20, 30);
      const dir2 = defaultDir(down, 2);
      expect(probeKernelLock(dir2).state).toBe('free');

      const ds = await FaultServer.start({ port });
      const c = threaded
        ? createThreadedProcessor({ exporter: fastExporter(ds) }, { leftoverCheckMillis: 50 })
        : createProcessor({ exporter: fastExporter(ds) }, { leftoverCheckMillis: 50 });
      const provider = new LoggerProvider({ processors: [c] });
      await c.forceFlush({ timeoutMillis: 30_000 }); // its own directory's: a's
      await log.waitFor(/30 audit records an earlier process left delivered/);
      expect(deliveredIds(ds).sort()).toEqual([...ids('a', 20), ...ids('b', 30)].sort());
      expect(ds.specViolations).toEqual([]);
      expect(probeKernelLock(dir2).state).toBe('free'); // the next process may take it
      await provider.shutdown();
      await ds.close();
    },
    60_000,
  );

  it('a process with a backlog of its own takes no leftover', async () => {
    const { ds: down } = await downServer();
    await twoDeadProcesses(down, 20, 30);
    const dir2 = defaultDir(down, 2);
    // It takes the default directory, a's backlog its own and undelivered (DataStorage down).
    const seen: string[] = []; // the state of b's lock after each check
    let tenChecks: () => void = () => undefined;
    const ten = new Promise<void>((resolve) => {
      tenChecks = resolve;
    });
    const c = createProcessor(
      { exporter: fastExporter(down), shutdownTimeoutMillis: 10 },
      {
        leftoverCheckMillis: 20,
        onLeftoverCheck: () => {
          seen.push(probeKernelLock(dir2).state);
          if (seen.length === 10) tenChecks();
        },
      },
    );
    const provider = new LoggerProvider({ processors: [c] });
    expect(probeKernelLock(defaultDir(down, 1)).state).toBe('held');
    // Over ten of its checks, b's directory is never taken.
    await ten;
    expect(seen.slice(0, 10)).toEqual(Array(10).fill('free'));
    expect(log.messages.filter((m) => /earlier process left/.test(m))).toEqual([]);
    await provider.shutdown();
  }, 60_000);

  it('DataStorage down: a leftover taken makes no progress and is let go (its lock free again), then delivered once DataStorage is back', async () => {
    const { ds: down, port } = await downServer();
    await twoDeadProcesses(down, 0, 30);
    const dir2 = defaultDir(down, 2);
    const c = createProcessor(
      { exporter: fastExporter(down), shutdownTimeoutMillis: 10 },
      { leftoverCheckMillis: 50 },
    );
    const provider = new LoggerProvider({ processors: [c] });
    await log.waitFor(/30 audit records an earlier process left, being delivered/);
    await vi.waitFor(() => expect(probeKernelLock(dir2).state).toBe('free'), {
      timeout: 10_000,
      interval: 10,
    });
    const ds = await FaultServer.start({ port }); // back: taken again after its back-off
    await log.waitFor(/30 audit records an earlier process left delivered/);
    expect(deliveredIds(ds).sort()).toEqual(ids('b', 30).sort());
    await provider.shutdown();
    await ds.close();
  }, 60_000);

  it('the DataStorage URL changed: the records of the old default directory are reported (where, for which DataStorage), never sent to the new one', async () => {
    const { ds: old } = await downServer();
    const a = createProcessor({ exporter: fastExporter(old), shutdownTimeoutMillis: 10 }, {});
    await emit(a, 'old', 12).shutdown();
    const oldDir = defaultDir(old, 1);

    const ds = await FaultServer.start();
    const b = createProcessor({ exporter: fastExporter(ds) }, { leftoverCheckMillis: 50 });
    const provider = new LoggerProvider({ processors: [b] });
    const line = await log.waitFor(/audit records waiting in a spool for another DataStorage/);
    expect(line).toContain(
      `12 audit records waiting in a spool for another DataStorage: ${oldDir}`,
    );
    expect(line).toContain(`holds them for ${old.url.replace(/\/$/, '')}`);
    expect(line).toMatch(/KUBERNAUT_AUDIT_SPOOL_DIR/);
    emit(b, 'new', 3);
    await b.forceFlush({ timeoutMillis: 30_000 });
    expect(deliveredIds(ds).sort()).toEqual(ids('new', 3).sort());
    await provider.shutdown();
    await ds.close();
  }, 60_000);

  it('a backlog is records DataStorage is not keeping up with, not any record in the spool', () => {
    const now = 1_000_000;
    const recent = now - BACKLOG_MILLIS / 2;
    const old = now - BACKLOG_MILLIS - 1;
    // Empty: none.
    expect(hasBacklog({ records: 0, oldestAppendedAt: undefined }, undefined, now)).toBe(false);
    // A busy process whose records DataStorage accepts as they come: none.
    expect(hasBacklog({ records: 500, oldestAppendedAt: recent }, recent, now)).toBe(false);
    // Records waiting too long, nothing accepted lately, or never: a backlog.
    expect(hasBacklog({ records: 500, oldestAppendedAt: old }, recent, now)).toBe(true);
    expect(hasBacklog({ records: 5, oldestAppendedAt: recent }, old, now)).toBe(true);
    expect(hasBacklog({ records: 5, oldestAppendedAt: recent }, undefined, now)).toBe(true);
  });
});

describe('a shared root another user could have made', () => {
  it.each([
    ['writable by other users', 'mode'],
    ['a symbolic link', 'link'],
  ] as const)(
    'a root %s is used for nothing: the spool is memory-only and says why, a spool planted there is never delivered',
    async (_what, how) => {
      const { ds: down, port } = await downServer();
      await twoDeadProcesses(down, 0, 30); // b's 30 records wait in `…-2`: the "planted" spool
      const root = join(process.env.TMPDIR as string, 'kubernaut-audit');
      const moved = `${root}.real`;
      if (how === 'mode') chmodSync(root, 0o777);
      else {
        renameSync(root, moved);
        symlinkSync(moved, root);
      }
      try {
        const ds = await FaultServer.start({ port });
        let checks = 0;
        const c = createProcessor(
          { exporter: fastExporter(ds) },
          { leftoverCheckMillis: 20, onLeftoverCheck: () => checks++ },
        );
        const provider = emit(c, 'c', 5);
        await c.forceFlush({ timeoutMillis: 30_000 });
        expect(deliveredIds(ds).sort()).toEqual(ids('c', 5).sort());
        // Give leftover checks, if any run, the time to take `…-2`: none of b's arrives.
        const until = Date.now() + 1_000;
        while (checks < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect(deliveredIds(ds).filter((id) => id.startsWith('b-'))).toEqual([]);
        await log.waitFor(how === 'mode' ? /writable by other users/ : /is a symbolic link/);
        await provider.shutdown();
        await ds.close();
      } finally {
        if (how === 'mode') chmodSync(root, 0o700);
        else {
          rmSync(root);
          renameSync(moved, root);
        }
      }
    },
    60_000,
  );
});

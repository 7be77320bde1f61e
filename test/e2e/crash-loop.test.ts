// SPDX-License-Identifier: Apache-2.0
/*
 * A crash loop: one spool, many processes in a row, each killed with SIGKILL at a different
 * point — during its start (recovery, the predecessor's backlog being delivered), right after
 * it is ready, and while it emits with requests in flight — while DataStorage answers, some of
 * its answers slow or lost after commit. A last process delivers what is left. Then
 * `kubernaut-audit verify`'s analysis of what DataStorage stored finds no gap and no chain
 * break: every seq a killed session reserved and never spooled lies in a crash window a later
 * session declared. With 'sync' durability every record whose emit() returned is delivered;
 * with 'batch' the records lost are at most the windows' unaccounted seqs. Resent requests
 * (in flight at a kill, or answered by a reset after commit) show as duplicates, never as gaps.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { analyze } from '@kubernaut/audit-verifier';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./fixtures/verifier-child.ts', import.meta.url));

afterAll(() => cleanupTempDirs());

/** Kill plan of one process: after `emits` printed emits, or `millis` after it was spawned. */
type Kill = { emits: number } | { millis: number };

async function runAndKill(
  url: string,
  spoolDir: string,
  base: number,
  kill: Kill,
  durability: 'sync' | 'batch',
  kind: string,
): Promise<number[]> {
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: {
      ...process.env,
      DS_URL: url,
      SPOOL_DIR: spoolDir,
      DURABILITY: durability,
      PROCESSOR: kind,
      DELAY: '100',
      CORRELATION_ID: 'crash-loop',
      N_BASE: String(base),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const printed: number[] = [];
  let buf = '';
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const killNow = () => {
    if (child.exitCode === null && !child.killed) child.kill('SIGKILL');
  };
  if ('millis' in kill) setTimeout(killNow, kill.millis);
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('E ')) printed.push(Number(l.slice(2)));
    if ('emits' in kill && printed.length >= kill.emits) killNow();
  });
  await closed;
  return printed;
}

it.each([
  ['AuditLogRecordProcessor', 'sync', ''],
  ['ThreadedAuditLogRecordProcessor', 'batch', 'threaded'],
] as const)(
  '%s, %s: a dozen SIGKILLs at every stage leave no gap and no chain break',
  async (_name, durability, kind) => {
    const ds = await FaultServer.start();
    const spoolDir = tempDir('crash-loop-');
    const plan: Kill[] = [
      { emits: 400 },
      { millis: 150 },
      { emits: 0 },
      { emits: 900 },
      { millis: 400 },
      { emits: 50 },
      { emits: 1500 },
      { millis: 250 },
      { emits: 10 },
      { emits: 700 },
      { millis: 600 },
      { emits: 300 },
    ];
    const printed: number[] = [];
    for (let g = 0; g < plan.length; g++) {
      // Some answers slow (the kill lands with a request in flight), some lost after commit.
      ds.inject({ type: 'slow', delayMillis: 300 }, 2);
      ds.inject({ type: 'reset-after-commit' }, 1);
      const kill = plan[g] as Kill;
      printed.push(...(await runAndKill(ds.url, spoolDir, g * 1_000_000, kill, durability, kind)));
    }
    const processor = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({
        url: ds.url,
        retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
      }),
      spool: { directory: spoolDir },
    });
    const provider = new LoggerProvider({ processors: [processor] });
    await processor.forceFlush({ timeoutMillis: 30_000 });
    await provider.shutdown();
    await ds.close();

    const stored = ds.received();
    const ns = new Set(stored.map((s) => (s.event.event_data as { n?: number }).n));
    expect(printed.length).toBeGreaterThan(2000);
    const lost = printed.filter((n) => !ns.has(n));
    const report = analyze({
      events: stored.map((s) => ({ event_id: s.event_id, ...s.event }) as never),
      maxListed: 1_000_000,
    });
    const p = report.producers[0];
    console.log(
      JSON.stringify({
        printed: printed.length,
        stored: stored.length,
        sessions: p?.sessions.length,
        windows: p?.crash_windows.length,
        unaccounted: p?.crash_unaccounted,
        gaps: p?.gaps,
        dups: p?.duplicates_count,
        breaks: p?.chain_breaks.slice(0, 3),
      }),
    );
    expect(report.producers).toHaveLength(1);
    expect(p?.gaps).toEqual([]);
    expect(p?.chain_breaks).toEqual([]);
    expect(p?.crash_windows.length).toBeGreaterThanOrEqual(3);
    if (durability === 'sync') expect(lost).toEqual([]);
    else expect(lost.length).toBeLessThanOrEqual(p?.crash_unaccounted ?? 0);
    // What was stored twice is a resend (the same record), never a seq given to two records;
    // and every record stored was emitted (at most one per process was cut by its kill).
    expect(p?.duplicates.filter((d) => d.conflicting)).toEqual([]);
    const emitted = new Set(printed);
    expect([...ns].filter((n) => !emitted.has(n as number)).length).toBeLessThanOrEqual(
      plan.length,
    );
  },
  180_000,
);

// SPDX-License-Identifier: Apache-2.0
/*
 * Write throughput of the reference DataStorage server (DESIGN §10): batches of 500 events
 * POSTed over loopback HTTP with a few requests in flight, into PostgreSQL (a scratch
 * database on DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/test) and into
 * in-memory PGlite. Prints events/s for each.
 *
 *   node_modules/.bin/node --conditions=@kubernaut/source bench/datastorage-throughput.ts
 *
 * Env: BENCH_EVENTS (default 100000 for PostgreSQL; PGlite runs a fifth of it),
 * BENCH_CONCURRENCY (default 4), BENCH_CORRELATIONS per batch (default 50).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { type StorageOptions, startDataStorageServer } from '@kubernaut/datastorage-server';
import pg from 'pg';

const ADMIN_URL = process.env.DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TOTAL = Number(process.env.BENCH_EVENTS ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const CORRELATIONS = Number(process.env.BENCH_CORRELATIONS ?? 50);
const BATCH = 500;

function body(batchNo: number): string {
  const base = Date.now() - 60_000;
  const events = [];
  for (let i = 0; i < BATCH; i++) {
    events.push({
      version: '1.0',
      event_type: 'gateway.signal.received',
      event_timestamp: new Date(base + i).toISOString(),
      event_category: 'gateway',
      event_action: 'received',
      event_outcome: 'success',
      correlation_id: `bench-${batchNo % 97}-${i % CORRELATIONS}`,
      actor_type: 'service',
      actor_id: 'gateway',
      resource_type: 'Signal',
      resource_id: `sig-${i}`,
      namespace: 'prod',
      severity: 'info',
      duration_ms: i,
      event_data: {
        event_type: 'gateway.signal.received',
        signal_name: 'HighCPU',
        fingerprint: randomUUID(),
        labels: { app: 'api', tier: 'backend', zone: 'eu-west-1a' },
        count: i,
      },
    });
  }
  return JSON.stringify(events);
}

/** Posts `batches` prebuilt bodies with CONCURRENCY in flight; runs in a worker thread. */
async function client(url: string, batches: number, bodies: string[]): Promise<void> {
  let next = 0;
  const post = async (i: number) => {
    const r = await fetch(`${url}/api/v1/audit/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodies[i % bodies.length],
    });
    await r.arrayBuffer();
    if (r.status !== 201) throw new Error(`batch ${i} answered ${r.status}`);
  };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < batches) await post(next++);
    }),
  );
}

/** CPU seconds (user + system) used so far by the given processes (Linux /proc). */
function processCpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // process gone, or not Linux
    }
  }
  return ticks / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function postgresBackendPids(connectionString: string): Promise<number[]> {
  const c = new pg.Client({ connectionString });
  await c.connect();
  try {
    const r = await c.query(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'kubernaut-datastorage'",
    );
    return r.rows.map((row: { pid: number }) => row.pid);
  } finally {
    await c.end();
  }
}

async function run(name: string, storage: StorageOptions, total: number): Promise<number> {
  const server = await startDataStorageServer({ port: 0, storage, quiet: true });
  try {
    // Bodies are built before timing, and sent from another thread: this measures the server.
    const bodies = Array.from({ length: 8 }, (_, i) => body(i));
    const batches = Math.ceil(total / BATCH);
    // Warm-up (partitions, plans, pool connections).
    await Promise.all(Array.from({ length: CONCURRENCY }, () => client(server.url, 1, bodies)));
    const pgPids =
      storage.kind === 'postgres' ? await postgresBackendPids(storage.connectionString) : [];
    const cpu0 = process.threadCpuUsage();
    const pg0 = processCpuSeconds(pgPids);
    const start = process.hrtime.bigint();
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { url: server.url, batches, bodies },
      execArgv: process.execArgv,
    });
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`client exited ${code}`)),
      );
    });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.threadCpuUsage(cpu0);
    const events = batches * BATCH;
    const rate = events / seconds;
    console.log(
      `${name.padEnd(10)} ${String(events).padStart(7)} events in ${seconds.toFixed(2)} s = ${Math.round(rate)} events/s (concurrency ${CONCURRENCY}, load average ${loadavg()[0]!.toFixed(1)})`,
    );
    // CPU cost per event does not depend on what else runs on the machine: it tells what two
    // idle cores would sustain (the server's JS thread and PostgreSQL each bound their share).
    const serverUs = ((cpu.user + cpu.system) / events).toFixed(1);
    if (pgPids.length > 0) {
      const pgSeconds = processCpuSeconds(pgPids) - pg0;
      const nodePerEvent = (cpu.user + cpu.system) / 1e6 / events;
      const pgPerEvent = pgSeconds / events;
      const capacity = Math.min(1 / nodePerEvent, 2 / (nodePerEvent + pgPerEvent));
      console.log(
        `${''.padEnd(10)} CPU per event: server thread ${serverUs} µs, PostgreSQL ${(pgPerEvent * 1e6).toFixed(1)} µs -> about ${Math.round(capacity)} events/s on 2 idle cores`,
      );
    } else {
      console.log(
        `${''.padEnd(10)} CPU per event: server thread ${serverUs} µs (database included)`,
      );
    }
    return rate;
  } finally {
    await server.close();
  }
}

if (!isMainThread) {
  const { url, batches, bodies } = workerData as { url: string; batches: number; bodies: string[] };
  await client(url, batches, bodies);
} else {
  await main();
}

async function main(): Promise<void> {
  const dbName = `ds_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  try {
    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    await run('postgres', { kind: 'postgres', connectionString: url.toString() }, TOTAL);
    if (process.env.BENCH_SKIP_PGLITE !== '1') {
      await run('pglite', { kind: 'pglite' }, Math.max(BATCH, Math.floor(TOTAL / 5)));
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

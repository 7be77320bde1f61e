// SPDX-License-Identifier: Apache-2.0
/*
 * Scenario 6 — ingest of the reference DataStorage server on PostgreSQL, side by side with a
 * raw PostgreSQL floor for the same rows (DESIGN §10, issue #12):
 *
 *  - floor (baseline): the same 500-event batches turned into the same rows, per-correlation
 *    hash chain computed client-side (no locks, no head lookup, no HTTP, no validation), one
 *    `COPY audit_events FROM STDIN` per batch, 4 connections in flight, into the server's own
 *    schema (migrations, partitions, indexes, triggers);
 *  - server: the same batches POSTed over loopback HTTP from a worker thread, 4 in flight,
 *    into the reference server (bearer-token auth on) on PostgreSQL (which sends the rows in
 *    COPY's binary format; the floor sends the text format);
 *  - PGlite: the server on in-memory PGlite (no COPY there: one INSERT ... SELECT FROM
 *    jsonb_to_recordset per batch), for reference.
 *
 * Each run gets a fresh scratch database. Reported: events/s, and the CPU time per event of
 * the PostgreSQL backends serving the run's own database (read from /proc; other databases'
 * backends and the cluster's shared processes — WAL writer, checkpointer — are not counted),
 * plus the CPU per event of the server's JavaScript thread. Floor and server alternate over
 * several rounds; medians with min–max.
 *
 *   node bench/run.ts --only 6                     (or, alone:)
 *   node_modules/.bin/node --conditions=@kubernaut/source bench/datastorage-throughput.ts
 *
 * Env: BENCH_EVENTS (events per run; default 100000, --quick 25000), BENCH_ROUNDS (default 3,
 * --quick 2), BENCH_CONCURRENCY (default 4), BENCH_CORRELATIONS per batch (default 50),
 * BENCH_SKIP_PGLITE=1, BENCH_SKIP_FLOOR=1 (profiling the server alone).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { canonicalize } from '@kubernaut/audit-provenance';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import {
  computeEventHash,
  type HashedEventFields,
  type StorageOptions,
  startDataStorageServer,
} from '@kubernaut/datastorage-server';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ADMIN_URL } from './lib/datastorage.ts';
import { fmt, fmtRange, fmtRatio, QUICK, Reporter } from './lib/result.ts';
import { summarize } from './lib/stats.ts';
import { renderScenario } from './lib/table.ts';

const TOTAL = Number(process.env.BENCH_EVENTS ?? (QUICK ? 25_000 : 100_000));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 3));
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const CORRELATIONS = Number(process.env.BENCH_CORRELATIONS ?? 50);
const BATCH = 500;
const BODIES = 8;
const GOAL_RATE = 0.65;
const GOAL_CPU = 1.25;

/** The bench's events: every field the floor's rows are built from is set. */
type BenchEvent = AuditEventRequest &
  Required<Pick<AuditEventRequest, 'actor_type' | 'actor_id' | 'resource_type' | 'resource_id'>> & {
    namespace: string;
    severity: string;
    duration_ms: number;
  };

function batch(batchNo: number): BenchEvent[] {
  const base = Date.now() - 60_000;
  const events: BenchEvent[] = [];
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
  return events;
}

/**
 * Posts `batches` prebuilt bodies (as Buffers) with CONCURRENCY in flight over kept-alive
 * node:http connections; runs in a worker thread. Resolves with the thread's CPU µs.
 */
async function client(
  url: string,
  token: string,
  batches: number,
  bodies: Buffer[],
): Promise<number> {
  const cpu0 = process.threadCpuUsage();
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const target = new URL(`${url}/api/v1/audit/events/batch`);
  let next = 0;
  const post = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const body = bodies[i % bodies.length]!;
      const req = httpRequest(
        target,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            authorization: `Bearer ${token}`,
          },
        },
        (res) => {
          res.on('data', () => {});
          res.on('error', reject);
          res.on('end', () =>
            res.statusCode === 201
              ? resolve()
              : reject(new Error(`batch ${i} answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < batches) await post(next++);
    }),
  );
  agent.destroy();
  const cpu = process.threadCpuUsage(cpu0);
  return cpu.user + cpu.system;
}

// ---- CPU accounting ------------------------------------------------------------------

const CLOCK_TICKS = 100;

/** CPU seconds (user + system) used so far by each process (Linux /proc). */
function cpuSeconds(pids: Iterable<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
    } catch {
      // gone
    }
  }
  return out;
}

/** Backends serving one database, watched from the admin connection. */
class BackendCpu {
  private readonly _start = new Map<number, number>();
  private readonly _last = new Map<number, number>();
  private readonly _admin: pg.Client;
  private readonly _db: string;
  constructor(admin: pg.Client, db: string) {
    this._admin = admin;
    this._db = db;
  }
  private async _pids(): Promise<number[]> {
    const r = await this._admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = $2',
      [this._db, 'client backend'],
    );
    return r.rows.map((x) => x.pid);
  }
  async start(): Promise<void> {
    for (const [pid, s] of cpuSeconds(await this._pids())) this._start.set(pid, s);
  }
  /** Samples (call now and then: a backend that ends is counted up to its last sample). */
  async sample(): Promise<void> {
    for (const [pid, s] of cpuSeconds(await this._pids())) {
      if (!this._start.has(pid)) this._start.set(pid, 0);
      this._last.set(pid, s);
    }
  }
  async seconds(): Promise<number> {
    await this.sample();
    let total = 0;
    for (const [pid, end] of this._last) total += end - (this._start.get(pid) ?? 0);
    return total;
  }
}

// ---- runs ------------------------------------------------------------------------------

interface RunResult {
  rate: number;
  pgUsPerEvent: number;
  jsUsPerEvent: number;
  /** CPU of the HTTP client thread (server runs only). */
  clientUsPerEvent?: number;
}

async function withDatabase<T>(admin: pg.Client, fn: (name: string, url: string) => Promise<T>) {
  const name = `ds_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    return await fn(name, url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

/** Creates the server's schema (and this month's partitions) in a database. */
async function migrate(url: string): Promise<void> {
  const s = await startDataStorageServer({
    port: 0,
    quiet: true,
    storage: { kind: 'postgres', connectionString: url },
  });
  await s.close();
}

function copyField(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return /[\\\n\r\t]/.test(v)
    ? v.replace(/[\\\n\r\t]/g, (c) =>
        c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t',
      )
    : v;
}

/** The floor: the rows the server would write, chained client-side, COPY per batch. */
async function runFloor(admin: pg.Client, batches: BenchEvent[][]): Promise<RunResult> {
  return withDatabase(admin, async (name, url) => {
    await migrate(url);
    const conns = await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        const c = new pg.Client({ connectionString: url, application_name: 'bench-copy-floor' });
        await c.connect();
        return c;
      }),
    );
    const heads = new Map<string, { pos: number; hash: string }>();
    const rowsOf = (events: BenchEvent[]): string => {
      let data = '';
      for (const e of events) {
        const ts = `${e.event_timestamp.slice(0, 23)}000Z`;
        const json = canonicalize(e.event_data);
        const fields: HashedEventFields = {
          event_id: randomUUID(),
          version: e.version,
          event_timestamp: ts,
          event_type: e.event_type,
          event_category: e.event_category,
          event_action: e.event_action,
          event_outcome: e.event_outcome,
          correlation_id: e.correlation_id,
          actor_type: e.actor_type,
          actor_id: e.actor_id,
          actor_ip: null,
          resource_type: e.resource_type,
          resource_id: e.resource_id,
          parent_event_id: null,
          namespace: e.namespace,
          cluster_id: null,
          severity: e.severity,
          duration_ms: e.duration_ms,
          error_code: null,
          error_message: null,
          retention_days: 2555,
          is_sensitive: false,
        };
        const head = heads.get(e.correlation_id) ?? { pos: 0, hash: '' };
        const hash = computeEventHash(head.hash, fields, json);
        const pos = head.pos + 1;
        heads.set(e.correlation_id, { pos, hash });
        data +=
          `${fields.event_id}\t${fields.version}\t${ts}\t${ts.slice(0, 10)}\t${e.event_type}` +
          `\t${e.event_category}\t${e.event_action}\t${e.event_outcome}\t${copyField(e.actor_type)}` +
          `\t${copyField(e.actor_id)}\t\\N\t${copyField(e.resource_type)}\t${copyField(e.resource_id)}` +
          `\t${copyField(e.correlation_id)}\t\\N\t\\N\t${copyField(e.namespace)}\t\\N` +
          `\t${copyField(json)}\t${copyField(e.severity)}\t${e.duration_ms}\t\\N\t\\N\t2555\tf` +
          `\t${hash}\t${head.hash}\tsha256-unkeyed\t${pos}\n`;
      }
      return data;
    };
    const COLUMNS =
      'event_id, event_version, event_timestamp, event_date, event_type, event_category, event_action, event_outcome, actor_type, actor_id, actor_ip, resource_type, resource_id, correlation_id, parent_event_id, parent_event_date, namespace, cluster_id, event_data, severity, duration_ms, error_code, error_message, retention_days, is_sensitive, event_hash, previous_event_hash, hash_algorithm, chain_position';
    const copyBatch = async (c: pg.Client, events: BenchEvent[]) => {
      const stream = c.query(copyFrom(`COPY audit_events (${COLUMNS}) FROM STDIN`));
      await new Promise<void>((resolve, reject) => {
        stream.on('finish', resolve);
        stream.on('error', reject);
        stream.end(Buffer.from(rowsOf(events), 'utf8'));
      });
    };
    try {
      // Warm-up: a batch per connection (plans, caches, the connections' first work).
      await Promise.all(conns.map((c, i) => copyBatch(c, batches[i % batches.length]!)));
      const n = Math.ceil(TOTAL / BATCH);
      const cpu = new BackendCpu(admin, name);
      await cpu.start();
      const js0 = process.threadCpuUsage();
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        conns.map(async (c) => {
          while (next < n) {
            const i = next++;
            await copyBatch(c, batches[i % batches.length]!);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const js = process.threadCpuUsage(js0);
      const pgSeconds = await cpu.seconds();
      const events = n * BATCH;
      return {
        rate: events / seconds,
        pgUsPerEvent: (pgSeconds / events) * 1e6,
        jsUsPerEvent: (js.user + js.system) / events,
      };
    } finally {
      await Promise.all(conns.map((c) => c.end()));
    }
  });
}

/** The server: HTTP batches from a worker thread into the server on `storage`. */
async function runServer(
  storage: StorageOptions,
  total: number,
  bodies: Buffer[],
  token: string,
  tokenFile: string,
  cpu?: BackendCpu,
): Promise<RunResult> {
  const server = await startDataStorageServer({
    port: 0,
    storage,
    quiet: true,
    auth: { tokenFile },
  });
  try {
    const batches = Math.ceil(total / BATCH);
    // Warm-up (partitions, plans, pool connections).
    await client(server.url, token, CONCURRENCY, bodies);
    // The client thread loads first; timing starts when it is ready to send.
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { url: server.url, token, batches, bodies },
      execArgv: process.execArgv,
    });
    const messages: Array<{ ready?: boolean; cpuMicros?: number }> = [];
    let notify: (() => void) | undefined;
    worker.on('message', (m) => {
      messages.push(m);
      notify?.();
    });
    const exited = new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`client exited ${code}`)),
      );
    });
    await Promise.race([
      exited.then(() => {
        throw new Error('client exited before it was ready');
      }),
      new Promise<void>((resolve) => {
        notify = () => messages.some((m) => m.ready) && resolve();
      }),
    ]);
    await cpu?.start();
    const js0 = process.threadCpuUsage();
    const t0 = performance.now();
    worker.postMessage('go');
    const sampler = cpu ? setInterval(() => void cpu.sample(), 1000) : undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        notify = () => messages.some((m) => m.cpuMicros !== undefined) && resolve();
        exited.then(() => notify?.(), reject);
      });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - t0) / 1000;
    const js = process.threadCpuUsage(js0);
    await exited;
    const events = batches * BATCH;
    const clientMicros = messages.find((m) => m.cpuMicros !== undefined)?.cpuMicros ?? Number.NaN;
    return {
      rate: events / seconds,
      pgUsPerEvent: cpu ? ((await cpu.seconds()) / events) * 1e6 : Number.NaN,
      jsUsPerEvent: (js.user + js.system) / events,
      clientUsPerEvent: clientMicros / events,
    };
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  const rep = new Reporter('6', '6. Reference DataStorage ingest vs the PostgreSQL COPY floor');
  const dir = mkdtempSync(join(tmpdir(), 'bench-ds-'));
  const token = randomBytes(24).toString('base64url');
  const tokenFile = join(dir, 'tokens');
  writeFileSync(tokenFile, `${token}\n`);
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    // The same batches for every writer, built before timing.
    const batches = Array.from({ length: BODIES }, (_, i) => batch(i));
    const bodies = batches.map((b) => Buffer.from(JSON.stringify(b)));
    const floor: RunResult[] = [];
    const server: RunResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which runs first.
      const order = round % 2 === 0 ? ['floor', 'server'] : ['server', 'floor'];
      for (const which of order) {
        if (which === 'floor' && process.env.BENCH_SKIP_FLOOR === '1') continue;
        if (which === 'floor') {
          const r = await runFloor(admin, batches);
          floor.push(r);
          rep.progress(
            `round ${round + 1} floor: ${Math.round(r.rate)} events/s, PostgreSQL ${r.pgUsPerEvent.toFixed(1)} µs/event`,
          );
        } else {
          const r = await withDatabase(admin, async (name, url) => {
            const cpu = new BackendCpu(admin, name);
            return runServer(
              { kind: 'postgres', connectionString: url },
              TOTAL,
              bodies,
              token,
              tokenFile,
              cpu,
            );
          });
          server.push(r);
          // The line bench/scenarios/end-to-end.ts reads (the server's own capacity).
          const events = Math.ceil(TOTAL / BATCH) * BATCH;
          console.log(
            `postgres ${events} events in ${(events / r.rate).toFixed(2)} s = ${Math.round(r.rate)} events/s`,
          );
          rep.progress(
            `round ${round + 1} server: ${Math.round(r.rate)} events/s, PostgreSQL ${r.pgUsPerEvent.toFixed(1)} µs/event, server JS ${r.jsUsPerEvent.toFixed(1)} µs/event, HTTP client ${r.clientUsPerEvent?.toFixed(1)} µs/event`,
          );
        }
      }
    }
    let pglite: RunResult | undefined;
    if (process.env.BENCH_SKIP_PGLITE !== '1') {
      pglite = await runServer(
        { kind: 'pglite' },
        Math.max(BATCH, Math.floor(TOTAL / 5)),
        bodies,
        token,
        tokenFile,
      );
      rep.progress(`pglite: ${Math.round(pglite.rate)} events/s`);
    }

    const fRate = summarize(floor.map((r) => r.rate));
    const sRate = summarize(server.map((r) => r.rate));
    const fCpu = summarize(floor.map((r) => r.pgUsPerEvent));
    const sCpu = summarize(server.map((r) => r.pgUsPerEvent));
    const sJs = summarize(server.map((r) => r.jsUsPerEvent));
    const rateRatio = sRate.median / fRate.median;
    const cpuRatio = sCpu.median / fCpu.median;
    rep.table({
      title: `Events/s and CPU per event, ${Math.ceil(TOTAL / BATCH) * BATCH} events per run in batches of ${BATCH}, ${CONCURRENCY} in flight: median (min–max) of ${ROUNDS} runs — goals: ≥ ${GOAL_RATE}× the floor's events/s, ≤ ${GOAL_CPU}× its PostgreSQL CPU per event`,
      headers: [
        'writer',
        'events/s',
        'ratio',
        'PostgreSQL CPU µs/event',
        'ratio',
        'JS thread µs/event (floor: client; server: server)',
      ],
      rows: [
        [
          'COPY FROM STDIN floor, chain computed client-side (baseline)',
          fmtRange(fRate),
          '1.00×',
          fmtRange(fCpu, 1),
          '1.00×',
          fmtRange(summarize(floor.map((r) => r.jsUsPerEvent)), 1),
        ],
        [
          'reference DataStorage on PostgreSQL (HTTP, auth, validation, locks, COPY)',
          fmtRange(sRate),
          fmtRatio(rateRatio),
          fmtRange(sCpu, 1),
          fmtRatio(cpuRatio),
          fmtRange(sJs, 1),
        ],
        ...(pglite
          ? [
              [
                'reference DataStorage on PGlite (in process, INSERT ... jsonb_to_recordset)',
                fmt(pglite.rate),
                '—',
                '(in the server thread)',
                '—',
                fmt(pglite.jsUsPerEvent, 1),
              ],
            ]
          : []),
      ],
    });
    rep.goal(
      `DataStorage ingest ≥ ${GOAL_RATE}× the PostgreSQL COPY floor's events/s`,
      `${fmtRatio(rateRatio)} (${fmt(sRate.median)} vs ${fmt(fRate.median)} events/s)`,
      rateRatio >= GOAL_RATE,
    );
    rep.goal(
      `DataStorage PostgreSQL CPU per event ≤ ${GOAL_CPU}× the COPY floor's`,
      `${fmtRatio(cpuRatio)} (${sCpu.median.toFixed(1)} vs ${fCpu.median.toFixed(1)} µs)`,
      cpuRatio <= GOAL_CPU,
    );
    rep.note(
      'PostgreSQL CPU: user + system time of the client backends connected to the run’s own scratch database (from /proc), divided by the events of the run; the cluster’s shared processes (WAL writer, checkpointer, autovacuum) and other databases’ backends are not counted.',
    );
    rep.note(
      'The floor writes the same rows into the same schema (partitions, indexes, triggers) but takes no locks, reads no chain head, keeps no head table and runs no HTTP, auth or validation; it is what PostgreSQL alone costs for these rows.',
    );
    rep.note(
      `The server's HTTP client (node:http, kept-alive connections, in a worker thread of the benchmark process) used ${fmtRange(summarize(server.map((r) => r.clientUsPerEvent ?? Number.NaN)), 1)} µs of CPU per event; it runs on the same cores.`,
    );
    rep.note(
      'Server on PostgreSQL: per batch one transaction in three round trips — BEGIN with the advisory lock of each correlation and the chain heads; COPY FROM STDIN of the rows in the binary format; the head update with the COMMIT. The floor sends its rows in the text format (measured alone, the binary format costs PostgreSQL ≈ 5 % less CPU per row for these rows).',
    );
    if (process.argv.includes('--result-file')) rep.finish();
    else {
      // Alone: print the tables.
      const file = join(dir, 'result.json');
      process.argv.push('--result-file', file);
      rep.finish();
      console.log(renderScenario(JSON.parse(readFileSync(file, 'utf8'))));
    }
  } finally {
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Last: the module is both the scenario and the worker that posts the batches.
if (!isMainThread) {
  // Ready: wait for the go, so that the main thread times the sending only.
  await new Promise<void>((resolve) => {
    parentPort?.once('message', () => resolve());
    parentPort?.postMessage({ ready: true });
  });
  const { url, token, batches, bodies } = workerData as {
    url: string;
    token: string;
    batches: number;
    bodies: Uint8Array[];
  };
  const cpuMicros = await client(
    url,
    token,
    batches,
    bodies.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
  );
  parentPort?.postMessage({ cpuMicros });
  parentPort?.close();
} else {
  await main();
}

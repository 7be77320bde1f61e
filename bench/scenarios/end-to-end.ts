// SPDX-License-Identifier: Apache-2.0
/*
 * Scenario 3 — end to end (DESIGN §10): one process emits audit records through
 * AuditLogRecordProcessor (spool 'batch', default options) into the reference DataStorage
 * server (its own process) on PostgreSQL (a scratch database, dropped after).
 *
 *  a. Throughput: events/s from the first emit() until forceFlush() resolves (everything
 *     accepted by DataStorage), checked by counting the rows in PostgreSQL. Compared with the
 *     server's own ingest capacity measured by bench/datastorage-throughput.ts (pre-built
 *     batches of 500, 4 requests in flight, no client pipeline).
 *  b. Latency: a steady 1,000 events/s with scheduledDelayMillis 1000; every 10th event is a
 *     probe with its own correlation id, and a poller asks PostgreSQL every 10 ms which probes
 *     are stored (the rows the query API reads). emit→queryable = first seen − emit time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { runTs } from '../lib/child.ts';
import { createScratchDatabase, DataStorageProcess } from '../lib/datastorage.ts';
import { connectPg } from '../lib/pg.ts';
import { auditRecord, benchResource, loadTemplates } from '../lib/records.ts';
import { fmt, fmtRange, fmtRatio, QUICK, Reporter } from '../lib/result.ts';
import { nowNs, percentile, secondsSince, summarize, yieldToLoop } from '../lib/stats.ts';

const N = QUICK ? 5_000 : 30_000;
const ROUNDS = QUICK ? 1 : 3;
const RATE = 1_000;
const STEADY_SECONDS = QUICK ? 5 : 20;
const PROBE_EVERY = 10;

const rep = new Reporter('3', '3. End to end into the reference DataStorage on PostgreSQL');
await loadTemplates();
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
  dirs.push(d);
  return d;
}

function makeProvider(url: string, scheduledDelayMillis?: number) {
  const dir = tempDir();
  const processor = new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({ url }),
    spool: { directory: dir },
    ...(scheduledDelayMillis === undefined ? {} : { scheduledDelayMillis }),
  });
  const provider = new LoggerProvider({ resource: benchResource(), processors: [processor] });
  return { processor, provider, logger: provider.getLogger('bench-e2e', '1.0.0') };
}

const db = await createScratchDatabase('bench_e2e');
let ds: DataStorageProcess | undefined;
const pg = await connectPg(db.url);
try {
  ds = await DataStorageProcess.start(db.url);

  // ---- a. throughput ----
  async function throughputRun(round: number, count: number): Promise<number> {
    const { processor, provider, logger } = makeProvider((ds as DataStorageProcess).url);
    const prefix = `t${round}-`;
    const start = nowNs();
    for (let i = 0; i < count; i += 500) {
      const end = Math.min(count, i + 500);
      for (let j = i; j < end; j++)
        logger.emit(auditRecord(j, { correlationId: `${prefix}${j % 64}` }));
      await yieldToLoop();
    }
    await processor.forceFlush({ timeoutMillis: 120_000 });
    const seconds = secondsSince(start);
    await provider.shutdown();
    const [row] = await pg.query<{ n: string; d: string }>(
      `SELECT count(*) AS n, count(DISTINCT event_data->>'bn_id') AS d FROM audit_events WHERE correlation_id LIKE $1`,
      [`${prefix}%`],
    );
    if (Number(row?.d) !== count) {
      throw new Error(`throughput run ${round}: ${row?.d} distinct events stored of ${count}`);
    }
    return count / seconds;
  }
  await throughputRun(0, 2_000); // warm-up: partitions, plans, JIT
  const rates: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    rates.push(await throughputRun(r, N));
    rep.progress(
      `throughput round ${r}/${ROUNDS}: ${fmt(rates[rates.length - 1] as number, 0)} events/s`,
    );
  }

  // ---- b. emit→queryable latency at a steady rate ----
  const { processor, provider, logger } = makeProvider(ds.url, 1000);
  const emittedAt = new Map<string, number>();
  const latencies: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling || emittedAt.size > 0) {
      const waiting = [...emittedAt.keys()];
      if (waiting.length > 0) {
        const rows = await pg.query<{ c: string }>(
          'SELECT correlation_id AS c FROM audit_events WHERE correlation_id = ANY($1::text[])',
          [waiting],
        );
        const now = Date.now();
        for (const { c } of rows) {
          const t = emittedAt.get(c);
          if (t !== undefined) {
            latencies.push(now - t);
            emittedAt.delete(c);
          }
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const total = RATE * STEADY_SECONDS;
  let emitted = 0;
  const t0 = Date.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((Date.now() - t0) * RATE) / 1000));
      for (; emitted < due; emitted++) {
        if (emitted % PROBE_EVERY === 0) {
          const c = `probe-${emitted}`;
          emittedAt.set(c, Date.now());
          logger.emit(auditRecord(emitted, { correlationId: c }));
        } else logger.emit(auditRecord(emitted, { correlationId: `steady-${emitted % 50}` }));
      }
      if (emitted >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  const achieved = total / ((Date.now() - t0) / 1000);
  await processor.forceFlush({ timeoutMillis: 60_000 });
  const deadline = Date.now() + 30_000;
  while (emittedAt.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  polling = false;
  const missing = emittedAt.size;
  emittedAt.clear();
  await poller;
  await provider.shutdown();

  // ---- the server's own capacity (bench/datastorage-throughput.ts, engineer S) ----
  const here = fileURLToPath(new URL('.', import.meta.url));
  const raw = await runTs(join(here, '../datastorage-throughput.ts'), [], {
    timeoutMillis: 120_000,
    env: {
      BENCH_EVENTS: String(N),
      BENCH_SKIP_PGLITE: '1',
      BENCH_SKIP_FLOOR: '1',
      BENCH_ROUNDS: '1',
    },
  });
  const m = /postgres\s+(\d+) events in ([\d.]+) s = (\d+) events\/s/.exec(raw.stdout);
  const capacity = m ? Number(m[3]) : Number.NaN;

  const ours = summarize(rates);
  rep.table({
    title: `Throughput: events/s from one process into DataStorage on PostgreSQL, ${fmt(N, 0)} events, median (min–max) of ${ROUNDS}`,
    headers: ['path', 'events/s', 'ratio'],
    rows: [
      [
        'reference server alone: pre-built batches of 500, 4 in flight (bench/datastorage-throughput.ts, baseline)',
        m
          ? fmt(capacity, 0)
          : `not available: ${raw.stderr.trim().split('\n').pop() ?? raw.code}`.slice(0, 200),
        '1.00×',
      ],
      [
        "emit() → AuditLogRecordProcessor (spool 'batch') → KubernautAuditExporter → server",
        fmtRange(ours, 0),
        fmtRatio(ours.median / capacity),
      ],
    ],
  });
  rep.table({
    title: `emit→queryable latency at a steady ${fmt(RATE, 0)} events/s for ${STEADY_SECONDS} s, scheduledDelayMillis 1000 — goal p99 ≤ 1,150 ms`,
    headers: ['probes', 'achieved rate', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'never seen'],
    rows: [
      [
        fmt(latencies.length, 0),
        `${fmt(achieved, 0)}/s`,
        fmt(percentile(latencies, 50), 0),
        fmt(percentile(latencies, 90), 0),
        fmt(percentile(latencies, 99), 0),
        fmt(Math.max(...latencies), 0),
        String(missing),
      ],
    ],
  });
  const p99 = percentile(latencies, 99);
  rep.goal(
    'emit→queryable p99 ≤ 1,150 ms at 1,000 events/s, scheduledDelayMillis 1000',
    `${fmt(p99, 0)} ms (${missing} probes never seen)`,
    p99 <= 1150 && missing === 0,
  );
  rep.note(
    `Every throughput run is checked in PostgreSQL: all ${fmt(N, 0)} events stored, distinct. Latency probes are 1 in ${PROBE_EVERY} events (own correlation id); visibility is polled every 10 ms straight from the audit_events table (the query API's source; its per-correlation filter would need one HTTP request per probe per poll), so figures include up to ~10 ms of polling granularity.`,
  );
  rep.note(
    'The server, PostgreSQL and the emitting process share the same cores; the emitting process also runs the spool and the sender.',
  );
} finally {
  await pg.end().catch(() => {});
  await ds?.close().catch(() => {});
  await db.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
rep.finish();

// SPDX-License-Identifier: Apache-2.0
/*
 * End to end: the real OTel SDK (LoggerProvider, NodeSDK) → AuditLogRecordProcessor (spool)
 * → KubernautAuditExporter → the reference DataStorage server (full OpenAPI validation) →
 * PGlite and the machine's PostgreSQL (a scratch database per backend; PostgreSQL down
 * fails the run, never skips it).
 *
 * Counts are exact, by a record-id oracle (test/e2e/support/oracle.ts): each event carries
 * a run id and a record id in event_data, is read back through GET /api/v1/audit/events
 * with paging, and must be there exactly once; DataStorage's verify-chain must be valid for
 * every correlation, and the provenance seqs of every producer gap-free.
 *
 * - an event is queryable as soon as forceFlush() resolves (no sleeps, a 60 s timer);
 * - shutdown() delivers everything still buffered;
 * - a processor restarted on the spool of one shut down while DataStorage was unreachable (the
 *   same address, behind a stopped proxy) delivers what its predecessor left;
 * - the known failure burst (50 producers × 10 through a 100-slot queue) lands 500 rows;
 * - NodeSDK with `logs` from @opentelemetry/api;
 * - PostgreSQL only: the database stopped mid-run (a loopback TCP proxy) with the Redis DLQ:
 *   forceFlush() resolves on 202, and once the database is back every event is stored once.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createCachedPglite,
  type DataStorageServer,
  type DataStorageServerOptions,
  startDataStorageServer,
} from '@kubernaut/datastorage-server';
import {
  AuditLogRecordProcessor,
  type AuditLogRecordProcessorOptions,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import {
  assertExactlyOnce,
  cleanupTempDirs,
  createScratchDatabase,
  type Backend as KitBackend,
  type Harness as KitHarness,
  newRun,
  oracleRecord,
  postBatch,
  readRun,
  type ScratchDatabase,
  specPath,
  storageBackends,
  TcpProxy,
  TEST_RESOURCE_ATTRIBUTES,
  tempDir,
  testAuth,
  testMetrics,
  testPgliteCacheDir,
  testTokenFile,
} from '@kubernaut/test-kit';
import { context, logs, metrics, propagation, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

type Backend = KitBackend<DataStorageServerOptions, DataStorageServer>;
type Harness = KitHarness<DataStorageServer>;
// The reference server with authentication on, as its users run it.
const [pgliteBackend, postgresBackend] = storageBackends(
  startDataStorageServer,
  { auth: testAuth() },
  async () => (await createCachedPglite({ cacheDir: testPgliteCacheDir() })).db,
) as [Backend, Backend];

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const resource = resourceFromAttributes(TEST_RESOURCE_ATTRIBUTES);

/** An exporter for `url` with fast retries (tests never wait for real back-off). */
function exporterFor(url: string): KubernautAuditExporter {
  return new KubernautAuditExporter({
    url,
    bearerTokenFile: testTokenFile(),
    timeoutMillis: 10_000,
    retry: { initialDelayMillis: 5, maxDelayMillis: 50, multiplier: 2, jitter: 0.2 },
  });
}

/** A processor delivering to `url`, spooling in `dir` (a fresh temp directory by default). */
function processorFor(
  url: string,
  options: AuditLogRecordProcessorOptions & { dir?: string } = {},
): { processor: AuditLogRecordProcessor; dir: string } {
  const { dir = tempDir('audit-e2e-'), ...rest } = options;
  const processor = new AuditLogRecordProcessor({
    exporter: exporterFor(url),
    spool: { directory: dir },
    shutdownTimeoutMillis: 20_000,
    ...rest,
  });
  return { processor, dir };
}

/** Dead letters the processor wrote in spool directory `dir` (none expected). */
function deadLetters(dir: string): string[] {
  const p = join(dir, 'dead-letter.jsonl');
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean) : [];
}

afterAll(() => cleanupTempDirs());

describe.each<Backend>([pgliteBackend, postgresBackend])('end to end on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await backend.start({ openapiSpec: specPath() });
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** Rows of `run` counted in the table itself (superuser SQL, not the API). */
  async function rowsInTable(run: string): Promise<number> {
    const rows = await h.sql(
      `SELECT count(*)::int AS n FROM audit_events WHERE event_data->>'e2e_run' = '${run}'`,
    );
    return Number(rows[0]?.n);
  }

  it('an event is queryable immediately after forceFlush() resolves', async () => {
    const run = newRun('flush');
    // A 60 s timer: only forceFlush can have moved the record to DataStorage.
    const { processor, dir } = processorFor(h.server.url, { scheduledDelayMillis: 60_000 });
    const provider = new LoggerProvider({ resource, processors: [processor] });
    const cid = `rr-${run}`;
    const logger = provider.getLogger('e2e');
    logger.emit(oracleRecord(run, `${run}:0`, cid, 0));
    logger.emit({ body: 'an ordinary log line, not audit' });

    await processor.forceFlush();
    const [event] = await assertExactlyOnce(h.server.url, run, [`${run}:0`]);
    expect(event).toMatchObject({
      version: '1.0',
      correlation_id: cid,
      event_outcome: 'success',
      actor_type: 'service',
      actor_id: TEST_RESOURCE_ATTRIBUTES['service.name'],
      namespace: TEST_RESOURCE_ATTRIBUTES['k8s.namespace.name'],
      cluster_id: TEST_RESOURCE_ATTRIBUTES['k8s.cluster.uid'],
    });
    expect(event!.event_data.event_type).toBe(event!.event_type);
    expect(deadLetters(dir)).toEqual([]);
    await provider.shutdown();
  });

  it('shutdown() delivers everything still buffered', async () => {
    const run = newRun('shutdown');
    const { processor, dir } = processorFor(h.server.url, { scheduledDelayMillis: 60_000 });
    const provider = new LoggerProvider({ resource, processors: [processor] });
    const logger = provider.getLogger('e2e');
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      const id = `${run}:${i}`;
      ids.push(id);
      logger.emit(oracleRecord(run, id, `rr-${run}-${i % 6}`, i));
    }
    await provider.shutdown(); // no forceFlush: shutdown alone must deliver
    await assertExactlyOnce(h.server.url, run, ids);
    expect(await rowsInTable(run)).toBe(120);
    expect(deadLetters(dir)).toEqual([]);
  });

  it('a processor restarted on the spool delivers what the previous one left', async () => {
    const run = newRun('restart');
    const dir = tempDir('audit-e2e-spool-');
    // One DataStorage address (a spool belongs to one destination), behind a loopback proxy.
    const target = new URL(h.server.url);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    const url = `http://127.0.0.1:${proxy.port}`;
    await proxy.stop();
    // First run: DataStorage unreachable (refused), short shutdown: everything stays spooled.
    const first = processorFor(url, { dir, shutdownTimeoutMillis: 200 }).processor;
    const p1 = new LoggerProvider({ resource, processors: [first] });
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const id = `${run}:${i}`;
      ids.push(id);
      p1.getLogger('e2e').emit(oracleRecord(run, id, `rr-${run}-${i % 5}`, i));
    }
    await p1.shutdown();
    expect(await readRun(h.server.url, run)).toEqual([]);

    // Second run on the same spool, DataStorage reachable again: it delivers all, exactly once.
    await proxy.start();
    try {
      const second = processorFor(url, { dir }).processor;
      await second.forceFlush();
      await assertExactlyOnce(h.server.url, run, ids);
      expect(await rowsInTable(run)).toBe(150);
      expect(deadLetters(dir)).toEqual([]);
      await second.shutdown();
    } finally {
      await proxy.stop();
    }
  });

  it('the known failure burst (50 producers × 10 through a 100-slot queue) lands 500 rows', async () => {
    const run = newRun('burst');
    const m = testMetrics();
    const { processor, dir } = processorFor(h.server.url, {
      maxQueueSize: 100,
      meterProvider: m.meterProvider,
    });
    const provider = new LoggerProvider({ resource, processors: [processor] });
    const logger = provider.getLogger('producers');
    const ids: string[] = [];
    const producers = Array.from({ length: 50 }, async (_, p) => {
      for (let i = 0; i < 10; i++) {
        const id = `${run}:${p}:${i}`;
        ids.push(id);
        logger.emit(oracleRecord(run, id, `rr-${run}-${p}`, p + i));
        await Promise.resolve();
      }
    });
    await Promise.all(producers);
    await processor.forceFlush();

    expect(ids).toHaveLength(500);
    await assertExactlyOnce(h.server.url, run, ids);
    expect(await rowsInTable(run)).toBe(500);
    // The burst overflowed the 100-slot queue (the old client's failure), yet every record
    // reached the spool and none was dropped: overflow, not an error.
    const processed = (errorType: string | undefined) =>
      m.sum('otel.sdk.processor.log.processed', { 'error.type': errorType });
    expect(await m.sum('kubernaut.audit.intake.overflowed')).toBeGreaterThan(0);
    expect(await processed('queue_full')).toBe(0);
    expect(await processed(undefined)).toBe(500);
    expect(await m.sum('kubernaut.audit.spool.dropped')).toBe(0);
    expect(deadLetters(dir)).toEqual([]);
    await provider.shutdown();
  });

  it('the oracle catches a resent event (self-check: it can fail)', async () => {
    const run = newRun('oracle');
    const { processor } = processorFor(h.server.url);
    const provider = new LoggerProvider({ resource, processors: [processor] });
    const ids = [0, 1, 2].map((i) => `${run}:${i}`);
    ids.forEach((id, i) => {
      provider.getLogger('e2e').emit(oracleRecord(run, id, `rr-${run}`, i));
    });
    await processor.forceFlush();
    await assertExactlyOnce(h.server.url, run, ids);
    // Resend one stored event as a client retrying after an ambiguous failure would.
    const [stored] = await readRun(h.server.url, run);
    const { event_id, event_hash, previous_event_hash, event_date, ...fields } = stored!;
    const resend = await postBatch(h.server.url, [fields]);
    expect(resend.status).toBe(201);
    await expect(assertExactlyOnce(h.server.url, run, ids)).rejects.toThrow(
      String(stored!.event_data.e2e_id),
    );
    await provider.shutdown();
  });

  it('works under NodeSDK with logs from @opentelemetry/api', async () => {
    const run = newRun('nodesdk');
    const saved = { ...process.env };
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_METRICS_EXPORTER = 'none';
    process.env.OTEL_LOGS_EXPORTER = 'none';
    const { processor, dir } = processorFor(h.server.url);
    const sdk = new NodeSDK({ resource, logRecordProcessors: [processor], instrumentations: [] });
    try {
      sdk.start();
      const logger = logs.getLogger('nodesdk-e2e');
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const id = `${run}:${i}`;
        ids.push(id);
        logger.emit(oracleRecord(run, id, `rr-${run}-${i % 3}`, i));
      }
      logger.emit({ body: 'not audit' });
      await processor.forceFlush();
      await assertExactlyOnce(h.server.url, run, ids);
      expect(deadLetters(dir)).toEqual([]);
    } finally {
      await sdk.shutdown();
      // NodeSDK registered globals; free them for the next backend's run of this test.
      logs.disable();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
      process.env = saved;
    }
  });
});

describe('end to end on postgres: database stopped mid-run, Redis DLQ', () => {
  let db: ScratchDatabase;
  let proxy: TcpProxy;
  let redis: Redis;
  const stream = `e2e:dlq:${randomUUID()}`;

  beforeAll(async () => {
    db = await createScratchDatabase('ds_e2e_dlq');
    const target = new URL(db.connectionString);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect(); // fails the suite when Redis is down
  });
  afterAll(async () => {
    await proxy?.stop();
    if (redis) {
      await redis.del(stream, `${stream}:dead`);
      redis.disconnect();
    }
    await db?.drop();
  });
  afterEach(async () => {
    await proxy.start();
  });

  it('delivers every event exactly once after the database comes back', async () => {
    const viaProxy = new URL(db.connectionString);
    viaProxy.port = String(proxy.port);
    const server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      openapiSpec: specPath(),
      storage: { kind: 'postgres', connectionString: viaProxy.toString() },
      redis: { url: REDIS_URL, stream, retryMaxDelayMillis: 100 },
    });
    const direct = new pg.Client({ connectionString: db.connectionString });
    await direct.connect();
    const rowsInTable = async () =>
      Number(
        (await direct.query(`SELECT count(*)::int AS n FROM audit_events`)).rows[0]?.n ??
          Number.NaN,
      );
    const { processor, dir } = processorFor(server.url);
    const provider = new LoggerProvider({ resource, processors: [processor] });
    try {
      const run = newRun('outage');
      const logger = provider.getLogger('e2e');
      const ids: string[] = [];
      const emit = (count: number) => {
        for (let i = 0; i < count; i++) {
          const n = ids.length;
          const id = `${run}:${n}`;
          ids.push(id);
          logger.emit(oracleRecord(run, id, `rr-${run}-${n % 4}`, n));
        }
      };

      // Phase 1: the database is up: stored directly (201).
      emit(40);
      await processor.forceFlush();
      expect(await rowsInTable()).toBe(40);

      // Phase 2: the database is unreachable mid-run. The server queues to Redis and
      // answers 202; forceFlush resolves on that answer although nothing more is stored.
      await proxy.stop();
      emit(60);
      await processor.forceFlush();
      expect(Number(await redis.xlen(stream))).toBeGreaterThan(0);
      expect(await rowsInTable()).toBe(40);

      // Phase 3: the database is back. Events emitted while the worker drains the queue
      // land after the queued ones (each correlation's chain stays in timestamp order).
      await proxy.start();
      emit(30);
      await processor.forceFlush();
      await server.whenDlqDrained();
      expect(await rowsInTable()).toBe(130);
      await assertExactlyOnce(server.url, run, ids);
      expect(Number(await redis.xlen(stream))).toBe(0);
      expect(Number(await redis.exists(`${stream}:dead`))).toBe(0);
      expect(deadLetters(dir)).toEqual([]);
    } finally {
      await provider.shutdown();
      await server.close();
      await direct.end();
    }
  });
});

// SPDX-License-Identifier: Apache-2.0
/*
 * Database outages with the Redis dead-letter queue, simulated per database (connections
 * refused with ALLOW_CONNECTIONS false, its sessions terminated; the shared cluster keeps
 * running): Redis restarted empty mid-outage, the queue's bound, parents that cannot be
 * checked, a queue that cannot be written (readiness), and two server processes that return
 * to direct writes as soon as the database is back while each correlation keeps its order.
 */
import { randomUUID } from 'node:crypto';
import {
  createScratchDatabase,
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  type ScratchDatabase,
  testAuth,
  testTokenFile,
  verifyChain,
  waitFor,
} from '@kubernaut/test-kit';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { correlationLockKey } from '../src/hash.ts';
import { type DataStorageServer, startDataStorageServer } from '../src/index.ts';
import { type RunningCommand, startCommand, stopCommand } from './command.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Polls `check` until it is true (the system under test acts asynchronously). */
const eventually = (check: () => Promise<boolean>, what: string) =>
  waitFor(check, { timeoutMs: 30_000, intervalMs: 20, describe: () => what });

const streamKeys = (stream: string) => [
  stream,
  `${stream}:dead`,
  `${stream}:backlog`,
  `${stream}:stats`,
  `${stream}:lease`,
];

describe('outages with the Redis DLQ (one server)', () => {
  let db: ScratchDatabase;
  let redis: Redis;
  let server: DataStorageServer | undefined;
  let stream: string;
  beforeAll(async () => {
    db = await createScratchDatabase('ds_outage');
    redis = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    await db.outage(false);
    await server?.close();
    server = undefined;
    await redis.del(...streamKeys(stream));
  });
  afterAll(async () => {
    redis?.disconnect();
    await db?.drop();
  });

  const start = async (dlq: Record<string, unknown> = {}) => {
    stream = `test:dlq:${randomUUID()}`;
    server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: db.connectionString },
      redis: { url: REDIS_URL, stream, retryMaxDelayMillis: 100, ...dlq },
    });
    return server;
  };
  const batch = (cid: string, n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => minimalEvent({ correlation_id: cid }, from + i));
  const stored = async (s: DataStorageServer, cid: string) =>
    (await queryEvents(s.url, { correlation_id: cid, limit: 1000 })).data
      .map((e) => e.event_data.n!)
      .sort((a, b) => a - b);

  it('recreates the consumer group when Redis restarts empty mid-outage: every later 202 is written', async () => {
    const s = await start();
    const cid = `restart-${randomUUID()}`;
    expect((await postBatch(s.url, batch(cid, 2))).status).toBe(201);
    await db.outage(true);
    expect((await postBatch(s.url, batch(cid, 5, 100))).status).toBe(202);
    // Redis restarted empty: the stream, its group and the queue's bookkeeping are gone (the
    // five events queued above are lost with it; that is Redis's durability, not ours).
    await redis.del(...streamKeys(stream));
    for (const from of [200, 300]) {
      const r = await postBatch(s.url, batch(cid, 5, from));
      expect(r.status).toBe(202);
    }
    await db.outage(false);
    await s.whenDlqDrained();
    const ns = await stored(s, cid);
    for (const n of [0, 1, 200, 201, 202, 203, 204, 300, 301, 302, 303, 304]) {
      expect(ns).toContain(n);
    }
    expect((await verifyChain(s.url, cid)).is_valid).toBe(true);
    expect((await request(s.url, 'GET', '/readyz')).status).toBe(200);
  });

  it('answers 503 with Retry-After beyond the bound of the queue, and loses nothing it accepted', async () => {
    const s = await start({ maxQueuedEvents: 20 });
    const cid = `bound-${randomUUID()}`;
    await db.outage(true);
    const answers: number[] = [];
    for (let k = 0; k < 4; k++) {
      const r = await postBatch(s.url, batch(cid, 8, k * 10));
      answers.push(r.status);
      if (r.status === 503) {
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(r.body.detail).toMatch(/queue is full/);
      }
    }
    expect(answers).toEqual([202, 202, 503, 503]);
    expect(Number(await redis.hget(`${stream}:stats`, 'events'))).toBe(16);
    await db.outage(false);
    await s.whenDlqDrained();
    expect(await stored(s, cid)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(Number(await redis.hlen(`${stream}:stats`))).toBe(0);
    expect(Number(await redis.hlen(`${stream}:backlog`))).toBe(0);
  });

  it('answers 503 (not 202) when a parent cannot be checked during an outage', async () => {
    const s = await start();
    const parent = await postBatch(s.url, [minimalEvent()]);
    const parentId = (parent.body.event_ids as string[])[0]!;
    const cid = `parent-${randomUUID()}`;
    const events = [
      minimalEvent({ correlation_id: cid }, 0),
      minimalEvent({ correlation_id: cid, parent_event_id: parentId }, 1),
    ];
    await db.outage(true);
    const r = await postBatch(s.url, events);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(Number(await redis.xlen(stream))).toBe(0);
    const bogus = await postBatch(s.url, [minimalEvent({ parent_event_id: randomUUID() })]);
    expect(bogus.status).toBe(503);
    await db.outage(false);
    expect((await postBatch(s.url, events)).status).toBe(201);
    expect(await stored(s, cid)).toEqual([0, 1]);
    expect(Number(await redis.exists(`${stream}:dead`))).toBe(0);
  });

  it('reports a queue that cannot be written through /readyz, and recovers', async () => {
    const s = await start({ stuckAfterMillis: 60_000 });
    const cid = `stuck-${randomUUID()}`;
    // The test's own session outlives the outage: the trigger is in place before the database
    // comes back (created after, the queue could drain in between).
    const c = new pg.Client({ connectionString: db.connectionString });
    await c.connect();
    try {
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await db.outage(true, [rows[0]?.pid as number]);
      expect((await postBatch(s.url, batch(cid, 3))).status).toBe(202);
      // The database comes back, but refuses the queued rows for a reason that is not theirs.
      await c.query(`CREATE FUNCTION refuse() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$ LANGUAGE plpgsql`);
      await c.query(`CREATE TRIGGER refuse BEFORE INSERT ON audit_events
        FOR EACH ROW EXECUTE FUNCTION refuse()`);
      await db.outage(false);
      await eventually(
        async () => (await request(s.url, 'GET', '/readyz')).status === 503,
        'readyz to report the stuck queue',
      );
      const ready = await request(s.url, 'GET', '/readyz');
      expect(ready.body.detail).toMatch(
        /queued events cannot be written: refused by a test trigger/,
      );
      expect(Number(await redis.xlen(stream))).toBe(1);
      await c.query('DROP TRIGGER refuse ON audit_events');
    } finally {
      await c.end();
    }
    await s.whenDlqDrained();
    expect(await stored(s, cid)).toEqual([0, 1, 2]);
    await eventually(
      async () => (await request(s.url, 'GET', '/readyz')).status === 200,
      'readyz to recover',
    );
    expect(Number(await redis.exists(`${stream}:dead`))).toBe(0);
  });
});

describe('two server processes, one database, one queue', () => {
  let db: ScratchDatabase;
  let redis: Redis;
  const stream = `test:dlq:${randomUUID()}`;
  const servers: RunningCommand[] = [];
  beforeAll(async () => {
    db = await createScratchDatabase('ds_outage2');
    redis = new Redis(REDIS_URL);
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startCommand([
          '--port',
          '0',
          '--database-url',
          db.connectionString,
          '--redis-url',
          REDIS_URL,
          '--redis-stream',
          stream,
          '--auth-token-file',
          testTokenFile(),
          '--management-port',
          '0',
        ]),
      );
    }
  });
  afterAll(async () => {
    await db.outage(false);
    await Promise.all(servers.map((s) => stopCommand(s)));
    await redis?.del(...streamKeys(stream));
    redis?.disconnect();
    await db?.drop();
  });

  it('writes directly as soon as the database is back, and queues behind a correlation still queued, on either server', async () => {
    const a = servers[0]!;
    const b = servers[1]!;
    const c = `order-c-${randomUUID()}`;
    const d = `order-d-${randomUUID()}`;
    // A session that holds c's chain lock through the outage: once the database is back, the
    // queued event of c cannot be drained until the test lets it.
    const holder = new pg.Client({ connectionString: db.connectionString });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [String(correlationLockKey(c))]);
      const [{ pid }] = (await holder.query('SELECT pg_backend_pid() AS pid')).rows;
      await db.outage(true, [pid]);
      const e1 = await postBatch(a.url, [minimalEvent({ correlation_id: c }, 1)]);
      expect(e1.status).toBe(202);
      await db.outage(false);

      // c still has an event queued (by the other server): its next event queues behind it.
      const e2 = await postBatch(b.url, [minimalEvent({ correlation_id: c }, 2)]);
      expect(e2.status).toBe(202);
      // d has nothing queued: written at once, while c's backlog is still waiting.
      const direct = await postBatch(b.url, [minimalEvent({ correlation_id: d }, 3)]);
      expect(direct.status).toBe(201);
      expect(Number(await redis.hget(`${stream}:backlog`, c))).toBe(2);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      await holder.end();
    }
    await eventually(async () => Number(await redis.xlen(stream)) === 0, 'the queue to drain');
    const check = new pg.Client({ connectionString: db.connectionString });
    await check.connect();
    const rows = (
      await check.query(
        `SELECT (event_data->>'n')::int AS n, chain_position::int AS p FROM audit_events
         WHERE correlation_id = $1 ORDER BY chain_position`,
        [c],
      )
    ).rows;
    await check.end();
    expect(rows).toEqual([
      { n: 1, p: 1 },
      { n: 2, p: 2 },
    ]);
    expect((await verifyChain(b.url, c)).is_valid).toBe(true);
    // The backlog is gone: c writes directly again.
    expect((await postBatch(a.url, [minimalEvent({ correlation_id: c }, 4)])).status).toBe(201);
  });
});

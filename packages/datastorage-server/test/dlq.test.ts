// SPDX-License-Identifier: Apache-2.0
/*
 * Database outages on PostgreSQL: readiness, 503 without a DLQ, and the Redis DLQ path
 * (202, then every event written exactly once, chains valid, once the database is back).
 * The database is made unreachable by stopping a loopback TCP proxy in front of it.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import {
  at,
  createScratchDatabase,
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  type ScratchDatabase,
  TcpProxy,
  testAuth,
  verifyChain,
} from '@kubernaut/test-kit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepareEvent } from '../src/events.ts';
import { type DataStorageServer, startDataStorageServer } from '../src/index.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('database outages (PostgreSQL)', () => {
  let db: ScratchDatabase;
  let proxy: TcpProxy;
  let redis: Redis;
  const stream = `test:dlq:${randomUUID()}`;
  let server: DataStorageServer | undefined;

  beforeAll(async () => {
    db = await createScratchDatabase('ds_dlq');
    const target = new URL(db.connectionString);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    redis = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await redis?.del(stream, `${stream}:dead`);
    redis?.disconnect();
    await db?.drop();
  });

  const viaProxy = () => {
    const u = new URL(db.connectionString);
    u.port = String(proxy.port);
    return u.toString();
  };

  it('answers readyz 503 and writes 503 with Retry-After while the database is down (no DLQ)', async () => {
    server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: viaProxy() },
    });
    expect((await request(server.url, 'GET', '/readyz')).status).toBe(200);
    await proxy.stop();
    const ready = await request(server.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    const w = await postBatch(server.url, [minimalEvent()]);
    expect(w.status).toBe(503);
    expect(w.headers.get('retry-after')).toBe('5');
    const q = await request(server.url, 'GET', '/api/v1/audit/events');
    expect(q.status).toBe(503);
    await proxy.start();
    expect((await request(server.url, 'GET', '/readyz')).status).toBe(200);
    expect((await postBatch(server.url, [minimalEvent()])).status).toBe(201);
  });

  it('queues batches to Redis (202) while the database is down and writes each event exactly once when it is back', async () => {
    server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: viaProxy() },
      redis: { url: REDIS_URL, stream, retryMaxDelayMillis: 100 },
    });
    const a = `dlq-a-${randomUUID()}`;
    const b = `dlq-b-${randomUUID()}`;
    let n = 0;
    const batch = (size: number) =>
      Array.from({ length: size }, () => {
        const i = n++;
        return minimalEvent({ correlation_id: i % 2 ? a : b, event_timestamp: at(-60_000 + i) }, i);
      });

    expect((await postBatch(server.url, batch(6))).status).toBe(201);
    await proxy.stop();
    for (let i = 0; i < 3; i++) {
      const r = await postBatch(server.url, batch(8));
      expect(r.status).toBe(202);
      expect(r.body).toMatchObject({ status: 'accepted', count: 8 });
    }
    const single = await request(server.url, 'POST', '/api/v1/audit/events', batch(1)[0]);
    expect(single.status).toBe(202);
    expect(single.body.status).toBe('accepted');
    expect(Number(await redis.xlen(stream))).toBeGreaterThan(0);

    await proxy.start();
    await server.whenDlqDrained();

    const seen = new Map<number, number>();
    for (const cid of [a, b]) {
      const q = await queryEvents(server.url, { correlation_id: cid, limit: 1000 });
      for (const e of q.data) seen.set(e.event_data.n!, (seen.get(e.event_data.n!) ?? 0) + 1);
      const v = await verifyChain(server.url, cid);
      expect(v.is_valid).toBe(true);
      expect(v.total_events).toBe(q.data.length);
    }
    expect(seen.size).toBe(n);
    for (let i = 0; i < n; i++) expect(seen.get(i)).toBe(1);
    expect(Number(await redis.xlen(stream))).toBe(0);
    expect(Number(await redis.exists(`${stream}:dead`))).toBe(0);
  });

  it('skips events already stored when an entry is delivered again (exactly once)', async () => {
    const cid = `redeliver-${randomUUID()}`;
    const events = [0, 1, 2].map((i) =>
      prepareEvent(
        minimalEvent(
          { correlation_id: cid, event_timestamp: at(-5000 + i) },
          i,
        ) as unknown as AuditEventRequest,
      ),
    );
    // A previous run committed the first two, then lost the acknowledgement of their entry.
    const before = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: viaProxy() },
    });
    await before.store.insertEvents(events.slice(0, 2));
    await before.close();
    await redis.xadd(stream, '*', 'v', '1', 'events', JSON.stringify(events));
    // An entry that cannot be decoded goes to the dead stream instead of blocking the queue.
    await redis.xadd(stream, '*', 'v', '1', 'events', '{not json');

    server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: viaProxy() },
      redis: { url: REDIS_URL, stream, retryMaxDelayMillis: 100 },
    });
    await server.whenDlqDrained();
    const q = await queryEvents(server.url, { correlation_id: cid });
    expect(q.data.map((e) => e.event_id).sort()).toEqual(events.map((e) => e.event_id).sort());
    expect((await verifyChain(server.url, cid)).is_valid).toBe(true);
    expect(Number(await redis.xlen(stream))).toBe(0);
    expect(Number(await redis.xlen(`${stream}:dead`))).toBe(1);
  });
});
